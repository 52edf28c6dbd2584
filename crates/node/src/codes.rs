//! The `code` of each error JS must tell apart, and how errors reach JS.
//! They are written here only: lib/codes.js reads them (`errorCodes()`).

use napi::{Env, Error, Status};
use ssehub_core::bus::{BusError, Published};
use ssehub_core::frame::FrameError;
use ssehub_core::hub::RegisterError;
use ssehub_core::queue::CloseReason;

/// The `code` of each error JS must tell apart.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Code {
    /// `maxClients` are connected.
    ClientLimit,
    /// The hub was closed (`sse.close()`).
    Closed,
    /// A field that cannot be framed (a line break in event or id).
    InvalidField,
    /// The fd could not be duplicated (`EMFILE`...): Node still owns it.
    NoFd,
    /// The socket is not connected any more (the peer reset it).
    NotConnected,
    /// An option that cannot work (a Redis URL that does not parse).
    InvalidOption,
    /// Redis did not take a publish.
    Bus,
}

impl Code {
    const ALL: [Code; 7] = [
        Code::ClientLimit,
        Code::Closed,
        Code::InvalidField,
        Code::NoFd,
        Code::NotConnected,
        Code::InvalidOption,
        Code::Bus,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Code::ClientLimit => "ERR_SSEHUB_CLIENT_LIMIT",
            Code::Closed => "ERR_SSEHUB_CLOSED",
            Code::InvalidField => "ERR_SSEHUB_INVALID_FIELD",
            Code::NoFd => "ERR_SSEHUB_NO_FD",
            Code::NotConnected => "ERR_SSEHUB_NOT_CONNECTED",
            Code::InvalidOption => "ERR_SSEHUB_INVALID_OPTION",
            Code::Bus => "ERR_SSEHUB_BUS",
        }
    }
}

/// Every code as `[NAME, code]` (`CLIENT_LIMIT`, `ERR_SSEHUB_CLIENT_LIMIT`),
/// the table lib/codes.js exports.
#[napi_derive::napi(catch_unwind)]
pub fn error_codes() -> Vec<Vec<String>> {
    Code::ALL
        .iter()
        .map(|code| {
            let text = code.as_str();
            let name = text.trim_start_matches("ERR_SSEHUB_");
            vec![name.to_string(), text.to_string()]
        })
        .collect()
}

/// Throws a JS Error whose `code` is `code`; the returned error only tells
/// napi-rs that an exception is pending.
pub(crate) fn coded(env: &Env, code: Code, message: &str) -> Error {
    match env.throw_error(message, Some(code.as_str())) {
        Ok(()) => Error::new(Status::PendingException, message.to_string()),
        Err(e) => e,
    }
}

pub(crate) fn frame_error(env: &Env, e: FrameError) -> Error {
    coded(env, Code::InvalidField, &e.to_string())
}

pub(crate) fn register_error(env: &Env, e: RegisterError) -> Error {
    match e {
        RegisterError::Full => coded(env, Code::ClientLimit, "ssehub: client limit reached"),
        RegisterError::Closed => coded(env, Code::Closed, "ssehub: hub is closed"),
    }
}

pub(crate) fn parse_reason(reason: &str) -> CloseReason {
    match reason {
        "client" => CloseReason::Client,
        "slow" => CloseReason::Slow,
        "timeout" => CloseReason::Timeout,
        "shutdown" => CloseReason::Shutdown,
        _ => CloseReason::Server,
    }
}

/// How a publish through Redis came out, for JS: an id or a coded error.
pub(crate) fn receipt_of(answer: Result<Published, BusError>) -> crate::BusReceipt {
    match answer {
        Ok(published) => crate::BusReceipt {
            id: published.id.map(|n| n.to_string()),
            error: None,
            code: None,
        },
        Err(e) => {
            let code = match e {
                BusError::Frame(_) => Code::InvalidField,
                BusError::Closed => Code::Closed,
                BusError::Invalid(_) | BusError::Redis(_) => Code::Bus,
            };
            crate::BusReceipt {
                id: None,
                error: Some(format!("ssehub: {e}")),
                code: Some(code.as_str().into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_each_code_once_by_its_suffix() {
        let table = error_codes();
        assert_eq!(table.len(), Code::ALL.len());
        assert!(table.contains(&vec![
            "CLIENT_LIMIT".to_string(),
            "ERR_SSEHUB_CLIENT_LIMIT".to_string()
        ]));
        let names: std::collections::HashSet<_> = table.iter().map(|pair| &pair[0]).collect();
        assert_eq!(names.len(), table.len());
    }
}
