//! The fleet's store: every call sluice makes to Redis, each bounded by
//! `[fleet] timeout`, and the scripts that keep shared state atomic. Above
//! it, `fleet/mod.rs` decides what a failed call means (fall back, warn,
//! reconcile); nothing here retries or waits longer than the timeout.
//!
//! The keys (docs/fleet.md, "What the store holds"), under the namespace `N`
//! and the fleet's generation `G` (a fleet that starts with no replica alive
//! starts a new generation, so a new test never inherits an old one's counts):
//!
//! ```text
//! N:replicas            sorted set: replica → when its heartbeat expires (ms)
//! N:generation          the generation
//! N:G:rl:L:SET          a bucket set: t (ms) and l1..l4 (levels); L counts
//!                       DELETE /rate-limits (N:G:rl:clears)
//! N:G:count:PHASE:ROUTE a route's request count in a phase
//! N:G:faults            the fleet's PUT /faults body, as sent (JSON)
//! N:G:runs              run id → the run (JSON); N:G:runs:next its counter
//! N:G:run:ID            replica → its part of the run's report (JSON)
//! N:G:cap:ROUTE         replica → places it holds under max_concurrent
//! N:G:capq:ROUTE        replica → requests it has waiting for one
//! N:events              the channel every replica listens on
//! ```

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

/// A store call that failed or took too long.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// No answer within `[fleet] timeout`.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Redis or the connection failed.
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
}

/// One rate-limit kind in a [`Store::take`]: its bucket, what the request
/// must get (`need`) and what the lease would like (`want`, at least `need`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct KindAsk {
    /// The bucket's rate a minute; 0 when this kind is not limited.
    pub(crate) per_minute: u64,
    /// The bucket's size.
    pub(crate) capacity: u64,
    /// Taken only if every kind's `need` is there.
    pub(crate) need: u64,
    /// Taken as far as the bucket holds it, once every `need` is there.
    pub(crate) want: u64,
}

/// The store's answer to a [`Store::take`] or [`Store::give`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BucketReply {
    /// What each kind granted.
    pub(crate) granted: [u64; 4],
    /// Each kind's whole units left in the fleet's bucket.
    pub(crate) remaining: [u64; 4],
    /// Each kind's time until its bucket is full again.
    pub(crate) until_full: [Duration; 4],
    /// `None` when granted; else how long until every `need` is there, or
    /// `Some(None)` when one can never be (it exceeds the bucket).
    pub(crate) wait: Option<Option<Duration>>,
}

/// Refills a bucket set to the server's clock, then takes or gives. One
/// script, so that two replicas never both take the same units.
const BUCKET_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stored = redis.call('HMGET', KEYS[1], 't', 'l1', 'l2', 'l3', 'l4')
local last = tonumber(stored[1]) or now
local give = ARGV[1] == 'give'
local levels, rate, cap, need, want = {}, {}, {}, {}, {}
for i = 1, 4 do
  local b = 1 + (i - 1) * 4
  rate[i] = tonumber(ARGV[b + 1])
  cap[i] = tonumber(ARGV[b + 2])
  need[i] = tonumber(ARGV[b + 3])
  want[i] = tonumber(ARGV[b + 4])
  if rate[i] > 0 then
    local level = tonumber(stored[i + 1]) or cap[i]
    levels[i] = math.min(cap[i], level + math.max(0, now - last) * rate[i] / 60000)
  end
end
local granted = {0, 0, 0, 0}
local wait = 0
if give then
  for i = 1, 4 do
    if levels[i] then
      levels[i] = math.max(-cap[i], math.min(cap[i], levels[i] + want[i] - need[i]))
    end
  end
else
  for i = 1, 4 do
    if levels[i] and need[i] > levels[i] then
      if need[i] > cap[i] then
        wait = -1
      elseif wait >= 0 then
        wait = math.max(wait, math.ceil((need[i] - levels[i]) * 60000 / rate[i]))
      end
    end
  end
  if wait == 0 then
    for i = 1, 4 do
      if levels[i] then
        local g = math.max(need[i], math.min(math.floor(levels[i]), want[i]))
        levels[i] = levels[i] - g
        granted[i] = g
      end
    end
  end
