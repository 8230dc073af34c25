//! Stateful rate limits (`[rate_limits]` in a profile), the providers'
//! rate-limit headers, and the verdict on how each client reacts to being
//! told to wait. It sits at admission: the handler's `Exchange`
//! asks the [`Limiter`] before the request reaches the mock or the
//! upstream, puts the [`headers`] on every response, and reports what each
//! client did to the [`verdict`]. The rules are in `docs/rate-limits.md`.
//!
//! ```text
//! request ─▶ ClientKey (sha-256 of x-api-key / bearer; never the key)
//!         ─▶ verdict: early? immediate? storm? ignored x-should-retry?
//!         ─▶ Limiter::admit: the set of buckets of (route, client), each
//!            refilled to now; all hold the charge → taken; else 429 + wait
//!         ─▶ response: anthropic-ratelimit-* or x-ratelimit-* from the levels
//!         ─▶ end of the mock's reply: output settled to the real count
//! ```
//!
//! The buckets are in a sharded map ([`dashmap`]): requests of different
//! keys lock different shards, so no lock is shared by every request (a
//! `route` or `global` key shares its one set by definition). The map is
//! bounded: full buckets (the same as absent ones) are swept out when it
//! reaches [`MAX_BUCKET_SETS`]; past that, a new key is admitted from a full
//! set of its own that is not kept, so it is never refused for another
//! key's use (and is not limited until there is room to track it).

pub(crate) mod bucket;
pub(crate) mod headers;
pub(crate) mod usage;
pub(crate) mod verdict;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use hyper::HeaderMap;
use hyper::header::{AUTHORIZATION, HeaderName};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::config::{LimitKey, RateLimits};
use bucket::{Bucket, Spec};

/// Bucket sets held at once, at most (one per route and API key).
pub(crate) const MAX_BUCKET_SETS: usize = 100_000;

/// How often, at most, a full map is swept for full buckets.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// One of the limits a profile can set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitKind {
    /// Requests a minute.
    Requests,
    /// Input tokens a minute.
    InputTokens,
    /// Output tokens a minute.
    OutputTokens,
    /// Input and output tokens together a minute.
    Tokens,
}

impl LimitKind {
    /// Every kind, in the order of [`Levels`].
    pub(crate) const ALL: [Self; 4] =
        [Self::Requests, Self::InputTokens, Self::OutputTokens, Self::Tokens];

    /// The metric label and the admin report's name.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::InputTokens => "input_tokens",
            Self::OutputTokens => "output_tokens",
            Self::Tokens => "tokens",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Self::Requests => 0,
            Self::InputTokens => 1,
            Self::OutputTokens => 2,
            Self::Tokens => 3,
        }
    }

    /// The bucket of this kind that `limits` set.
    pub(crate) fn spec(self, limits: &RateLimits) -> Option<Spec> {
        let per_minute = match self {
            Self::Requests => limits.requests_per_minute,
            Self::InputTokens => limits.input_tokens_per_minute,
            Self::OutputTokens => limits.output_tokens_per_minute,
            Self::Tokens => limits.tokens_per_minute,
        }?;
        let capacity = match self {
            Self::Requests => limits.burst.unwrap_or(per_minute),
            _ => per_minute,
        };
        Some(Spec { per_minute, capacity })
    }
}

/// What a request costs: one request, and its tokens as estimated at admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Charge {
    /// Input tokens (the count_tokens estimate of the body).
    pub(crate) input_tokens: u64,
    /// Output tokens: the request's `max_tokens` (0 when it sets none).
    pub(crate) output_tokens: u64,
}

impl Charge {
    pub(crate) fn cost(self, kind: LimitKind) -> u64 {
        match kind {
            LimitKind::Requests => 1,
            LimitKind::InputTokens => self.input_tokens,
            LimitKind::OutputTokens => self.output_tokens,
            LimitKind::Tokens => self.input_tokens.saturating_add(self.output_tokens),
        }
    }
}

/// One bucket's figures, as the headers report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Level {
    /// Its limit a minute.
    pub(crate) limit: u64,
    /// Whole tokens (or requests) left.
    pub(crate) remaining: u64,
    /// Time until it is full again.
    pub(crate) until_full: Duration,
}

