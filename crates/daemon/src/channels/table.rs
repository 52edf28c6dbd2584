//! SSE-Server's table of connections, controllers and clients: what the
//! `status` command prints and whom a publish is logged as sent to. Only
//! the log reads it; delivery goes through the hub and never waits on it.

use crate::log::Logger;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// A connection, listener or controller, for the `status` table.
#[derive(Debug, Clone)]
pub(super) enum Role {
    /// A web connection that has not asked for a stream yet.
    Waiting,
    /// A streaming client and its channels (empty: all channels).
    Client(Vec<String>),
    /// A controller: `FIFO`, `socket` or `HTTP`.
    Controller(&'static str),
}

/// One row of the table.
struct Entry {
    host: String,
    /// How the log names it when a publish reaches it, `7 (127.0.0.1)`:
    /// made once here, not per event and recipient.
    label: Box<str>,
    role: Role,
}

/// The rows by connection number, as SSE-Server numbered them.
#[derive(Default)]
pub(super) struct Table {
    rows: Mutex<BTreeMap<u64, Entry>>,
}

impl Table {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Entry>> {
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn insert(&self, id: u64, host: String, role: Role) {
        // Escaped, if a host ever needs it, by the log as it writes it.
        let label = format!("{id} ({host})").into_boxed_str();
        self.lock().insert(id, Entry { host, label, role });
    }

    pub(super) fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    pub(super) fn set_role(&self, id: u64, role: Role) {
        if let Some(e) = self.lock().get_mut(&id) {
            e.role = role;
        }
    }

    /// Calls `each` with the clients a publish to `channels` reaches (as
    /// `N (host)`, the way the log names them), under the table's lock.
    pub(super) fn with_recipients<R>(
        &self,
        channels: &[&str],
        each: impl FnOnce(&[&str]) -> R,
    ) -> R {
        let rows = self.lock();
        let found: Vec<&str> = rows
            .iter()
            .filter(|(_, e)| match &e.role {
                Role::Client(chs) => {
                    chs.is_empty() || chs.iter().any(|c| channels.contains(&c.as_str()))
                }
                _ => false,
            })
            .map(|(_, e)| &*e.label)
            .collect();
        each(&found)
    }

    /// Logs the `status` table, in SSE-Server's layout.
    pub(super) fn log_status(&self, log: &Logger, log_slot: Option<&(u64, String)>) {
        log.line("---- Logfile ------------------------------------");
        match log_slot {
            Some((fd, name)) => log.line(format_args!("{fd:3}  {name}")),
            None => log.line("Not logging"),
        }
        log.line("---- Controllers --------------------------------");
        let rows = self.lock();
        for (id, e) in rows.iter() {
            if let Role::Controller(kind) = e.role {
                log.line(format_args!("{id:3}  {kind:<6}  {}", e.host));
            }
        }
        log.line("---- Clients ------------------------------------");
        for (id, e) in rows.iter() {
            let what = match &e.role {
                Role::Controller(_) => continue,
                Role::Waiting => "waiting for headers".to_string(),
                Role::Client(chs) if chs.is_empty() => "all channels".to_string(),
                Role::Client(chs) => {
                    let names: Vec<String> =
                        chs.iter().take(3).map(|c| format!("\"{c}\"")).collect();
                    let more = if chs.len() > 3 { "..." } else { "" };
                    format!("{}{more}", names.join(", "))
                }
            };
            log.line(format_args!("{id:3}  {:<15}  {what}", e.host));
        }
        log.line("-------------------------------------------------");
    }
}
