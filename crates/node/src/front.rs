//! The ordered front: the only way the binding reaches the hub and the bus.
//!
//! Node's thread may leave one fan-out for a runtime thread to push
//! ([`Front::offload`]): paced, the 10,000 pushes of a broadcast touch
//! queues last touched by the writer thread and were most of Node's time.
//! Every effect must still take place in the order JS asked for it, so the
//! front owns the hub and the bus privately and hands them out only through
//! [`Front::hub`] and [`Front::bus`], which first make the pushes of a
//! fan-out still waiting. No method of the binding can skip that step: it
//! has no other path to the hub.

use bytes::Bytes;
use ssehub_core::bus::Bus;
use ssehub_core::hub::{ClientId, Hub, Origin, Target};
use ssehub_core::runtime::RUNTIME;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, Mutex, Weak};

/// A fan-out left to a runtime thread.
enum Parked {
    /// To every client, recorded for replay under its id.
    Everyone(Bytes, Option<String>),
    /// To each of these clients, in order, once per mention.
    These(Vec<ClientId>, Bytes),
}

struct Shared {
    hub: Hub,
    /// Redis, or the local bus (this hub alone).
    bus: Box<dyn Bus>,
    /// Whether `bus` is Redis (shared with other nodes).
    shared_bus: bool,
    /// The fan-out a runtime task will push, if Node's thread does not
    /// need the hub first.
    parked: Mutex<Option<Parked>>,
    /// Set while `parked` holds one, read without its lock by `settle`.
    has_parked: AtomicBool,
}

/// The hub and the bus behind one ordered entrance.
pub(crate) struct Front {
    shared: Arc<Shared>,
}

impl Front {
    /// The front of `hub`, publishing through `bus` (`shared_bus`: Redis).
    pub(crate) fn new(hub: Hub, bus: Box<dyn Bus>, shared_bus: bool) -> Front {
        Front {
            shared: Arc::new(Shared {
                hub,
                bus,
                shared_bus,
                parked: Mutex::new(None),
                has_parked: AtomicBool::new(false),
            }),
        }
    }

    /// The hub, once every fan-out asked for before is pushed.
    pub(crate) fn hub(&self) -> &Hub {
        self.settle();
        &self.shared.hub
    }

    /// The bus, once every fan-out asked for before is pushed.
    pub(crate) fn bus(&self) -> &dyn Bus {
        self.settle();
        &*self.shared.bus
    }

    /// The bus when it is Redis (the `redis` option), in order as [`Front::bus`].
    pub(crate) fn shared_bus(&self) -> Option<&dyn Bus> {
        let bus = self.bus();
        self.shared.shared_bus.then_some(bus)
    }

    /// A broadcast whose pushes a runtime thread makes. Returns the open
    /// clients it is for (one found too slow as it is pushed is counted;
    /// it is closed as slow).
    pub(crate) fn broadcast(&self, frame: Bytes, id: Option<String>) -> usize {
        let open = self.hub().open_clients();
        if !frame.is_empty() {
            self.offload(Parked::Everyone(frame, id));
        }
        open
    }

    /// The same frame to each of `ids`, in order, once per mention, as that
    /// many sends; a runtime thread makes the pushes.
    pub(crate) fn send_to_many(&self, ids: &[ClientId], frame: Bytes) {
        if !ids.is_empty() {
            self.offload(Parked::These(ids.to_vec(), frame));
        }
    }

    /// Leaves a fan-out for a runtime task. At most one waits: an earlier
    /// one the runtime has not started yet is pushed here first (in a
    /// burst, the writers keep the runtime busy and Node's thread does the
    /// pushes, as without offloading).
    fn offload(&self, fan_out: Parked) {
        let mut slot = lock(&self.shared.parked);
        if let Some(earlier) = slot.replace(fan_out) {
            push(&self.shared.hub, earlier);
        }
        self.shared.has_parked.store(true, Relaxed);
        drop(slot);
        let shared = Arc::downgrade(&self.shared);
        RUNTIME.spawn(async move { settle(&shared) });
    }

    /// Makes the pushes of a parked fan-out now, if the runtime has not
    /// (and waits for it, if it is making them).
    fn settle(&self) {
        settle_shared(&self.shared);
    }
}

