//! The process-wide stop signal: set once (by SIGTERM, SIGINT, Windows'
//! console events, `halt`), seen by every task.

use std::io;
use std::sync::Arc;
use tokio::sync::watch;

/// The process-wide stop signal: set once, seen by every task.
#[derive(Clone)]
pub struct Shutdown {
    /// `true` once a stop was asked for.
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            tx: Arc::new(watch::channel(false).0),
        }
    }
}

impl Shutdown {
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the stop was asked for (the daemon is draining).
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once the stop was asked for.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Triggers `shutdown` on a stop signal (SIGTERM, SIGINT; on Windows a
/// console event: `sys::stop_signals`); `said` is told which one.
pub fn on_signals(shutdown: Shutdown, said: impl Fn(&str) + Send + 'static) -> io::Result<()> {
    let signalled = crate::sys::stop_signals()?;
    tokio::spawn(async move {
        let name = signalled.await;
        said(name);
        shutdown.trigger();
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_trigger_from_another_task_wakes_block_on() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let s = Shutdown::default();
            let s2 = s.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                s2.trigger();
            });
            tokio::time::timeout(Duration::from_secs(2), s.wait())
                .await
                .expect("woken");
        });
    }
}
