//! How a client is opened, written once for the addon and every daemon
//! mode: a client that resumes is held before it joins its channels, so
//! the live events of those channels wait until its replay is queued; then
//! it joins; then it gets what it missed. No gap, no duplicate at the seam.

use super::Bus;
use crate::hub::ClientId;

/// Opens `client`: `join` puts it in its channels (a daemon's routes, or
/// the addon's `'connection'` handlers). With a `last_id` and a bus that
/// keeps history, the client is held first and resumed after.
pub fn open_client(bus: &dyn Bus, client: ClientId, last_id: Option<&str>, join: impl FnOnce()) {
    let resume = last_id.filter(|_| bus.keeps_history());
    if resume.is_some() {
        bus.hold(client);
    }
    join();
    if let Some(last_id) = resume {
        bus.resume(client, last_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Body, Local, Message};
    use crate::testing::{drain, hub};

    fn publish(bus: &Local, channel: &str, data: &str) {
        let message = Message {
            channels: Some(vec![channel.to_string()]),
            body: Body::Event {
                event: None,
                data: Some(data.to_string()),
                id: None,
                retry: None,
            },
        };
        bus.publish_now(&message).unwrap();
    }

    #[test]
    fn a_resuming_client_joins_then_gets_what_it_missed_in_its_channels() {
        let hub = hub(10);
        let bus = Local::new(hub.clone(), true);
        publish(&bus, "room", "one");
        publish(&bus, "room", "two");
        publish(&bus, "other", "not mine");
        let sub = hub.register().unwrap();
        open_client(&bus, sub.id(), Some("1"), || {
            hub.join(sub.id(), "room");
        });
        assert_eq!(drain(&sub), ["id: 2\ndata: two\n\n"]);
    }

    #[test]
    fn without_history_an_id_is_not_a_resume() {
        let hub = hub(0);
        let bus = Local::new(hub.clone(), false);
        let sub = hub.register().unwrap();
        let mut joined = false;
        open_client(&bus, sub.id(), Some("7"), || joined = true);
        assert!(joined);
        assert!(drain(&sub).is_empty(), "no gap event without a history");
    }
}
