//! Command-line parsing in the two styles the originals use: Go's `flag`
//! package (`-bind :8000`, `-secret=x`) for jwt, and GNU `getopt_long`
//! (`-n -p 8080`, `--port=8080`, `-np8080`, unique long prefixes) for
//! channels. Errors are one line, ready to print after the mode name.

/// One getopt option.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// The short letter, if there is one.
    pub short: Option<char>,
    /// The long name, also the key results are reported under.
    pub long: &'static str,
    /// Whether it takes an argument.
    pub arg: bool,
}

/// Parses GNU-style options; returns `(long name, argument)` in order.
/// A word that is not an option is an error, as in SSE-Server.
pub fn getopt(
    args: &[String],
    opts: &[Opt],
) -> Result<Vec<(&'static str, Option<String>)>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let word = &args[i];
        i += 1;
        if word == "--" {
            if let Some(extra) = args.get(i) {
                return Err(format!("Unexpected argument: {extra}"));
            }
            break;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let opt = find_long(opts, name)?;
            let value = match (opt.arg, inline) {
                (true, Some(v)) => Some(v),
                (true, None) => Some(next_value(args, &mut i, &format!("--{}", opt.long))?),
                (false, Some(_)) => return Err(format!("Option --{} takes no argument", opt.long)),
                (false, None) => None,
            };
            out.push((opt.long, value));
        } else if word.len() > 1 && word.starts_with('-') {
            let letters: Vec<char> = word[1..].chars().collect();
            let mut k = 0;
            while k < letters.len() {
                let c = letters[k];
                k += 1;
                let opt = opts
                    .iter()
                    .find(|o| o.short == Some(c))
                    .ok_or_else(|| format!("Unknown or ambiguous option {c}"))?;
                if !opt.arg {
                    out.push((opt.long, None));
                    continue;
                }
                let rest: String = letters[k..].iter().collect();
                let value = if rest.is_empty() {
                    next_value(args, &mut i, &format!("-{c}"))?
                } else {
                    rest
                };
                out.push((opt.long, Some(value)));
                break;
            }
        } else {
            return Err(format!("Unexpected argument: {word}"));
        }
    }
    Ok(out)
}

fn next_value(args: &[String], i: &mut usize, name: &str) -> Result<String, String> {
    let v = args
        .get(*i)
        .cloned()
        .ok_or_else(|| format!("Missing argument for option {name}"))?;
    *i += 1;
    Ok(v)
}

/// A long option by exact name or unique prefix.
fn find_long<'a>(opts: &'a [Opt], name: &str) -> Result<&'a Opt, String> {
    if let Some(o) = opts.iter().find(|o| o.long == name) {
        return Ok(o);
    }
    let mut hits = opts
        .iter()
        .filter(|o| !name.is_empty() && o.long.starts_with(name));
    match (hits.next(), hits.next()) {
        (Some(o), None) => Ok(o),
        _ => Err(format!("Unknown or ambiguous option --{name}")),
    }
}

/// One Go-style flag.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    pub name: &'static str,
    /// Boolean flags take no value (`-x` or `-x=true`).
    pub boolean: bool,
}

/// Parses Go `flag`-style arguments into `(name, value)` pairs; booleans
/// get `"true"`. Stops at `--`; a word that is not a flag is an error.
pub fn go_flags(args: &[String], flags: &[Flag]) -> Result<Vec<(&'static str, String)>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let word = &args[i];
        i += 1;
        if word == "--" {
            break;
        }
        let Some(body) = word.strip_prefix("--").or_else(|| word.strip_prefix('-')) else {
            return Err(format!("unexpected argument: {word}"));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let flag = flags
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| format!("flag provided but not defined: -{name}"))?;
        let value = match (flag.boolean, inline) {
            (true, None) => "true".to_string(),
            (true, Some(v)) if matches!(v.as_str(), "true" | "1" | "false" | "0") => v,
            (true, Some(v)) => return Err(format!("invalid boolean value {v:?} for -{name}")),
            (false, Some(v)) => v,
            (false, None) => {
                let v = args
                    .get(i)
                    .ok_or_else(|| format!("flag needs an argument: -{name}"))?;
                i += 1;
                v.clone()
            }
        };
        out.push((flag.name, value));
    }
    if let Some(extra) = args.get(i) {
        return Err(format!("unexpected argument: {extra}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    const OPTS: &[Opt] = &[
        Opt {
            short: Some('n'),
            long: "nodaemon",
            arg: false,
        },
        Opt {
            short: Some('p'),
            long: "port",
            arg: true,
        },
        Opt {
            short: Some('P'),
            long: "controlport",
            arg: true,
        },
        Opt {
            short: None,
            long: "background",
            arg: false,
        },
    ];

    #[test]
    fn getopt_forms() {
        let got = getopt(&words("-np8080 --controlport=9 --back -P 7 --port 1"), OPTS).unwrap();
        assert_eq!(
            got,
            [
                ("nodaemon", None),
                ("port", Some("8080".into())),
                ("controlport", Some("9".into())),
                ("background", None),
                ("controlport", Some("7".into())),
                ("port", Some("1".into())),
            ]
        );
    }

    #[test]
    fn getopt_errors_are_sse_server_messages() {
        assert_eq!(
            getopt(&words("-x"), OPTS).unwrap_err(),
            "Unknown or ambiguous option x"
        );
        assert_eq!(
            getopt(&words("-p"), OPTS).unwrap_err(),
            "Missing argument for option -p"
        );
        assert_eq!(
            getopt(&words("--po"), OPTS).unwrap_err(),
            "Missing argument for option --port"
        );
        assert_eq!(
            getopt(&words("--c=1 extra"), OPTS).unwrap_err(),
            "Unexpected argument: extra"
        );
        assert!(getopt(&words("--nodaemon=1"), OPTS).is_err());
    }

    #[test]
    fn go_flag_forms() {
        let flags = [
            Flag {
                name: "bind",
                boolean: false,
            },
            Flag {
                name: "gen",
                boolean: true,
            },
        ];
        let got = go_flags(&words("-bind :1 --gen -bind=:2"), &flags).unwrap();
        assert_eq!(
            got,
            [
                ("bind", ":1".into()),
                ("gen", "true".into()),
                ("bind", ":2".into())
            ]
        );
        assert_eq!(
            go_flags(&words("-nope"), &flags).unwrap_err(),
            "flag provided but not defined: -nope"
        );
        assert_eq!(
            go_flags(&words("-bind"), &flags).unwrap_err(),
            "flag needs an argument: -bind"
        );
        assert_eq!(
            go_flags(&words("stray"), &flags).unwrap_err(),
            "unexpected argument: stray"
        );
    }
}