/// The levels of a set of buckets, by [`LimitKind`]; `None` where no limit is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Levels(pub(crate) [Option<Level>; 4]);

impl Levels {
    /// The level of `kind`'s bucket.
    pub(crate) fn get(&self, kind: LimitKind) -> Option<Level> {
        self.0.get(kind.index()).copied().flatten()
    }
}

/// Why a request was refused, with what the 429 reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Limited {
    /// The limit that refused it (the one with the longest wait).
    pub(crate) kind: LimitKind,
    /// That limit, a minute.
    pub(crate) limit: u64,
    /// What was used of it (capacity minus what is left).
    pub(crate) used: u64,
    /// What the request asked of it.
    pub(crate) requested: u64,
    /// Time until the buckets admit the request; `None` if they never
    /// can (it asks for more than a full bucket holds).
    pub(crate) wait: Option<Duration>,
    /// The model the request named, for OpenAI's message.
    pub(crate) model: Option<String>,
}

/// The limiter's answer.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Taken from every bucket; the levels after it.
    Admitted(Levels),
    /// Not taken from any bucket; the levels as they are.
    Refused(Levels, Limited),
}

/// A client, told apart by its API key, which is never kept: only a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientKey {
    /// The first 8 bytes of the key's SHA-256 (0 for a request without one).
    pub(crate) id: u64,
}

impl ClientKey {
    /// The request's `x-api-key`, `x-goog-api-key`, bearer token, SigV4
    /// access key id (AWS's `Credential=AKID/...`) or `key` query parameter
    /// (Google's, in `query`), the first there is, hashed.
    pub(crate) fn of(headers: &HeaderMap, query: Option<&str>) -> Self {
        static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
        static X_GOOG_API_KEY: HeaderName = HeaderName::from_static("x-goog-api-key");
        let key = headers
            .get(&X_API_KEY)
            .or_else(|| headers.get(&X_GOOG_API_KEY))
            .map(|v| v.as_bytes())
            .or_else(|| {
                let value = headers.get(AUTHORIZATION)?.as_bytes();
                let scheme = value.get(..7)?;
                scheme.eq_ignore_ascii_case(b"bearer ").then(|| value.get(7..)).flatten()
            })
            .or_else(|| {
                // SigV4: the access key id, which names the AWS identity.
                let value = headers.get(AUTHORIZATION)?.as_bytes();
                let rest = value.strip_prefix(b"AWS4-HMAC-SHA256 ")?;
                let at = memchr::memmem::find(rest, b"Credential=")? + b"Credential=".len();
                let id = &rest[at..];
                Some(&id[..memchr::memchr(b'/', id).unwrap_or(id.len())])
            })
            .or_else(|| {
                let pairs = query?.split('&');
                pairs.filter_map(|pair| pair.strip_prefix("key=")).next().map(str::as_bytes)
            });
        let Some(key) = key.filter(|k| !k.is_empty()) else {
            return Self { id: 0 };
        };
        let digest = Sha256::digest(key);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Self { id: u64::from_be_bytes(first).max(1) }
    }

    /// How reports name it: `key:` and 12 hex digits of the key's SHA-256,
    /// which a test can compute from its own key; `anonymous` without one.
    pub(crate) fn label(&self) -> String {
        if self.id == 0 { "anonymous".to_string() } else { format!("key:{:012x}", self.id >> 16) }
    }
}

/// Which requests share a set of buckets: a hash of the route's name (the
/// same across reloads), the client's key id, and for `api_key_and_model` a
/// hash of the model. `Copy`, so a request allocates nothing to find its set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SetId {
    /// A hash of the route's name (0 for `global`).
    route: u64,
    /// The client's key id (0 for `route` and `global`).
    client: u64,
    /// A hash of the model (0 unless `api_key_and_model`, or no model).
    model: u64,
}