end
local out = {}
local longest = 0
for i = 1, 4 do
  out[i] = granted[i]
  if levels[i] then
    redis.call('HSET', KEYS[1], 'l' .. i, tostring(levels[i]))
    out[4 + i] = math.max(0, math.floor(levels[i]))
    local full = math.ceil(math.max(0, cap[i] - levels[i]) * 60000 / rate[i])
    out[8 + i] = full
    longest = math.max(longest, full)
  else
    out[4 + i] = 0
    out[8 + i] = 0
  end
end
redis.call('HSET', KEYS[1], 't', now)
redis.call('PEXPIRE', KEYS[1], longest + 60000)
out[13] = wait
return out
";

/// Renews this replica's heartbeat and says the fleet's generation: a
/// replica that finds no other alive starts a new one, named by the
/// store's clock (so a Redis that restarted empty never gives a number
/// the fleet used before).
const HEARTBEAT_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local alive = redis.call('ZCARD', KEYS[1])
local generation = tonumber(redis.call('GET', KEYS[2]) or '0')
local known = redis.call('ZSCORE', KEYS[1], ARGV[1])
if alive == 0 or generation == 0 then
  generation = now
  redis.call('SET', KEYS[2], generation)
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return {generation, alive + ((known and 0) or 1)}
";

/// Takes up to ARGV[2] places in service on a route for a replica, as many
/// as the fleet (the live replicas' places) has below `limit`: how many it
/// took, 0 when the fleet is full. A negative ARGV[2] gives places back.
const CAPACITY_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local delta = tonumber(ARGV[2])
if delta < 0 then
  local left = redis.call('HINCRBY', KEYS[1], ARGV[1], delta)
  if left <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
  return 0
end
local total = 0
local held = redis.call('HGETALL', KEYS[1])
for i = 1, #held, 2 do
  local expires = redis.call('ZSCORE', KEYS[2], held[i])
  if expires and tonumber(expires) > now then
    total = total + tonumber(held[i + 1])
  else
    redis.call('HDEL', KEYS[1], held[i])
  end
end
local granted = math.min(delta, tonumber(ARGV[3]) - total)
if granted <= 0 then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], granted)
redis.call('PEXPIRE', KEYS[1], 3600000)
return granted
";

