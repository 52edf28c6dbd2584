//! Prints the size of one native connection's task state:
//! `cargo run --release --example conn_size`.
use ssehub::conn::{serve, StreamSettings};
use ssehub::hub::{Hub, HubConfig};

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let hub = Hub::new(HubConfig::default());
        let sub = hub.register().unwrap();
        let (a, _b) = tokio::io::duplex(64);
        let settings = StreamSettings {
            head: bytes::Bytes::new(),
            chunked: true,
            write_timeout: None,
        };
        let fut = serve(a, sub, settings);
        println!("serve future: {} bytes", std::mem::size_of_val(&fut));
    });
}
