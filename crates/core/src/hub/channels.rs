//! Channels: which clients joined which names, and the hook a bus uses to
//! subscribe when a channel gains its first member and unsubscribe when
//! it loses its last.

use super::{lock, read, write, Client, ClientId, Hub};
use std::sync::Arc;

/// The channels of one client. `gone` is set, under the same lock, when
/// the client unregisters: a `join` racing with that sees it and does not
/// leave a dangling id in the channel index.
#[derive(Default)]
pub(super) struct Joined {
    pub(super) names: Vec<Arc<str>>,
    gone: bool,
}

impl Hub {
    /// Sets the function told when a channel gains its first member or
    /// loses its last (a bus subscribes and unsubscribes with it).
    pub fn on_channel(&self, hook: impl Fn(&str, bool) + Send + Sync + 'static) {
        *write(&self.inner.on_channel) = Some(Box::new(hook));
    }

    fn channel_changed(&self, channel: &str, has_members: bool) {
        if let Some(hook) = &*read(&self.inner.on_channel) {
            hook(channel, has_members);
        }
    }

    /// Adds a client to a channel. False if the client is gone.
    pub fn join(&self, id: ClientId, channel: &str) -> bool {
        let Some(client) = self.client(id) else {
            return false;
        };
        let mut joined = lock(&client.channels);
        if joined.gone {
            return false;
        }
        if joined.names.iter().any(|c| &**c == channel) {
            return true;
        }
        let mut index = write(&self.inner.channels);
        let name = match index.get_key_value(channel) {
            Some((name, _)) => name.clone(),
            None => {
                self.channel_changed(channel, true);
                Arc::from(channel)
            }
        };
        index.entry(name.clone()).or_default().insert(id);
        joined.names.push(name);
        true
    }

    /// Removes a client from a channel. False if it was not a member.
    pub fn leave(&self, id: ClientId, channel: &str) -> bool {
        let Some(client) = self.client(id) else {
            return false;
        };
        let mut joined = lock(&client.channels);
        let Some(at) = joined.names.iter().position(|c| &**c == channel) else {
            return false;
        };
        joined.names.swap_remove(at);
        self.unindex(id, channel);
        true
    }

    /// Takes an unregistering client out of every channel it joined.
    pub(super) fn leave_all(&self, id: ClientId, client: &Client) {
        let joined = {
            let mut joined = lock(&client.channels);
            joined.gone = true;
            std::mem::take(&mut joined.names)
        };
        for channel in joined {
            self.unindex(id, &channel);
        }
    }

    fn unindex(&self, id: ClientId, channel: &str) {
        let mut index = write(&self.inner.channels);
        if let Some(members) = index.get_mut(channel) {
            members.remove(&id);
            if members.is_empty() {
                index.remove(channel);
                self.channel_changed(channel, false);
            }
        }
    }

    /// The channels a client has joined.
    pub fn channels_of(&self, id: ClientId) -> Vec<String> {
        self.client(id)
            .map(|c| {
                lock(&c.channels)
                    .names
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Number of members of a channel.
    #[cfg(test)]
    pub(crate) fn channel_size(&self, channel: &str) -> usize {
        read(&self.inner.channels)
            .get(channel)
            .map_or(0, |s| s.len())
    }

    /// The `n` channels with the most members, biggest first (for a status
    /// page): one pass over the index, no copy of the member sets.
    pub fn largest_channels(&self, n: usize) -> Vec<(String, usize)> {
        let index = read(&self.inner.channels);
        let mut sizes: Vec<(&str, usize)> = index.iter().map(|(c, m)| (&**c, m.len())).collect();
        sizes.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        sizes
            .into_iter()
            .take(n)
            .map(|(c, len)| (c.to_string(), len))
            .collect()
    }
}
