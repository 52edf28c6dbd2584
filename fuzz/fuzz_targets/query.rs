#![no_main]
//! The query and path parsers of the daemon: SSE-Server's `&`/`;` pairs
//! and `%XX` paths, Go's `url.ParseQuery`, form bodies (urlencoded and
//! multipart), `sscanf("%d")`. None may panic; decoding a fully
//! percent-encoded string must give the string back.

use libfuzzer_sys::fuzz_target;
use ssehub_daemon::fuzz::control::{self, Pair};
use ssehub_daemon::fuzz::http;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (path, query) = text.split_once('?').unwrap_or((&text, ""));

    // One pair per separated piece, a command exactly when it has no '='.
    let pairs = control::query_pairs(query);
    let pieces: Vec<&str> = query.split(['&', ';']).collect();
    assert_eq!(pairs.len(), pieces.len());
    for (pair, piece) in pairs.iter().zip(&pieces) {
        assert_eq!(matches!(pair, Pair::Command(_)), !piece.contains('='));
    }
    let channels = control::path_channels(path).unwrap_or_default();
    assert!(
        channels.iter().all(|c| !c.is_empty()),
        "an empty channel name"
    );
    for (i, c) in channels.iter().enumerate() {
        assert!(!channels[..i].contains(c), "a channel listed twice");
    }
    if let Some(rest) = control::strip_prefix(path, "/my/sse") {
        assert!(rest.is_empty() || rest.starts_with('/'));
    }
    let _ = http::go_parse_query(query);
    let _ = http::scan_int(query);
    let _ = http::body_pairs("application/x-www-form-urlencoded", data);
    let _ = http::body_pairs("multipart/form-data; boundary=XX", data);
    if let Some((boundary, body)) = text.split_once('\n') {
        let ctype = format!("multipart/form-data; boundary=\"{boundary}\"");
        let _ = http::body_pairs(&ctype, body.as_bytes());
    }

    let encoded: String = text.bytes().map(|b| format!("%{b:02X}")).collect();
    assert_eq!(control::unescape(&encoded), text);
    assert_eq!(http::go_unescape(&encoded).as_deref(), Some(&*text));
});