fn settle(shared: &Weak<Shared>) {
    if let Some(shared) = shared.upgrade() {
        settle_shared(&shared);
    }
}

fn settle_shared(shared: &Shared) {
    // Acquire: pushes the runtime made are seen once it says none wait.
    if !shared.has_parked.load(Acquire) {
        return;
    }
    // Held while the pushes are made: a caller waits for them.
    let mut slot = lock(&shared.parked);
    if let Some(fan_out) = slot.take() {
        push(&shared.hub, fan_out);
    }
    shared.has_parked.store(false, Release);
}

fn push(hub: &Hub, fan_out: Parked) {
    match fan_out {
        Parked::Everyone(frame, id) => {
            hub.fan_out(Target::All, frame, Origin::Published(id.as_deref()));
        }
        Parked::These(ids, frame) => {
            hub.fan_out(Target::Clients(&ids), frame, Origin::Published(None));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssehub_core::hub::HubConfig;
    use ssehub_core::queue::CloseReason;
    use ssehub_core::testing::{drain, frame};
    use std::time::{Duration, Instant};

    /// A front over a hub on the binding's runtime, as `NativeHub` makes it.
    fn front() -> Front {
        let _rt = RUNTIME.enter();
        let hub = Hub::new(HubConfig {
            heartbeat: None,
            batch_foreign_wakes: true,
            ..HubConfig::default()
        });
        let bus = Box::new(ssehub_core::bus::Local::new(hub.clone(), false));
        Front::new(hub, bus, false)
    }

    #[test]
    fn an_offloaded_broadcast_reports_the_open_clients_and_the_runtime_pushes_it() {
        let front = front();
        let subs: Vec<_> = (0..3).map(|_| front.hub().register().unwrap()).collect();
        assert!(front.hub().close_client(subs[2].id(), CloseReason::Server));
        assert_eq!(front.broadcast(frame("a"), None), 2);
        // Nobody asks for the hub: the runtime's task makes the pushes.
        let deadline = Instant::now() + Duration::from_secs(10);
        while front.shared.has_parked.load(Acquire) {
            assert!(Instant::now() < deadline, "the runtime never ran it");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(drain(&subs[0]), ["data: a\n\n"]);
        assert_eq!(drain(&subs[1]), ["data: a\n\n"]);
        assert!(drain(&subs[2]).is_empty());
        assert_eq!(front.shared.hub.stats().events_delivered, 2);
    }

    #[test]
    fn every_call_through_the_front_comes_after_the_fan_outs_before_it() {
        let front = front();
        let first = front.hub().register().unwrap();
        let other = front.hub().register().unwrap();
        front.hub().join(first.id(), "room");
        for n in 0..200 {
            front.broadcast(frame(&n.to_string()), None);
            front.send_to_many(&[first.id(), first.id()], frame("twice"));
            // A publish reaches the hub only through the front.
            front.hub().fan_out(
                Target::Channels(&["room"]),
                frame("room"),
                Origin::Published(None),
            );
        }
        assert!(front.hub().send(first.id(), frame("after")));
        let mut want = Vec::new();
        for n in 0..200 {
            want.push(format!("data: {n}\n\n"));
            want.extend(["data: twice\n\n", "data: twice\n\n", "data: room\n\n"].map(String::from));
        }
        want.push("data: after\n\n".into());
        assert_eq!(drain(&first), want);
        let others: Vec<String> = (0..200).map(|n| format!("data: {n}\n\n")).collect();
        assert_eq!(drain(&other), others);
        // A client registered after a fan-out gets nothing sent before it.
        front.broadcast(frame("before"), None);
        let late = front.hub().register().unwrap();
        assert!(drain(&late).is_empty());
        assert_eq!(front.broadcast(frame("both"), None), 3);
        assert_eq!(
            front.hub().queued_bytes(late.id()),
            Some(frame("both").len())
        );
    }

    #[test]
    fn a_frame_sent_to_many_counts_one_event_per_mention() {
        let front = front();
        let a = front.hub().register().unwrap();
        let gone = front.hub().register().unwrap().id();
        front.send_to_many(&[a.id(), gone, a.id()], frame("x"));
        let stats = front.hub().stats();
        assert_eq!((stats.events_published, stats.events_delivered), (3, 2));
    }
}
