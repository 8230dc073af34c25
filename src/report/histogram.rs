//! A run's duration histogram: 64 buckets that grow by a quarter from
//! 50 µs (the last bound is about 62 s), counted with atomic adds because
//! it is observed on every token. Quantiles are a bucket's upper bound: at
//! most a quarter above the true value.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

const BUCKETS: usize = 64;
const FIRST_BOUND_NS: f64 = 50_000.0;
const GROWTH: f64 = 1.25;

/// Counts of durations by bucket.
#[derive(Debug)]
pub(crate) struct Histogram {
    /// One count per bound, then one for longer.
    counts: [AtomicU64; BUCKETS + 1],
}

impl Default for Histogram {
    fn default() -> Self {
        Self { counts: std::array::from_fn(|_| AtomicU64::new(0)) }
    }
}

/// Every bucket's upper bound in nanoseconds, computed once: an
/// observation is a binary search, not a logarithm, on every token.
static BOUNDS_NS: LazyLock<[u64; BUCKETS]> = LazyLock::new(|| {
    std::array::from_fn(|index| {
        let exponent = i32::try_from(index).unwrap_or(i32::MAX);
        u64_of(FIRST_BOUND_NS * GROWTH.powi(exponent))
    })
});

/// The upper bound of bucket `index`.
fn bound(index: usize) -> Duration {
    Duration::from_nanos(BOUNDS_NS.get(index).copied().unwrap_or(u64::MAX))
}

/// A non-negative finite float as a whole number (saturating).
fn u64_of(value: f64) -> u64 {
    // Bounds are at most about 6.2e10 ns: the cast is exact enough.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let whole = value.clamp(0.0, 1.8e19) as u64;
    whole
}

impl Histogram {
    /// Counts `value` in the first bucket whose bound is at least it.
    pub(crate) fn observe(&self, value: Duration) {
        let ns = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        // The first bound at least `ns`; past the last, the overflow bucket.
        let index = BOUNDS_NS.partition_point(|&bound| bound < ns);
        if let Some(count) = self.counts.get(index) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> Vec<u64> {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }

    /// Values counted.
    pub(crate) fn count(&self) -> u64 {
        self.snapshot().iter().sum()
    }

    /// The upper bound of the bucket holding quantile `q`; `None` when empty
    /// (or when it lies past the last bound).
    pub(crate) fn quantile(&self, q: f64) -> Option<Duration> {
        let counts = self.snapshot();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let rank = u64_of((q.clamp(0.0, 1.0) * total as f64).ceil()).max(1);
        let mut seen = 0;
        for (index, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return (index < BUCKETS).then(|| bound(index));
            }
        }
        None
    }

    /// `{"count", "p50", "p90", "p99"}` in milliseconds (each "at most").
    pub(crate) fn summary(&self) -> Value {
        let ms = |q| self.quantile(q).map(super::millis);
        json!({"count": self.count(), "p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99)})
    }

    /// The non-empty buckets: `[[upper bound ms, count], ...]`, `null` for
    /// the bound past the last.
    pub(crate) fn buckets_json(&self) -> Value {
        let counts = self.snapshot();
        let buckets: Vec<Value> = counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(index, count)| {
                let le = (index < BUCKETS).then(|| super::millis(bound(index)));
                json!([le, count])
            })
            .collect();
        Value::Array(buckets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quantiles_are_the_bound_of_their_bucket() {
        let histogram = Histogram::default();
        assert_eq!(histogram.quantile(0.5), None);
        for ms in [1u64, 2, 3, 100] {
            histogram.observe(Duration::from_millis(ms));
        }
        assert_eq!(histogram.count(), 4);
        let p50 = histogram.quantile(0.5).unwrap();
        assert!(p50 >= Duration::from_millis(2) && p50 <= Duration::from_micros(2500), "{p50:?}");
        let p99 = histogram.quantile(0.99).unwrap();
        assert!(p99 >= Duration::from_millis(100) && p99 <= Duration::from_millis(125), "{p99:?}");
    }

    proptest! {
        #[test]
        fn every_value_lands_in_the_first_bucket_that_holds_it(ns in 0u64..100_000_000_000) {
            let histogram = Histogram::default();
            let value = Duration::from_nanos(ns);
            histogram.observe(value);
            let index = histogram.snapshot().iter().position(|c| *c == 1).unwrap();
            if index < BUCKETS {
                prop_assert!(value <= bound(index));
            }
            if index > 0 {
                prop_assert!(value > bound(index - 1));
            }
        }
    }
}
