//! The JWT session tokens of the jwt mode, byte-compatible with
//! chabberwock/sse (dgrijalva/jwt-go v3): HS256 tokens with header
//! `{"alg":"HS256","typ":"JWT"}` and claims `{"userId","channel","exp"}`
//! in that order, Go's JSON escaping, base64url without padding; checked
//! the way jwt-go checks them (HMAC only, `exp`/`nbf`/`iat` when present).
//!
//! Written on `hmac` + `sha2` rather than a JWT crate because the crates
//! order header fields differently, and the tokens must match bytewise.

use crate::go::text::go_json_string;
use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::{Sha256, Sha384, Sha512};

/// base64url, no padding on output; padding optional and trailing bits
/// tolerated on input, as Go's decoder is.
const B64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The fixed header of every token we issue.
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Who a token admits: the user and the one channel it may listen to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: String,
    pub channel: String,
}

/// Why a token was refused (every case is a 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not three base64url segments of JSON objects.
    Malformed,
    /// `alg` is not HS256/HS384/HS512 (`none`, RS256, ...).
    Algorithm,
    /// The HMAC does not match.
    Signature,
    /// A claim has the wrong JSON type.
    ClaimType,
    /// `exp` has passed.
    Expired,
    /// `nbf` or `iat` is in the future.
    NotYetValid,
}

/// Issues a token: claims in Go's field order; `exp` left out when 0
/// (`omitempty`, as jwt-go's `StandardClaims` does).
pub fn issue(secret: &[u8], user_id: &str, channel: &str, exp: i64) -> String {
    let mut claims = format!(
        "{{\"userId\":{},\"channel\":{}",
        go_json_string(user_id),
        go_json_string(channel)
    );
    if exp != 0 {
        claims.push_str(&format!(",\"exp\":{exp}"));
    }
    claims.push('}');
    let signing = format!("{}.{}", B64.encode(HEADER), B64.encode(claims));
    let sig = sign(Alg::Hs256, secret, signing.as_bytes());
    format!("{signing}.{}", B64.encode(sig))
}

#[derive(Debug, Clone, Copy)]
enum Alg {
    Hs256,
    Hs384,
    Hs512,
}

fn sign(alg: Alg, secret: &[u8], input: &[u8]) -> Vec<u8> {
    fn mac<M: Mac + hmac::digest::KeyInit>(secret: &[u8], input: &[u8]) -> Vec<u8> {
        let mut m =
            <M as hmac::digest::KeyInit>::new_from_slice(secret).expect("HMAC takes any key");
        m.update(input);
        m.finalize().into_bytes().to_vec()
    }
    match alg {
        Alg::Hs256 => mac::<Hmac<Sha256>>(secret, input),
        Alg::Hs384 => mac::<Hmac<Sha384>>(secret, input),
        Alg::Hs512 => mac::<Hmac<Sha512>>(secret, input),
    }
}

/// Constant-time equality of two MACs.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks a token at time `now` (unix seconds) and returns its session.
pub fn verify(secret: &[u8], token: &str, now: i64) -> Result<Session, Invalid> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Invalid::Malformed);
    };
    let header = json_object(h)?;
    let alg = match header.get("alg").and_then(Value::as_str) {
        Some("HS256") => Alg::Hs256,
        Some("HS384") => Alg::Hs384,
        Some("HS512") => Alg::Hs512,
        _ => return Err(Invalid::Algorithm),
    };
    let claims = json_object(c)?;
    let session = Session {
        user_id: string_claim(&claims, "userId")?,
        channel: string_claim(&claims, "channel")?,
    };
    for name in ["aud", "iss", "jti", "sub"] {
        string_claim(&claims, name)?;
    }
    let exp = int_claim(&claims, "exp")?;
    let iat = int_claim(&claims, "iat")?;
    let nbf = int_claim(&claims, "nbf")?;
    if exp != 0 && now > exp {
        return Err(Invalid::Expired);
    }
    if (iat != 0 && now < iat) || (nbf != 0 && now < nbf) {
        return Err(Invalid::NotYetValid);
    }
    let sig = B64.decode(s).map_err(|_| Invalid::Malformed)?;
    let signing = &token[..h.len() + 1 + c.len()];
    if !same(&sign(alg, secret, signing.as_bytes()), &sig) {
        return Err(Invalid::Signature);
    }
    Ok(session)
}

/// One segment decoded to a JSON object.
fn json_object(segment: &str) -> Result<Map<String, Value>, Invalid> {
    let bytes = B64.decode(segment).map_err(|_| Invalid::Malformed)?;
    match serde_json::from_str(&String::from_utf8_lossy(&bytes)) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Invalid::Malformed),
    }
}

