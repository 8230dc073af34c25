//! One token bucket's arithmetic: a level that refills continuously at a
//! rate a minute up to a capacity, in exact integers (no float drift, so the
//! paused-clock tests can assert whole requests and nanoseconds).
//!
//! A level is kept in "token-nanoseconds of a minute": one token is
//! [`SCALE`] units, and a rate of `r` a minute adds exactly `r` units a
//! nanosecond. Everything is `i128` with saturating operations: the largest
//! capacity (10⁹ tokens) is 6·10¹⁹ units, beyond `i64`, far within `i128`.
//! A level may go below zero when a settlement charges more than was
//! estimated at admission (a debt the refill pays back first).

use std::time::Duration;

use tokio::time::Instant;

/// Units of level per token: the nanoseconds in a minute.
pub(crate) const SCALE: i128 = 60_000_000_000;

/// The longest refill step taken at once: a bucket idle longer is full
/// anyway, and the bound keeps `rate × elapsed` far from overflow.
const MAX_STEP: Duration = Duration::from_secs(24 * 3600);

/// What a bucket is: its refill rate a minute and its capacity, in tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spec {
    /// Tokens added a minute (at least 1).
    pub(crate) per_minute: u64,
    /// Tokens it holds when full (at least 1).
    pub(crate) capacity: u64,
}

impl Spec {
    fn capacity_units(self) -> i128 {
        i128::from(self.capacity).saturating_mul(SCALE)
    }

    fn rate(self) -> i128 {
        i128::from(self.per_minute.max(1))
    }
}

/// A bucket's level at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bucket {
    level: i128,
    at: Instant,
}

impl Bucket {
    /// A full bucket at `now`.
    pub(crate) fn full(spec: Spec, now: Instant) -> Self {
        Self { level: spec.capacity_units(), at: now }
    }

    /// Refills it to `now` at `spec`'s rate, up to its capacity (a smaller
    /// capacity, after a reload, takes effect here).
    pub(crate) fn refill(&mut self, spec: Spec, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).min(MAX_STEP);
        let elapsed = i128::try_from(elapsed.as_nanos()).unwrap_or(i128::MAX);
        self.level = self
            .level
            .saturating_add(spec.rate().saturating_mul(elapsed))
            .min(spec.capacity_units());
        self.at = self.at.max(now);
    }

    /// Whole tokens in it now (0 in debt).
    pub(crate) fn remaining(&self) -> u64 {
        u64::try_from((self.level / SCALE).max(0)).unwrap_or(u64::MAX)
    }

    /// Whether `cost` tokens can be taken now.
    pub(crate) fn holds(&self, cost: u64) -> bool {
        self.level >= i128::from(cost).saturating_mul(SCALE)
    }

    /// Takes `cost` tokens (the caller checked [`Bucket::holds`]).
    pub(crate) fn take(&mut self, cost: u64) {
        self.level = self.level.saturating_sub(i128::from(cost).saturating_mul(SCALE));
    }

    /// Gives `amount` tokens back (`amount < 0` charges more), up to the capacity.
    pub(crate) fn give_back(&mut self, spec: Spec, amount: i64) {
        self.level = self
            .level
            .saturating_add(i128::from(amount).saturating_mul(SCALE))
            .min(spec.capacity_units());
    }

    /// Time until it is full again, to the nanosecond, rounded up.
    pub(crate) fn until_full(&self, spec: Spec) -> Duration {
        wait(spec.capacity_units().saturating_sub(self.level), spec.rate())
    }

    /// Time until it holds `cost` tokens; `None` if it never can (`cost`
    /// is more than its capacity).
    pub(crate) fn until_holds(&self, spec: Spec, cost: u64) -> Option<Duration> {
        if cost > spec.capacity {
            return None;
        }
        Some(wait(i128::from(cost).saturating_mul(SCALE).saturating_sub(self.level), spec.rate()))
    }

    /// Whether it is full: a full bucket is the same as none at all, so
    /// the limiter may forget it.
    pub(crate) fn is_full(&self, spec: Spec) -> bool {
        self.level >= spec.capacity_units()
    }
}

/// `missing` units at `rate` a nanosecond: nanoseconds, rounded up.
fn wait(missing: i128, rate: i128) -> Duration {
    if missing <= 0 {
        return Duration::ZERO;
    }
    let nanos = missing.saturating_add(rate - 1) / rate;
    let seconds = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    let rest = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    Duration::new(seconds, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: Spec = Spec { per_minute: 60, capacity: 10 };

    #[tokio::test(start_paused = true)]
    async fn a_bucket_refills_one_token_a_second_at_sixty_a_minute() {
        let start = Instant::now();
        let mut bucket = Bucket::full(SPEC, start);
        assert_eq!(bucket.remaining(), 10);
        for _ in 0..10 {
            assert!(bucket.holds(1));
            bucket.take(1);
        }
        assert!(!bucket.holds(1));
        assert_eq!(bucket.until_holds(SPEC, 1), Some(Duration::from_secs(1)));
        assert_eq!(bucket.until_full(SPEC), Duration::from_secs(10));
        bucket.refill(SPEC, start + Duration::from_millis(999));
        assert!(!bucket.holds(1));
        assert_eq!(bucket.until_holds(SPEC, 1), Some(Duration::from_millis(1)));
        bucket.refill(SPEC, start + Duration::from_secs(1));
        assert!(bucket.holds(1));
        assert_eq!(bucket.remaining(), 1);
        bucket.refill(SPEC, start + Duration::from_secs(3600));
        assert_eq!(bucket.remaining(), 10, "never above capacity");
        assert!(bucket.is_full(SPEC));
        assert_eq!(bucket.until_holds(SPEC, 11), None, "more than it can ever hold");
    }

    #[tokio::test(start_paused = true)]
    async fn a_debt_is_paid_back_before_tokens_are_available() {
        let start = Instant::now();
        let spec = Spec { per_minute: 600, capacity: 600 };
        let mut bucket = Bucket::full(spec, start);
        bucket.take(600);
        bucket.give_back(spec, -100);
        assert_eq!(bucket.remaining(), 0);
        // 10 tokens a second: 10 s pays the debt, 1 s more for 10 tokens.
        assert_eq!(bucket.until_holds(spec, 10), Some(Duration::from_secs(11)));
        bucket.give_back(spec, 10_000);
        assert_eq!(bucket.remaining(), 600, "a refund never overfills it");
    }

    #[tokio::test(start_paused = true)]
    async fn the_largest_limits_do_not_overflow() {
        let start = Instant::now();
        let spec = Spec { per_minute: 1_000_000_000, capacity: 1_000_000_000 };
        let mut bucket = Bucket::full(spec, start);
        bucket.take(1_000_000_000);
        bucket.refill(spec, start + Duration::from_secs(100 * 24 * 3600));
        assert_eq!(bucket.remaining(), 1_000_000_000);
        let slow = Spec { per_minute: 1, capacity: 1_000_000_000 };
        let mut bucket = Bucket::full(slow, start);
        bucket.take(1_000_000_000);
        assert_eq!(bucket.until_full(slow), Duration::from_secs(60_000_000_000));
    }
}
