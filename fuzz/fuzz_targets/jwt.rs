#![no_main]
//! The jwt mode's token path: the `Authorization` header cut, then the
//! token checked. Arbitrary headers must be refused without a panic; a
//! token we issue for any user and channel must verify back to them, and
//! any change to it must not verify as someone else.

use libfuzzer_sys::fuzz_target;
use ssehub_daemon::fuzz::{jwt, token};

const SECRET: &[u8] = b"fuzzing-secret-0123456789";

fuzz_target!(|data: &[u8]| {
    if let Some(t) = jwt::bearer(data) {
        let _ = token::verify(SECRET, t, 1_000_000_000);
    }
    let text = String::from_utf8_lossy(data);
    let _ = token::verify(SECRET, &text, 1_000_000_000);

    let mut parts = text.splitn(3, '\0');
    let (user, channel) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let issued = token::issue(SECRET, user, channel, 2_000_000_000);
    let session = token::verify(SECRET, &issued, 1_000_000_000).expect("our own token verifies");
    assert_eq!(
        (session.user_id.as_str(), session.channel.as_str()),
        (user, channel)
    );
    assert!(token::verify(b"another-secret-0123456789", &issued, 0).is_err());
    assert!(
        token::verify(SECRET, &issued, 2_000_000_001).is_err(),
        "expired"
    );
    if let Some(tamper) = parts.next().and_then(|t| t.bytes().next()) {
        let mut bytes = issued.into_bytes();
        let at = usize::from(tamper) % bytes.len();
        bytes[at] ^= 1 + (tamper >> 4);
        if let Ok(changed) = String::from_utf8(bytes) {
            if let Ok(s) = token::verify(SECRET, &changed, 1_000_000_000) {
                // Only a change in the signature's unused trailing bits can
                // still verify; it must then name the same session.
                assert_eq!((s.user_id.as_str(), s.channel.as_str()), (user, channel));
            }
        }
    }
});