impl SetId {
    /// The set of `limits.key` for a request of `client` on `route`, for
    /// `model` (the request's, when known).
    pub(crate) fn new(
        key: LimitKey,
        route: &str,
        client: Option<&ClientKey>,
        model: Option<&str>,
    ) -> Self {
        let hash = |name: &str| {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::hash::DefaultHasher::new();
            name.hash(&mut hasher);
            hasher.finish().max(1)
        };
        let client = client.map_or(0, |c| c.id);
        match key {
            LimitKey::Global => Self { route: 0, client: 0, model: 0 },
            LimitKey::Route => Self { route: hash(route), client: 0, model: 0 },
            LimitKey::ApiKey => Self { route: hash(route), client, model: 0 },
            LimitKey::ApiKeyAndModel => {
                Self { route: hash(route), client, model: model.map_or(0, hash) }
            }
        }
    }
}

impl SetId {
    /// How the fleet's store names the set (`fleet/limits.rs`): the same
    /// hashes on every replica of one build.
    pub(crate) fn store_key(&self) -> String {
        format!("{:x}.{:x}.{:x}", self.route, self.client, self.model)
    }
}

/// How the admin report names a set of buckets.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SetName<'a> {
    /// The route's name.
    pub(crate) route: &'a str,
    /// The model, for `api_key_and_model`.
    pub(crate) model: Option<&'a str>,
}

impl<'a> From<&'a str> for SetName<'a> {
    fn from(route: &'a str) -> Self {
        Self { route, model: None }
    }
}

/// A set of buckets, each with the spec it was last used with.
#[derive(Debug, Default)]
struct BucketSet {
    buckets: [Option<(Spec, Bucket)>; 4],
    /// The route's name (empty for `global`).
    route: Box<str>,
    /// The model's name (empty unless `api_key_and_model`).
    model: Box<str>,
}

impl BucketSet {
    /// Brings every bucket to `limits` and `now`: new ones full, dropped
    /// ones gone, the rest refilled.
    fn refresh(&mut self, limits: &RateLimits, now: Instant) {
        for kind in LimitKind::ALL {
            let Some(slot) = self.buckets.get_mut(kind.index()) else { continue };
            *slot = kind.spec(limits).map(|spec| match slot.take() {
                Some((_, mut bucket)) => {
                    bucket.refill(spec, now);
                    (spec, bucket)
                }
                None => (spec, Bucket::full(spec, now)),
            });
        }
    }

    fn levels(&self) -> Levels {
        Levels(self.buckets.map(|slot| {
            slot.map(|(spec, bucket)| Level {
                limit: spec.per_minute,
                remaining: bucket.remaining(),
                until_full: bucket.until_full(spec),
            })
        }))
    }

    /// Whether every bucket is full at `now` (the set can be forgotten).
    fn is_full(&self, now: Instant) -> bool {
        self.buckets.iter().flatten().all(|(spec, bucket)| {
            let mut bucket = *bucket;
            bucket.refill(*spec, now);
            bucket.is_full(*spec)
        })
    }
}

/// Every bucket set, shared by all connections and kept across reloads
/// (a reload changes the rates; the levels carry on).
#[derive(Debug)]
pub(crate) struct Limiter {
    sets: DashMap<SetId, BucketSet>,
    /// Sets held (the map's own `len` locks every shard).
    held: AtomicUsize,
    max_sets: usize,
    started: Instant,
    /// When the last sweep ran, in ms since `started`.
    last_sweep: AtomicU64,
    /// Requests admitted untracked because the map was full.
    untracked: AtomicU64,
}

impl Default for Limiter {
    fn default() -> Self {
        Self::with_capacity(MAX_BUCKET_SETS)
    }
}

impl Limiter {
    /// A limiter that holds at most `max_sets` bucket sets.
    pub(crate) fn with_capacity(max_sets: usize) -> Self {
        Self {
            sets: DashMap::new(),
            held: AtomicUsize::new(0),
            max_sets,
            started: Instant::now(),
            last_sweep: AtomicU64::new(0),
            untracked: AtomicU64::new(0),
        }
    }

