//! Measures the hub's fan-out cost per client on the calling thread:
//! `cargo run --release --example fanout_cost`. (Queues only, no sockets.)
use ssehub_core::frame::Event;
use ssehub_core::hub::{Hub, HubConfig, Origin, Target};
use std::time::Instant;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let hub = rt.block_on(async {
        Hub::new(HubConfig {
            heartbeat: None,
            max_queue_bytes: usize::MAX,
            batch_foreign_wakes: true,
            ..HubConfig::default()
        })
    });
    let subs: Vec<_> = (0..10_000).map(|_| hub.register().unwrap()).collect();
    let data = "x".repeat(100);
    let rounds = 200;
    let start = Instant::now();
    let mut batch = std::collections::VecDeque::new();
    let mut spent = std::time::Duration::ZERO;
    for _ in 0..rounds {
        let t = Instant::now();
        hub.fan_out(
            Target::All,
            Event::data(&data).encode().unwrap(),
            Origin::Published(None),
        );
        spent += t.elapsed();
        // Drain like the writers would, outside the timed part.
        for sub in &subs {
            let waker = std::task::Waker::noop();
            let _ = sub.poll_batch(&mut std::task::Context::from_waker(waker), &mut batch);
            batch.clear();
        }
    }
    let _ = start;
    let per = spent.as_nanos() as f64 / (rounds * subs.len()) as f64;
    println!("broadcast: {per:.1} ns per client on the calling thread");
    drop(subs);
}