/// The connection to the store, shared by every task. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Store {
    connection: ConnectionManager,
    client: redis::Client,
    timeout: Duration,
    bucket: Script,
    heartbeat: Script,
    capacity: Script,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl Store {
    /// A store at `url` (not connected yet: the first call connects, and a
    /// store that is down at start is a store that is down).
    ///
    /// # Errors
    /// The URL is not one the client accepts.
    pub(crate) fn new(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(Self {
            connection,
            client,
            timeout,
            bucket: Script::new(BUCKET_SCRIPT),
            heartbeat: Script::new(HEARTBEAT_SCRIPT),
            capacity: Script::new(CAPACITY_SCRIPT),
        })
    }

    /// The bound on every call.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The client, for the subscriber's own connection.
    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }

    async fn bounded<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        }
    }

    /// Renews `replica`'s heartbeat for `ttl`: the fleet's generation and
    /// how many replicas are alive.
    pub(crate) async fn heartbeat(
        &self,
        namespace: &str,
        replica: &str,
        ttl: Duration,
    ) -> Result<(u64, u64), StoreError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.heartbeat.prepare_invoke();
        invocation
            .key(format!("{namespace}:replicas"))
            .key(format!("{namespace}:generation"))
            .arg(replica)
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        self.bounded(invocation.invoke_async(&mut connection)).await
    }

    /// The replicas alive now.
    pub(crate) async fn replicas(&self, namespace: &str) -> Result<Vec<String>, StoreError> {
        let mut connection = self.connection.clone();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.bounded(connection.zrangebyscore(format!("{namespace}:replicas"), now, "+inf")).await
    }

    /// Takes from (`give = false`) or gives back to the bucket set at `key`.
    pub(crate) async fn bucket(
        &self,
        key: &str,
        give: bool,
        asks: &[KindAsk; 4],
    ) -> Result<BucketReply, StoreError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.bucket.prepare_invoke();
        invocation.key(key).arg(if give { "give" } else { "take" });
        for ask in asks {
            invocation.arg(ask.per_minute).arg(ask.capacity).arg(ask.need).arg(ask.want);
        }
        let out: Vec<i64> = self.bounded(invocation.invoke_async(&mut connection)).await?;
        let at = |index: usize| out.get(index).copied().unwrap_or(0);
        let whole = |value: i64| u64::try_from(value).unwrap_or(0);
        let wait = match at(12) {
            0 => None,
            -1 => Some(None),
            ms => Some(Some(Duration::from_millis(whole(ms)))),
        };
        Ok(BucketReply {
            granted: std::array::from_fn(|i| whole(at(i))),
            remaining: std::array::from_fn(|i| whole(at(4 + i))),
            until_full: std::array::from_fn(|i| Duration::from_millis(whole(at(8 + i)))),
            wait,
        })
    }

    /// Adds `by` to the counter at `key` (kept a day): its new value.
    pub(crate) async fn count(&self, key: &str, by: u64) -> Result<u64, StoreError> {
        let mut connection = self.connection.clone();
        let (value, _): (u64, bool) = self
            .bounded(redis::pipe().incr(key, by).expire(key, 86_400).query_async(&mut connection))
            .await?;
        Ok(value)
    }

    /// Up to `want` places in service on the route whose holders are at
    /// `key`, for `replica`, as many as the fleet's live replicas hold
    /// below `limit`: how many it took.
    pub(crate) async fn enter(
        &self,
        key: &str,
        replicas: &str,
        replica: &str,
        want: u32,
        limit: u32,
    ) -> Result<u32, StoreError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.capacity.prepare_invoke();
        invocation.key(key).key(replicas).arg(replica).arg(want).arg(limit);
        let taken: i64 = self.bounded(invocation.invoke_async(&mut connection)).await?;
        Ok(u32::try_from(taken).unwrap_or(0))
    }

    /// Gives back `count` of `replica`'s places on the route at `key`.
    pub(crate) async fn leave(
        &self,
        key: &str,
        replicas: &str,
        replica: &str,
        count: u32,
    ) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.capacity.prepare_invoke();
        invocation.key(key).key(replicas).arg(replica).arg(-i64::from(count)).arg(0);
        let _: i64 = self.bounded(invocation.invoke_async(&mut connection)).await?;
        Ok(())
    }

    /// The string at `key`, if any.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let mut connection = self.connection.clone();
        self.bounded(connection.get(key)).await
    }

    /// Sets `key` to `value` for a day.
    pub(crate) async fn set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        self.bounded(connection.set_ex(key, value, 86_400)).await
    }

    /// Deletes `key`.
    pub(crate) async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        self.bounded(connection.del(key)).await
    }

    /// Sets `field` of the hash at `key` to `value`; the hash is kept a day.
    pub(crate) async fn put_field(
        &self,
        key: &str,
        field: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        self.bounded(
            redis::pipe()
                .hset(key, field, value)
                .ignore()
                .expire(key, 86_400)
                .ignore()
                .query_async(&mut connection),
        )
        .await
    }

    /// Every field of the hash at `key`.
    pub(crate) async fn fields(&self, key: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut connection = self.connection.clone();
        self.bounded(connection.hgetall(key)).await
    }

    /// Publishes `message` on `channel`.
    pub(crate) async fn publish(&self, channel: &str, message: &str) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        self.bounded(connection.publish(channel, message)).await
    }
}
