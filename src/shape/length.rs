//! [`Length`]: how many tokens a mock text reply has, a count or a
//! distribution drawn once per reply (`tokens_per_response`,
//! docs/mock.md, "Reply length"). The request's `max_tokens` caps the draw
//! (the mock then stops with `max_tokens`).
//!
//! Draws come from the request's own random stream, like a [`Delay`](super::Delay)'s.

use std::fmt;

use rand::{Rng, RngExt};
use rand_distr::{Distribution, LogNormal, Normal};

/// The fewest and most tokens a reply has (every reply has a first token).
pub const LENGTH_RANGE: std::ops::RangeInclusive<u32> = 1..=100_000;

/// z such that P(Z < z) = 0.99 for a standard normal Z.
const Z_99: f64 = 2.326_347_874_040_841;

/// Tokens in a text reply: fixed, or drawn per reply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Length {
    /// Always this many.
    Fixed(u32),
    /// Evenly from `min` to `max`.
    Uniform {
        /// Fewest.
        min: u32,
        /// Most.
        max: u32,
    },
    /// Normal around `mean`, rounded.
    Normal {
        /// Mean.
        mean: u32,
        /// Standard deviation.
        stddev: u32,
    },
    /// Log-normal with this median and 99th percentile: most replies short,
    /// a long tail, as real output lengths are.
    LogNormal {
        /// Median.
        p50: u32,
        /// 99th percentile (at least the median).
        p99: u32,
    },
}

impl Length {
    /// One draw, within [`LENGTH_RANGE`]. A fixed length takes nothing
    /// from `rng`, so a seeded run replays as before distributions existed.
    pub fn draw(&self, rng: &mut impl Rng) -> u32 {
        let drawn = match *self {
            Self::Fixed(count) => return count.clamp(*LENGTH_RANGE.start(), *LENGTH_RANGE.end()),
            Self::Uniform { min, max } if max <= min => f64::from(min),
            Self::Uniform { min, max } => f64::from(rng.random_range(min..=max)),
            Self::Normal { mean, stddev } => Normal::new(f64::from(mean), f64::from(stddev))
                .map_or(f64::from(mean), |normal| normal.sample(rng)),
            Self::LogNormal { p50, p99 } => {
                let median = f64::from(p50.max(1));
                let sigma = (f64::from(p99).max(median) / median).ln() / Z_99;
                LogNormal::new(median.ln(), sigma)
                    .map_or(median, |log_normal| log_normal.sample(rng))
            }
        };
        let (low, high) = (f64::from(*LENGTH_RANGE.start()), f64::from(*LENGTH_RANGE.end()));
        // Clamped to the range (NaN is the fewest), so the cast is exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let count = if drawn.is_nan() { low } else { drawn.round().clamp(low, high) } as u32;
        count
    }

    /// The typical count: the constant, middle, mean or median.
    pub fn typical(&self) -> u32 {
        match *self {
            Self::Fixed(count) => count,
            Self::Uniform { min, max } => min + (max.saturating_sub(min)) / 2,
            Self::Normal { mean, .. } => mean,
            Self::LogNormal { p50, .. } => p50,
        }
    }
}

impl From<u32> for Length {
    fn from(count: u32) -> Self {
        Self::Fixed(count)
    }
}

impl fmt::Display for Length {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(count) => write!(f, "{count}"),
            Self::Uniform { min, max } => write!(f, "uniform {min} to {max}"),
            Self::Normal { mean, stddev } => write!(f, "normal, mean {mean}, stddev {stddev}"),
            Self::LogNormal { p50, p99 } => write!(f, "lognormal, p50 {p50}, p99 {p99}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::request_rng;
    use proptest::prelude::*;

    #[test]
    fn a_fixed_length_draws_nothing_and_a_distribution_draws_once() {
        let (mut a, mut b) = (request_rng(1, 0), request_rng(1, 0));
        assert_eq!(Length::Fixed(50).draw(&mut a), 50);
        assert_eq!(a.random::<u64>(), b.random::<u64>(), "the stream is where it was");
        let lognormal = Length::LogNormal { p50: 200, p99: 2000 };
        let draws: Vec<u32> = (0..2000).map(|_| lognormal.draw(&mut a)).collect();
        let below_median = draws.iter().filter(|&&n| n <= 200).count();
        assert!((900..=1100).contains(&below_median), "{below_median} of 2000 at most the median");
        let above_p99 = draws.iter().filter(|&&n| n > 2000).count();
        assert!(above_p99 <= 50, "{above_p99} of 2000 past the 99th percentile");
    }

    proptest! {
        #[test]
        fn every_draw_is_a_whole_count_within_the_range(
            seed in any::<u64>(), a in 0u32..=200_000, b in 0u32..=200_000, kind in 0u8..4
        ) {
            let length = match kind {
                0 => Length::Fixed(a),
                1 => Length::Uniform { min: a.min(b), max: a.max(b) },
                2 => Length::Normal { mean: a, stddev: b },
                _ => Length::LogNormal { p50: a, p99: b },
            };
            let drawn = length.draw(&mut request_rng(seed, 0));
            prop_assert!(LENGTH_RANGE.contains(&drawn));
        }
    }
}
