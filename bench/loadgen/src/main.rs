//! loadgen: the SSE load client of ssehub's benchmark (`npm run bench`).
//!
//! Opens N SSE connections to one server, then measures phases: in each,
//! every connection must receive a given number of events; the report
//! gives the deliveries per second and the latency from the send time the
//! server embedded in each event (`data: t=<unix µs> ...`).
//!
//! - [`args`]: the command line.
//! - [`conn`]: one connection task (connect, request, read, count).
//! - [`parse`]: the HTTP head, chunked framing and SSE event parsers.
//! - [`stats`]: the shared counters and the JSON reports.
//! - [`histogram`]: the latency histogram.

mod args;
mod conn;
mod histogram;
mod parse;
mod stats;

use stats::{now_us, Stats};
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

/// How often the main task checks whether a phase is over.
const POLL: Duration = Duration::from_millis(2);

fn main() -> ExitCode {
    let options = match args::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("loadgen: {message}");
            }
            eprintln!("{}", args::USAGE);
            return ExitCode::from(if message.is_empty() { 0 } else { 64 });
        }
    };
    let nofile = raise_open_files_limit();
    let runtime = match build_runtime(options.threads) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::from(70);
        }
    };
    runtime.block_on(run(options, nofile));
    // Exit without waiting for the connection tasks to wind down.
    std::process::exit(0)
}

fn build_runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    builder.enable_all().build()
}

/// Raises the soft open-files limit to the hard one; returns the limit
/// in force, which bounds how many connections this process can open.
fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a pointer to a live rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return raised.rlim_cur;
        }
    }
    limit.rlim_cur
}

async fn run(options: args::Options, nofile: u64) {
    let max_runtime = options.max_runtime;
    tokio::spawn(async move {
        tokio::time::sleep(max_runtime).await;
        eprintln!("loadgen: --max-runtime reached, stopping");
        std::process::exit(3);
    });
    let commands = options.control.then(read_commands);
    let stats = Arc::new(Stats::default());
    let mut connector = Connector::new(&options, stats.clone(), nofile);
    connector.open(options.connections).await;
    match commands {
        Some(commands) => serve_commands(commands, &mut connector).await,
        None if options.events > 0 => {
            measure(&stats, "events", options.events, options.timeout).await
        }
        None => {}
    }
}

fn target_of(options: &args::Options) -> conn::Target {
    let server = std::net::SocketAddr::new(options.host, options.port);
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {server}\r\nAccept: text/event-stream\r\n\
         Cache-Control: no-cache\r\nUser-Agent: ssehub-loadgen\r\n\r\n",
        options.path
    );
    let sources = (1..=options.sources)
        .map(|i| std::net::IpAddr::from([127, 0, 0, i]))
        .collect();
    conn::Target {
        server,
        sources,
        request: request.into_bytes(),
        establish_timeout: options.establish_timeout,
        stall: options.stall,
        recv_buffer: options.recv_buffer,
    }
}

/// Opens connections in batches: bounded concurrency, optional rate.
struct Connector {
    target: Arc<conn::Target>,
    stats: Arc<Stats>,
    concurrency: usize,
    rate: u32,
    timeout: Duration,
    nofile: u64,
    /// Index of the next connection (it picks the source address).
    next_index: usize,
}

impl Connector {
    fn new(options: &args::Options, stats: Arc<Stats>, nofile: u64) -> Self {
        Connector {
            target: Arc::new(target_of(options)),
            stats,
            concurrency: options.concurrency,
            rate: options.rate,
            timeout: options.connect_timeout,
            nofile,
            next_index: 0,
        }
    }

    /// Opens `count` more connections, waits until each is established or
    /// failed (or the connect timeout), and prints the batch's report.
    async fn open(&mut self, count: usize) {
        let batch = self.stats.batch_start();
        let spawner = tokio::spawn(spawn_connections(
            self.target.clone(),
            self.stats.clone(),
            self.next_index..self.next_index + count,
            Arc::new(Semaphore::new(self.concurrency)),
            self.rate,
        ));
        self.next_index += count;
        let deadline = Instant::now() + self.timeout;
        while self.stats.settled_since(&batch) < count as u64 && Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
        }
        spawner.abort();
        let report = self.stats.connect_report(count as u64, &batch, self.nofile);
        if report.contains("\"fd_limit\"") {
            eprintln!(
                "loadgen: hit the open-files limit (RLIMIT_NOFILE = {}) with {} connections open",
                self.nofile,
                self.stats.live.load(Relaxed)
            );
        }
        println!("{report}");
    }
}

async fn spawn_connections(
    target: Arc<conn::Target>,
    stats: Arc<Stats>,
    indices: std::ops::Range<usize>,
    limit: Arc<Semaphore>,
    rate: u32,
) {
    let gap = (rate > 0).then(|| Duration::from_secs_f64(1.0 / f64::from(rate)));
    let begin = Instant::now();
    for (n, index) in indices.enumerate() {
        if let Some(gap) = gap {
            tokio::time::sleep_until(begin + gap.mul_f64(n as f64)).await;
        }
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        tokio::spawn(conn::run(index, target.clone(), stats.clone(), permit));
    }
}

/// Commands from stdin, one per line; EOF becomes `quit`.
fn read_commands() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                return;
            }
        }
        let _ = tx.send("quit".into());
    });
    rx
}

async fn serve_commands(mut commands: mpsc::UnboundedReceiver<String>, connector: &mut Connector) {
    let stats = connector.stats.clone();
    while let Some(line) = commands.recv().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["quit"] => return,
            ["arm", name, events, timeout] => {
                let (Ok(events), Ok(timeout)) = (events.parse(), timeout.parse::<f64>()) else {
                    println!("{{\"error\":\"bad arm command\"}}");
                    continue;
                };
                let timeout = Duration::from_secs_f64(timeout.clamp(0.0, 1e6));
                measure(&stats, name, events, timeout).await;
            }
            ["connect", count] => match count.parse() {
                Ok(count) => connector.open(count).await,
                Err(_) => println!("{{\"error\":\"bad connect command\"}}"),
            },
            [] => {}
            _ => println!(
                "{{\"error\":{}}}",
                stats::json_str(&format!("unknown command: {line}"))
            ),
        }
    }
}

/// Runs one phase: every live connection should receive `events` events
/// within `timeout`. Prints `armed` at once (the caller then makes the
/// server send), and the phase report when done or out of time.
async fn measure(stats: &Stats, name: &str, events: u64, timeout: Duration) {
    stats.start_phase(events);
    let armed = now_us();
    let cpu_before = stats::cpu_us();
    println!("{{\"armed\":{}}}", stats::json_str(name));
    let deadline = Instant::now() + timeout;
    let timed_out = loop {
        if stats.completed.load(Relaxed) >= stats.live.load(Relaxed) {
            break false;
        }
        if Instant::now() >= deadline {
            break true;
        }
        tokio::time::sleep(POLL).await;
    };
    let cpu = stats::cpu_us().saturating_sub(cpu_before);
    println!("{}", stats.phase_report(name, armed, timed_out, cpu));
}