    /// Charges `charge` to `id`'s buckets under `limits` at `now`, if every
    /// one holds it; otherwise takes nothing and says which limit refused
    /// it and for how long.
    pub(crate) fn admit<'a>(
        &self,
        limits: &RateLimits,
        id: SetId,
        name: impl Into<SetName<'a>>,
        charge: Charge,
        now: Instant,
    ) -> Decision {
        if !self.room_for(id, now) {
            // The map is full of other keys: this key's buckets would be new,
            // so full; it is admitted from them, and they are not kept.
            self.untracked.fetch_add(1, Ordering::Relaxed);
            let mut fresh = BucketSet::default();
            fresh.refresh(limits, now);
            return Self::charge(&mut fresh, limits, charge);
        }
        let mut set = match self.sets.entry(id) {
            Entry::Occupied(set) => set.into_ref(),
            Entry::Vacant(vacant) => {
                self.held.fetch_add(1, Ordering::Relaxed);
                let name = name.into();
                let route = if limits.key == LimitKey::Global { "" } else { name.route };
                let model = match limits.key {
                    LimitKey::ApiKeyAndModel => name.model.unwrap_or_default(),
                    _ => "",
                };
                vacant.insert(BucketSet {
                    route: route.into(),
                    model: model.into(),
                    ..BucketSet::default()
                })
            }
        };
        set.refresh(limits, now);
        Self::charge(&mut set, limits, charge)
    }

    /// Takes `charge` from every bucket of `set` if each holds it, or says
    /// which limit refuses it and for how long.
    fn charge(set: &mut BucketSet, limits: &RateLimits, charge: Charge) -> Decision {
        let mut refusal: Option<(LimitKind, Option<Duration>)> = None;
        for kind in LimitKind::ALL {
            let Some(Some((spec, bucket))) = set.buckets.get(kind.index()) else { continue };
            let cost = charge.cost(kind);
            if bucket.holds(cost) {
                continue;
            }
            let wait = bucket.until_holds(*spec, cost);
            // The longest wait refuses it; "never" is the longest of all.
            let longer = match (refusal, wait) {
                (None, _) | (Some((_, Some(_))), None) => true,
                (Some((_, Some(worst))), Some(wait)) => wait > worst,
                (Some((_, None)), _) => false,
            };
            if longer {
                refusal = Some((kind, wait));
            }
        }
        let Some((kind, wait)) = refusal else {
            for kind in LimitKind::ALL {
                if let Some(Some((_, bucket))) = set.buckets.get_mut(kind.index()) {
                    bucket.take(charge.cost(kind));
                }
            }
            return Decision::Admitted(set.levels());
        };
        let levels = set.levels();
        let level = levels.get(kind);
        let capacity = kind.spec(limits).map_or(0, |spec| spec.capacity);
        let limited = Limited {
            kind,
            limit: level.map_or(0, |l| l.limit),
            used: capacity.saturating_sub(level.map_or(0, |l| l.remaining)),
            requested: charge.cost(kind),
            wait,
            model: None,
        };
        Decision::Refused(levels, limited)
    }

    /// Settles a request's output tokens: `estimated` were charged at
    /// admission and `actual` were produced, so the difference goes back
    /// to (or is charged more to) the output and total-token buckets.
    pub(crate) fn settle(&self, limits: &RateLimits, id: &SetId, estimated: u64, actual: u64) {
        let difference = i64::try_from(estimated)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(actual).unwrap_or(i64::MAX));
        if difference == 0 {
            return;
        }
        if let Some(mut set) = self.sets.get_mut(id) {
            for kind in [LimitKind::OutputTokens, LimitKind::Tokens] {
                if let (Some(spec), Some(Some((_, bucket)))) =
                    (kind.spec(limits), set.buckets.get_mut(kind.index()))
                {
                    bucket.give_back(spec, difference);
                }
            }
        }
    }

    /// Whether `id`'s set is held, or there is room for it (after
    /// forgetting the full ones, when the map is full).
    fn room_for(&self, id: SetId, now: Instant) -> bool {
        if self.held.load(Ordering::Relaxed) < self.max_sets || self.sets.contains_key(&id) {
            return true;
        }
        self.sweep(now);
        self.held.load(Ordering::Relaxed) < self.max_sets
    }

    /// Requests admitted from a set that was not kept, the map being full.
    pub(crate) fn untracked(&self) -> u64 {
        self.untracked.load(Ordering::Relaxed)
    }

    /// Forgets the sets whose buckets are all full, at most once a
    /// [`SWEEP_EVERY`] (a sweep walks the whole map).
    fn sweep(&self, now: Instant) {
        let since = u64::try_from(now.saturating_duration_since(self.started).as_millis())
            .unwrap_or(u64::MAX);
        let last = self.last_sweep.load(Ordering::Relaxed);
        let due = last == 0 || since.saturating_sub(last) >= SWEEP_EVERY.as_millis() as u64;
        if !due
            || self
                .last_sweep
                .compare_exchange(last, since.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.sets.retain(|_, set| {
            let keep = !set.is_full(now);
            if !keep {
                self.held.fetch_sub(1, Ordering::Relaxed);
            }
            keep
        });
    }

    /// Bucket sets held now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Up to `at_most` sets and their levels at `now`, fullest last, for
    /// the admin report.
    pub(crate) fn report(&self, at_most: usize, now: Instant) -> Vec<SetReport> {
        let mut sets: Vec<SetReport> = self
            .sets
            .iter()
            .map(|set| {
                let mut levels = set.levels();
                for (slot, stored) in levels.0.iter_mut().zip(set.buckets.iter()) {
                    if let (Some(level), Some((spec, bucket))) = (slot.as_mut(), stored) {
                        let mut bucket = *bucket;
                        bucket.refill(*spec, now);
                        level.remaining = bucket.remaining();
                        level.until_full = bucket.until_full(*spec);
                    }
                }
                SetReport {
                    route: set.route.to_string(),
                    model: set.model.to_string(),
                    client: ClientKey { id: set.key().client },
                    levels,
                }
            })
            .collect();
        sets.sort_by_key(|set| std::cmp::Reverse(set.longest_until_full()));
        sets.truncate(at_most);
        sets
    }

    /// Forgets every bucket (`DELETE /rate-limits`): every key starts full.
    pub(crate) fn clear(&self) {
        self.sets.clear();
        self.held.store(0, Ordering::Relaxed);
    }
}

