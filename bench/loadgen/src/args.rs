//! Command-line options, `--name value` or `--name=value`.

use std::net::IpAddr;
use std::time::Duration;

pub const USAGE: &str = "\
usage: loadgen --port PORT [options]
  --host ADDR            server address (default 127.0.0.1)
  --port PORT            server port (required)
  --path PATH            request path (default /)
  --connections N        connections to open (default 100)
  --concurrency N        connects in flight at once (default 256)
  --rate N               connects started per second, 0 = unlimited (default 0)
  --sources N            spread connections over 127.0.0.1..N (default: kernel picks)
  --establish-timeout S  seconds to connect and get a response head (default 10)
  --connect-timeout S    seconds to establish them all (default 120)
  --events N             events per connection to wait for, then exit (default 0)
  --timeout S            seconds to wait for them (default 60)
  --control              after connecting, take commands on stdin:
                           arm NAME EVENTS TIMEOUT_S   measure a phase
                           connect N                   open N more connections
                           quit                        exit (also on EOF)
  --stall                hold every connection open without reading (a stalled
                           client, for slow-consumer tests); pair with --control
  --recv-buffer BYTES    SO_RCVBUF of each connection (small: less kernel buffering)
  --threads N            runtime worker threads, 1 = current-thread (default 1)
  --max-runtime S        hard stop (default 3600)
Reports are JSON lines on stdout.";

pub struct Options {
    pub host: IpAddr,
    pub port: u16,
    pub path: String,
    pub connections: usize,
    pub concurrency: usize,
    pub rate: u32,
    pub sources: u8,
    pub establish_timeout: Duration,
    pub connect_timeout: Duration,
    pub events: u64,
    pub timeout: Duration,
    pub control: bool,
    /// Never read after the response head.
    pub stall: bool,
    /// SO_RCVBUF for each connection, when set.
    pub recv_buffer: Option<u32>,
    pub threads: usize,
    pub max_runtime: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            path: "/".into(),
            connections: 100,
            concurrency: 256,
            rate: 0,
            sources: 0,
            establish_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(120),
            events: 0,
            timeout: Duration::from_secs(60),
            control: false,
            stall: false,
            recv_buffer: None,
            threads: 1,
            max_runtime: Duration::from_secs(3600),
        }
    }
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (arg, None),
        };
        if name == "--control" || name == "--stall" {
            options.control |= name == "--control";
            options.stall |= name == "--stall";
            continue;
        }
        if name == "-h" || name == "--help" {
            return Err(String::new());
        }
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{name} needs a value"))?;
        set(&mut options, &name, &value)?;
    }
    if options.port == 0 {
        return Err("--port is required".into());
    }
    Ok(options)
}

fn set(o: &mut Options, name: &str, value: &str) -> Result<(), String> {
    match name {
        "--host" => o.host = number(name, value)?,
        "--port" => o.port = number(name, value)?,
        "--path" => o.path = value.to_string(),
        "--connections" => o.connections = number(name, value)?,
        "--concurrency" => o.concurrency = number::<usize>(name, value)?.max(1),
        "--rate" => o.rate = number(name, value)?,
        "--sources" => o.sources = number(name, value)?,
        "--establish-timeout" => o.establish_timeout = seconds(name, value)?,
        "--connect-timeout" => o.connect_timeout = seconds(name, value)?,
        "--events" => o.events = number(name, value)?,
        "--timeout" => o.timeout = seconds(name, value)?,
        "--recv-buffer" => o.recv_buffer = Some(number(name, value)?),
        "--threads" => o.threads = number::<usize>(name, value)?.max(1),
        "--max-runtime" => o.max_runtime = seconds(name, value)?,
        _ => return Err(format!("unknown option {name}")),
    }
    Ok(())
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{name}: bad value {value:?}"))
}

fn seconds(name: &str, value: &str) -> Result<Duration, String> {
    let s: f64 = number(name, value)?;
    if !(0.0..1e7).contains(&s) {
        return Err(format!("{name}: bad value {value:?}"));
    }
    Ok(Duration::from_secs_f64(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &str) -> Result<Options, String> {
        parse(words.split_whitespace().map(String::from))
    }

    #[test]
    fn reads_both_spellings() {
        let o = parse_words("--port=8080 --connections 500 --path /sse --control --timeout 1.5")
            .unwrap();
        assert_eq!(
            (o.port, o.connections, o.path.as_str()),
            (8080, 500, "/sse")
        );
        assert!(o.control && !o.stall);
        let s = parse_words("--port 1 --stall --recv-buffer 4096").unwrap();
        assert!(s.stall);
        assert_eq!(s.recv_buffer, Some(4096));
        assert_eq!(o.timeout, Duration::from_millis(1500));
    }

    #[test]
    fn refuses_bad_input() {
        assert!(parse_words("--connections 5").is_err());
        assert!(parse_words("--port 1 --bogus 2").is_err());
        assert!(parse_words("--port x").is_err());
        assert!(parse_words("--port 1 --events").is_err());
    }
}
