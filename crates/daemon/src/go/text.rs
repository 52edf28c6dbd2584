//! Text the way Go prints and scans it, so replies and tokens match the Go
//! originals byte for byte: `fmt.Sscanf("%d")`, `time.Duration.String`,
//! `encoding/json` strings, RFC 3339 times, OS errors.

/// C `sscanf("%d")` as Go's `fmt.Sscanf` does it: leading blanks skipped,
/// an optional sign, decimal digits; anything after them ignored. `None`
/// when there is no number or it overflows 64 bits.
pub fn scan_int(s: &str) -> Option<i64> {
    let s = s.trim_start_matches([' ', '\t', '\r', '\x0b', '\x0c']);
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+' | b'-') => s.split_at(1),
        _ => ("", s),
    };
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(rest.len());
    let digits = &rest[..end];
    if digits.is_empty() || digits.contains('_') {
        return None;
    }
    format!("{sign}{digits}").parse().ok()
}

/// A duration the way Go's `time.Duration.String` prints it.
pub fn go_duration(d: std::time::Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", trim_fraction(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", trim_fraction(ns, 1_000_000));
    }
    let secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let sec = trim_fraction(s * 1_000_000_000 + frac, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{sec}s"),
        (0, m) => format!("{m}m{sec}s"),
        (h, m) => format!("{h}h{m}m{sec}s"),
    }
}

/// `n / unit` with its decimal fraction, trailing zeros removed.
fn trim_fraction(n: u128, unit: u128) -> String {
    let whole = n / unit;
    let frac = n % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A JSON string the way Go's `encoding/json` writes it (HTML-safe: `<`,
/// `>`, `&`, U+2028 and U+2029 escaped), so tokens match byte for byte.
pub fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A UTC time as Go's RFC 3339 with nanoseconds (trailing zeros trimmed).
pub fn rfc3339_nano(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, mo, da) = civil_from_days(days);
    let base = format!(
        "{y:04}-{mo:02}-{da:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    );
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        return format!("{base}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// An OS error in Go's words (`no such file or directory`): the text
/// without Rust's ` (os error N)`, its first letter lower-cased.
pub fn os_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[cfg(unix)]
    #[test]
    fn go_os_error_words() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(os_error(&e), "no such file or directory");
    }

    #[test]
    fn scan_int_is_sscanf_percent_d() {
        assert_eq!(scan_int("3"), Some(3));
        assert_eq!(scan_int("2x"), Some(2));
        assert_eq!(scan_int("+2"), Some(2));
        assert_eq!(scan_int("-1"), Some(-1));
        assert_eq!(scan_int(" 9"), Some(9));
        assert_eq!(scan_int("abc"), None);
        assert_eq!(scan_int(""), None);
        assert_eq!(scan_int("-"), None);
        assert_eq!(scan_int("1_000"), None);
        assert_eq!(scan_int("9223372036854775807"), Some(i64::MAX));
        assert_eq!(scan_int("9223372036854775808"), None);
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(
            go_duration(Duration::from_nanos(3_001_790_446)),
            "3.001790446s"
        );
        assert_eq!(go_duration(Duration::from_nanos(154_240)), "154.24µs");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(2)), "2ms");
        assert_eq!(go_duration(Duration::from_secs(125)), "2m5s");
    }

    #[test]
    fn json_strings_are_html_safe_like_go() {
        assert_eq!(
            go_json_string("a<b>&\"\\\n"),
            r#""a\u003cb\u003e\u0026\"\\\n""#
        );
        assert_eq!(go_json_string("é\u{1}"), "\"é\\u0001\"");
    }

    #[test]
    fn rfc3339_trims_trailing_zeros() {
        // Whole 100 ns: Windows keeps time in those.
        let t = UNIX_EPOCH + Duration::new(1_795_312_939, 297_429_700);
        assert_eq!(rfc3339_nano(t), "2026-11-22T02:02:19.2974297Z");
        assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
