//! The channels mode's publishers: controllers on the control port and
//! the FIFO speaking the text protocol of [`super::control`], and queries
//! on the web port. No reply is ever written to a controller.

use super::control::{self, Ended, Input, Line, Pair};
use super::table::Role;
use super::Channels;
use crate::net::limits::{CONTROLLER_IDLE, CONTROL_LINE};
use crate::net::peer::Conn;
use crate::net::server::{accept_loop, Listener};
use ssehub_core::bus::Receipt;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;

/// Serves the control port until shutdown, on the shared accept loop.
pub(super) async fn control_port(ch: Arc<Channels>, listener: Listener) {
    let shutdown = ch.shutdown.clone();
    accept_loop(
        listener,
        shutdown,
        move |stream, conn, tls, limits, slot| {
            let ch = ch.clone();
            async move {
                let _slot = slot;
                let host = conn.peer.ip().to_string();
                ch.log.line(format_args!(
                    "Got new controller connection {} from {host}",
                    conn.id
                ));
                match tls {
                    None => controller(&ch, stream, &conn).await,
                    Some(acceptor) => tls_controller(&ch, stream, &conn, acceptor, limits).await,
                }
                ch.log
                    .line(format_args!("Closing connection {} ({host})", conn.id));
            }
        },
    )
    .await
}

async fn tls_controller(
    ch: &Arc<Channels>,
    stream: tokio::net::TcpStream,
    conn: &Conn,
    acceptor: TlsAcceptor,
    limits: crate::net::limits::Limits,
) {
    let handshake = acceptor.accept(stream);
    match tokio::time::timeout(limits.head_timeout, handshake).await {
        Ok(Ok(s)) => controller(ch, s, conn).await,
        Ok(Err(e)) => ch
            .log
            .line(format_args!("Cannot set up SSL to {}: {e}", conn.id)),
        Err(_) => ch.log.line(format_args!(
            "Cannot set up SSL to {}: handshake timed out",
            conn.id
        )),
    }
}

/// One control-port connection: lines until EOF, a too-long line, idle
/// time, or shutdown.
async fn controller<S>(ch: &Arc<Channels>, stream: S, conn: &Conn)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (id, host) = (conn.id, conn.peer.ip().to_string());
    ch.table
        .insert(id, host.clone(), Role::Controller("socket"));
    let lines = control::read_lines(stream, Some(CONTROLLER_IDLE), |input| {
        ch.control_input(id, &host, input, true)
    });
    tokio::select! {
        ended = lines => ch.log_ended(id, &host, ended),
        _ = ch.shutdown.wait() => {}
    }
    ch.table.remove(id);
}

impl Channels {
    /// Logs why a controller stopped, when it was not an ordinary end.
    pub(super) fn log_ended(&self, id: u64, host: &str, ended: Ended) {
        match ended {
            Ended::Error { error, partial } => {
                self.log
                    .line(format_args!("Warning: reading from {id} ({host}): {error}"));
                if partial > 0 {
                    self.log.line(format_args!(
                        "Warning: dropped an unterminated line of {partial} bytes from {id} ({host})"
                    ));
                }
            }
            Ended::Idle => self.log.line(format_args!(
                "Closing idle controller {id} ({host}): nothing for {}s",
                CONTROLLER_IDLE.as_secs()
            )),
            Ended::Eof | Ended::Stopped => {}
        }
    }

    /// Handles one input of a controller; false closes the controller.
    pub(super) fn control_input(
        self: &Arc<Self>,
        id: u64,
        host: &str,
        input: Input,
        close_on_long: bool,
    ) -> bool {
        let text = match input {
            Input::TooLong => {
                self.log.line(format_args!(
                    "Warning: line longer than {} bytes from {id} ({host})",
                    CONTROL_LINE
                ));
                return !close_on_long;
            }
            Input::Nul => {
                self.log.line(format_args!(
                    "Warning: ignoring a line with a NUL byte from {id} ({host})"
                ));
                return true;
            }
            Input::Line { text, lossy } => {
                if lossy {
                    self.log.line(format_args!(
                        "Warning: invalid UTF-8 from {id} ({host}), replaced by U+FFFD"
                    ));
                }
                text
            }
        };
        match control::parse(&text) {
            Line::Empty => self.log.line(format_args!(
                "Warning: ignoring an empty line from {id} ({host})"
            )),
            Line::Command(cmd) => {
                self.log
                    .line(format_args!("Received from {id} ({host}): {cmd}"));
                self.command(cmd);
            }
            Line::Publish {
                target,
                channel,
                event,
                data,
            } => {
                self.log
                    .line(format_args!("Received from {id} ({host}): {target}={data}"));
                if let Some(receipt) = self.publish(&[channel], event, data) {
                    self.follow_up(receipt, event);
                }
            }
        }
        true
    }

    /// The pairs of a publishing query, in order; returns the publishes
    /// through Redis still to be confirmed.
    pub(super) fn run_query(
        &self,
        conn: &Conn,
        channels: &[String],
        query: &str,
    ) -> Vec<(String, Receipt)> {
        let mut pending = Vec::new();
        let host = conn.peer.ip().to_string();
        let targets: Vec<&str> = channels.iter().map(String::as_str).collect();
        for pair in control::query_pairs(query) {
            match pair {
                Pair::Event(name, value) => {
                    self.log.line(format_args!(
                        "Received from {} ({host}): {name}={value}",
                        conn.id
                    ));
                    if let Some(receipt) = self.publish(&targets, &name, &value) {
                        pending.push((name, receipt));
                    }
                }
                Pair::Command(cmd) => {
                    self.log
                        .line(format_args!("Received from {} ({host}): {cmd}", conn.id));
                    if self.allow_commands {
                        self.command(&cmd);
                    } else {
                        self.log.line("Commands not allowed from web clients.");
                    }
                }
            }
        }
        pending
    }

    /// `status`, `halt` or an unknown command.
    fn command(&self, cmd: &str) {
        match cmd {
            "halt" => self.shutdown.trigger(),
            "status" => self.table.log_status(&self.log, self.log_slot.as_ref()),
            _ => self
                .log
                .line(format_args!("Warning: Unknown command: {cmd}")),
        }
    }
}
