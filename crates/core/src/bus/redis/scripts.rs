//! The two Lua scripts the bus runs in Redis, loaded once per connection
//! (see `link`), and the arguments they take.
//!
//! Ids. An event's id is `max(seq + 1, now in µs)` (Redis's clock): ids
//! increase, never repeat, and read as the time they were handed out
//! (close enough: a node publishing over a million events a second would
//! run ahead of the clock). `start` marks the epoch: the first script to
//! find it missing (a new Redis, or one that lost its data) sets it to
//! the clock, above every id handed out before.
//!
//! Streams. Each entry is `m` (the event, `<id>\n<fields>`) and `p`, the
//! id of the entry before it in the same stream (`0`: the stream began
//! there). Trimming removes the oldest entries, so when the oldest entry
//! a reader gets still names a predecessor it wanted, that one was
//! trimmed: this works on Redis 6 and 7 alike (`XINFO`'s
//! `max-deleted-entry-id` does not: `MAXLEN` never updates it).

/// Makes sure the epoch exists: `start`, and `seq` beside it. Expects
/// `now_us`; leaves `start` and `seq` as strings. KEYS[1] is seq,
/// KEYS[2] start. Its writes only happen when Redis has no epoch.
const EPOCH: &str = r#"
local seq, start = unpack(redis.call('MGET', KEYS[1], KEYS[2]))
if not start then
  -- No epoch: a new Redis, or one that lost its data. Numbers go on
  -- above the clock, so they stay above any id handed out before.
  start = string.format('%.0f', math.max(now_us, tonumber(seq or '0') + 1))
  redis.call('SET', KEYS[2], start)
  redis.call('SET', KEYS[1], start)
  seq = start
elseif not seq then
  seq = start
end
"#;

const NOW: &str = r#"
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
"#;

/// Numbers, appends and publishes a batch of events, in order, at once.
///
/// KEYS: seq, start, then the batch's targets: with history their
/// streams, without it the keys that keep each one's newest id.
/// ARGV: the deadline (µs, Redis's clock), history, the TTL of a target
/// (seconds), `1` to publish with SPUBLISH (sharded Pub/Sub, on a Redis
/// Cluster) else `0`, each target's Pub/Sub channel, then per event: its
/// number of targets n, n target indexes (1-based), the encoded event.
///
/// Past the deadline nothing is done: the publisher has reported these
/// events as not taken, so they must never appear. A target of the wrong
/// type refuses the events that name it, before anything is written.
/// Returns the time (s, µs), then per event its id or why it was refused.
const PUBLISH_BODY: &str = r#"
if now_us > tonumber(ARGV[1]) then
  return redis.error_reply('LATE ssehub: the batch reached Redis after its deadline; nothing was applied')
end
local history, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local publish = ARGV[4] == '1' and 'SPUBLISH' or 'PUBLISH'
local targets = #KEYS - 2
local bad, last = {}, {}
for t = 1, targets do
  if history > 0 then
    local newest = redis.pcall('XREVRANGE', KEYS[t + 2], '+', '-', 'COUNT', 1)
    if newest.err then
      bad[t] = 'WRONGTYPE ssehub: ' .. KEYS[t + 2] .. ' is not a stream'
    else
      last[t] = newest[1] and string.match(newest[1][1], '^(%d+)') or '0'
    end
  end
end
local events, i = {}, 5 + targets
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local e = { targets = {}, body = ARGV[i + n + 1] }
  for k = 1, n do
    local t = tonumber(ARGV[i + k])
    e.targets[k] = t
    e.refused = e.refused or bad[t]
  end
  events[#events + 1] = e
  i = i + n + 2
end
local out = { now[1], now[2] }
local any = false
for _, e in ipairs(events) do any = any or not e.refused end
if not any then
  for _, e in ipairs(events) do out[#out + 1] = e.refused end
  return out
end
EPOCH
local id = math.max(tonumber(seq) + 1, now_us)
-- A stream ahead of the counter (Redis went back): stay above it.
for t = 1, targets do
  if last[t] then id = math.max(id, tonumber(last[t]) + 1) end
end
local touched = {}
for _, e in ipairs(events) do
  if e.refused then
    out[#out + 1] = e.refused
  else
    local sid = string.format('%.0f', id)
    local msg = sid .. '\n' .. e.body
    for _, t in ipairs(e.targets) do
      if history > 0 then
        redis.call('XADD', KEYS[t + 2], 'MAXLEN', '~', history, sid .. '-0', 'm', msg, 'p', last[t])
        last[t] = sid
      end
      redis.call(publish, ARGV[4 + t], msg)
      touched[t] = sid
    end
    out[#out + 1] = sid
    id = id + 1
  end
end
for t, sid in pairs(touched) do
  if history > 0 then
    redis.call('EXPIRE', KEYS[t + 2], ttl)
  else
    redis.call('SET', KEYS[t + 2], sid, 'EX', ttl)
  end
end
redis.call('SET', KEYS[1], string.format('%.0f', id - 1))
return out
"#;

/// Reads what targets hold after given ids (and makes the epoch if Redis
/// has none, so a node sees the epoch it will be compared with).
///
/// KEYS: seq, start, then targets (streams, or newest-id keys without
/// history). ARGV: history, count, then per target the first id wanted.
/// Returns the time (s, µs), seq, start, then per target: with history
/// its newest `count` entries from the id wanted (newest first), without
/// it the newest id published to it (`false` if none).
const READ_BODY: &str = r#"
EPOCH
local out = { now[1], now[2], seq, start }
local history, count = tonumber(ARGV[1]), tonumber(ARGV[2])
for t = 3, #KEYS do
  local got
  if history > 0 then
    got = redis.pcall('XREVRANGE', KEYS[t], '+', ARGV[t] .. '-0', 'COUNT', count)
  else
    got = redis.pcall('GET', KEYS[t])
  end
  -- A key of ours with another type holds nothing of ours.
  if type(got) == 'table' and got.err then got = false end
  out[#out + 1] = got
end
return out
"#;

/// Which script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lua {
    Publish,
    Read,
}

/// The scripts' sources and hashes, made once.
pub(super) struct Scripts {
    publish: redis::Script,
    read: redis::Script,
    sources: [String; 2],
}

impl Scripts {
    pub(super) fn new() -> Scripts {
        let publish = [NOW, PUBLISH_BODY].concat().replace("EPOCH", EPOCH);
        let read = [NOW, READ_BODY].concat().replace("EPOCH", EPOCH);
        Scripts {
            publish: redis::Script::new(&publish),
            read: redis::Script::new(&read),
            sources: [publish, read],
        }
    }

    pub(super) fn hash(&self, which: Lua) -> &str {
        match which {
            Lua::Publish => self.publish.get_hash(),
            Lua::Read => self.read.get_hash(),
        }
    }

    /// Both sources, for `SCRIPT LOAD`.
    pub(super) fn sources(&self) -> &[String; 2] {
        &self.sources
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_is_spliced_into_both_scripts() {
        let scripts = Scripts::new();
        for source in scripts.sources() {
            assert!(!source.contains("\nEPOCH\n"), "{source}");
            assert!(source.contains("local seq, start = unpack"));
            assert!(source.starts_with("\nlocal now = redis.call('TIME')"));
        }
        assert_ne!(scripts.hash(Lua::Publish), scripts.hash(Lua::Read));
    }
}
