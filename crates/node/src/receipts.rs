//! Receipts of publishes through Redis, handed to JS in batches: a publish
//! gets a ticket at once, and its outcome comes back with every other one
//! settled meanwhile, in one call of the JS callback (lib/engine.js keeps
//! the Promises). A Promise made in Rust per publish cost a threadsafe
//! function and a wake-up of the JS thread each, more than the publish.

use crate::codes::receipt_of;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use ssehub_core::bus::{BusError, Published};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

/// What one publish came to, under its ticket.
#[napi(object)]
pub struct TicketReceipt {
    pub ticket: u32,
    pub id: Option<String>,
    pub error: Option<String>,
    pub code: Option<String>,
}

/// Weak: it does not keep the process alive by itself; lib/engine.js
/// holds the event loop open while Promises wait.
type Deliver = ThreadsafeFunction<(), (), Vec<TicketReceipt>, Status, false, true>;

pub(crate) struct Receipts {
    settled: Arc<Mutex<Vec<TicketReceipt>>>,
    deliver: Deliver,
    next: AtomicU32,
}

fn lock(settled: &Mutex<Vec<TicketReceipt>>) -> MutexGuard<'_, Vec<TicketReceipt>> {
    // A push or a take cannot leave the list torn: poison is ignored.
    settled.lock().unwrap_or_else(|e| e.into_inner())
}

impl Receipts {
    pub(crate) fn new(callback: Function<Vec<TicketReceipt>, ()>) -> Result<Receipts> {
        let settled = Arc::new(Mutex::new(Vec::new()));
        let drain = settled.clone();
        let deliver = callback
            .build_threadsafe_function::<()>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(move |_| Ok(std::mem::take(&mut *lock(&drain))))?;
        Ok(Receipts {
            settled,
            deliver,
            next: AtomicU32::new(0),
        })
    }

    /// A new ticket (they wrap after 2^32, long after any is settled).
    pub(crate) fn ticket(&self) -> u32 {
        self.next.fetch_add(1, Relaxed)
    }

    /// Settles `ticket`: the first receipt of a batch asks the JS thread
    /// for one call, which takes every receipt settled until it runs.
    pub(crate) fn settle(&self, ticket: u32, answer: std::result::Result<Published, BusError>) {
        let receipt = receipt_of(answer);
        let first = {
            let mut settled = lock(&self.settled);
            settled.push(TicketReceipt {
                ticket,
                id: receipt.id,
                error: receipt.error,
                code: receipt.code,
            });
            settled.len() == 1
        };
        if first {
            self.deliver
                .call((), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}