/// A claim by name, matched as Go's `encoding/json` does (exact name
/// first, else case-insensitively; the last duplicate wins).
fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    claims.get(name).or_else(|| {
        claims
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn string_claim(claims: &Map<String, Value>, name: &str) -> Result<String, Invalid> {
    match claim(claims, name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Invalid::ClaimType),
    }
}

/// An int64 claim; a float, string or out-of-range number is refused.
fn int_claim(claims: &Map<String, Value>, name: &str) -> Result<i64, Invalid> {
    match claim(claims, name) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n.as_i64().ok_or(Invalid::ClaimType),
        Some(_) => Err(Invalid::ClaimType),
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)`: an optional sign and digits only.
pub fn parse_go_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A random secret (32 bytes from the OS, base64url).
pub fn generate_secret() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(B64.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issued by the original with `-secret s3cret` (chabberwock-probe1).
    const ORIGINAL: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VySWQiOiJhbGV4IiwiY2hhbm5lbCI6ImNoYXQiLCJleHAiOjE3OTUzMTY1NTZ9.Cr1dCZ8CfLRR6vGML1NPR0loHsgL-2vFdtxTCYthqwc";

    fn forge(header: &str, claims: &str, secret: &[u8]) -> String {
        let signing = format!("{}.{}", B64.encode(header), B64.encode(claims));
        let sig = sign(Alg::Hs256, secret, signing.as_bytes());
        format!("{signing}.{}", B64.encode(sig))
    }

    #[test]
    fn issued_tokens_equal_the_originals_bytewise() {
        assert_eq!(issue(b"s3cret", "alex", "chat", 1795316556), ORIGINAL);
        assert_eq!(
            issue(b"s3cret", "1234", "test", 2000000000),
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VySWQiOiIxMjM0IiwiY2hhbm5lbCI6InRlc3QiLCJleHAiOjIwMDAwMDAwMDB9.Z9okUum9xejQTjs7LgZtCEHypW-rZFWSwXRcHa_hCgI"
        );
    }

    #[test]
    fn the_originals_tokens_are_accepted_until_they_expire() {
        let s = verify(b"s3cret", ORIGINAL, 1795316556).unwrap();
        assert_eq!((s.user_id.as_str(), s.channel.as_str()), ("alex", "chat"));
        assert_eq!(
            verify(b"s3cret", ORIGINAL, 1795316557),
            Err(Invalid::Expired)
        );
        assert_eq!(verify(b"other", ORIGINAL, 0), Err(Invalid::Signature));
    }

    #[test]
    fn refused_tokens() {
        let none = format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            B64.encode(r#"{"userId":"a","channel":"c"}"#)
        );
        assert_eq!(verify(b"k", &none, 0), Err(Invalid::Algorithm));
        let rs = forge(r#"{"alg":"RS256"}"#, r#"{"userId":"a"}"#, b"k");
        assert_eq!(verify(b"k", &rs, 0), Err(Invalid::Algorithm));
        let exp_str = forge(HEADER, r#"{"userId":"a","exp":"99999999999"}"#, b"k");
        assert_eq!(verify(b"k", &exp_str, 0), Err(Invalid::ClaimType));
        let exp_float = forge(HEADER, r#"{"userId":"a","exp":1.5e10}"#, b"k");
        assert_eq!(verify(b"k", &exp_float, 0), Err(Invalid::ClaimType));
        let nbf = forge(HEADER, r#"{"userId":"a","nbf":200}"#, b"k");
        assert_eq!(verify(b"k", &nbf, 100), Err(Invalid::NotYetValid));
        let user_num = forge(HEADER, r#"{"userId":5}"#, b"k");
        assert_eq!(verify(b"k", &user_num, 0), Err(Invalid::ClaimType));
        assert_eq!(verify(b"k", "garbage", 0), Err(Invalid::Malformed));
        assert_eq!(verify(b"k", "a.b.c.d", 0), Err(Invalid::Malformed));
    }

    #[test]
    fn no_exp_means_no_expiry_and_keys_match_like_go() {
        let t = forge(HEADER, r#"{"userid":"u","CHANNEL":"c"}"#, b"k");
        let s = verify(b"k", &t, i64::MAX).unwrap();
        assert_eq!((s.user_id.as_str(), s.channel.as_str()), ("u", "c"));
        let t = issue(b"k", "", "", 0);
        assert!(verify(b"k", &t, i64::MAX).is_ok());
    }

    #[test]
    fn hs512_is_accepted() {
        let signing = format!(
            "{}.{}",
            B64.encode(r#"{"alg":"HS512","typ":"JWT"}"#),
            B64.encode(r#"{"userId":"a","channel":"c"}"#)
        );
        let sig = sign(Alg::Hs512, b"k", signing.as_bytes());
        let t = format!("{signing}.{}", B64.encode(sig));
        assert!(verify(b"k", &t, 0).is_ok());
    }

    #[test]
    fn exp_is_parsed_like_strconv() {
        assert_eq!(parse_go_int("86400"), Some(86400));
        assert_eq!(parse_go_int("+5"), Some(5));
        assert_eq!(parse_go_int("-5"), Some(-5));
        for bad in ["", "1.5", " 5", "5 ", "1_000", "x", "-"] {
            assert_eq!(parse_go_int(bad), None, "{bad:?}");
        }
    }
}