/// One set of buckets in the admin report.
#[derive(Debug)]
pub(crate) struct SetReport {
    /// Its route (empty for `global`).
    pub(crate) route: String,
    /// Its model (empty unless `api_key_and_model`).
    pub(crate) model: String,
    /// Its client (id 0 for `route`, `global`, or no key).
    pub(crate) client: ClientKey,
    /// Its levels now.
    pub(crate) levels: Levels,
}

impl SetReport {
    fn longest_until_full(&self) -> Duration {
        self.levels.0.iter().flatten().map(|l| l.until_full).max().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;

/// Where a request's output tokens are settled: this replica's buckets
/// ([`Limiter`]), or a fleet's lease of them.
pub(crate) trait Settle: Send + Sync + std::fmt::Debug {
    /// `estimated` output tokens were charged to `id` under `limits`, and
    /// `actual` were produced.
    fn settle(&self, limits: &RateLimits, id: &SetId, estimated: u64, actual: u64);
}

impl Settle for Limiter {
    fn settle(&self, limits: &RateLimits, id: &SetId, estimated: u64, actual: u64) {
        Limiter::settle(self, limits, id, estimated, actual);
    }
}

/// A request's output tokens to settle when its response ends: `max_tokens`
/// was charged at admission; once the source says how many it produced
/// ([`Settlement::produced`]), dropping this (at the end of the response,
/// or when the client leaves) gives the difference back.
#[derive(Debug)]
pub(crate) struct Settlement {
    settler: std::sync::Arc<dyn Settle>,
    limits: RateLimits,
    id: SetId,
    estimated: u64,
    actual: Option<u64>,
}

impl Settlement {
    /// Output tokens charged at admission to `id`'s buckets, settled by `settler`.
    pub(crate) fn new(
        settler: std::sync::Arc<dyn Settle>,
        limits: RateLimits,
        id: SetId,
        estimated: u64,
    ) -> Self {
        Self { settler, limits, id, estimated, actual: None }
    }

    /// The source produced `tokens` output tokens.
    pub(crate) fn produced(&mut self, tokens: u64) {
        self.actual = Some(tokens);
    }
}

impl Drop for Settlement {
    fn drop(&mut self) {
        if let Some(actual) = self.actual {
            self.settler.settle(&self.limits, &self.id, self.estimated, actual);
        }
    }
}
