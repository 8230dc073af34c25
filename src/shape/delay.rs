//! [`Delay`]: a constant, or a distribution a delay is drawn from (jitter).
//!
//! - `Uniform { min, max }`;
//! - `Normal { mean, stddev }`, cut at zero;
//! - `LogNormal`, given its median (p50) and 99th percentile (p99), the usual
//!   shape of real latencies: `ln X ~ N(ln p50, σ)` with `σ = ln(p99/p50) / z₀.₉₉`.
//!
//! Draws come from the request's own random stream, so a seed replays them.

use std::fmt;
use std::time::Duration;

use rand::{Rng, RngExt};
use rand_distr::{Distribution, LogNormal, Normal};

/// z such that P(Z < z) = 0.99 for a standard normal Z.
const Z_99: f64 = 2.326_347_874_040_841;

/// A delay: fixed, or drawn per use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Delay {
    /// Always this long.
    Fixed(Duration),
    /// Evenly between `min` and `max`.
    Uniform {
        /// Shortest.
        min: Duration,
        /// Longest.
        max: Duration,
    },
    /// Normal around `mean`; negative draws become zero.
    Normal {
        /// Mean.
        mean: Duration,
        /// Standard deviation.
        stddev: Duration,
    },
    /// Log-normal with this median and 99th percentile.
    LogNormal {
        /// Median.
        p50: Duration,
        /// 99th percentile (≥ p50).
        p99: Duration,
    },
}

impl Default for Delay {
    fn default() -> Self {
        Self::Fixed(Duration::ZERO)
    }
}

impl From<Duration> for Delay {
    fn from(duration: Duration) -> Self {
        Self::Fixed(duration)
    }
}

impl Delay {
    /// Whether every draw is zero.
    pub fn is_zero(&self) -> bool {
        match *self {
            Self::Fixed(duration) => duration.is_zero(),
            Self::Uniform { max, .. } => max.is_zero(),
            Self::Normal { mean, stddev } => mean.is_zero() && stddev.is_zero(),
            Self::LogNormal { p99, .. } => p99.is_zero(),
        }
    }

    /// One draw. A fixed delay takes nothing from `rng`.
    pub fn sample(&self, rng: &mut impl Rng) -> Duration {
        let seconds = match *self {
            Self::Fixed(duration) => return duration,
            Self::Uniform { min, max } if max <= min => return min,
            Self::Uniform { min, max } => rng.random_range(min.as_secs_f64()..=max.as_secs_f64()),
            Self::Normal { mean, stddev } => {
                match Normal::new(mean.as_secs_f64(), stddev.as_secs_f64()) {
                    Ok(normal) => normal.sample(rng),
                    Err(_) => mean.as_secs_f64(),
                }
            }
            Self::LogNormal { p50, p99 } => {
                let median = p50.as_secs_f64().max(1e-9);
                let sigma = (p99.as_secs_f64().max(median) / median).ln() / Z_99;
                match LogNormal::new(median.ln(), sigma) {
                    Ok(log_normal) => log_normal.sample(rng),
                    Err(_) => median,
                }
            }
        };
        // A distribution's tail is unbounded; a draw is not (NaN is zero).
        let longest = super::MAX_DURATION;
        Duration::try_from_secs_f64(seconds.clamp(0.0, longest.as_secs_f64()))
            .unwrap_or(Duration::ZERO)
    }

    /// The sum of `count` draws, at most [`MAX_DURATION`](super::MAX_DURATION):
    /// the time `count` tokens paced by this delay take. A fixed delay takes
    /// nothing from `rng`; a distribution draws once per token, as pacing would.
    pub fn sum(&self, count: u32, rng: &mut impl Rng) -> Duration {
        let longest = super::MAX_DURATION;
        if let Self::Fixed(each) = *self {
            return each.saturating_mul(count).min(longest);
        }
        let mut total = Duration::ZERO;
        for _ in 0..count {
            total = total.saturating_add(self.sample(rng)).min(longest);
        }
        total
    }

    /// The typical value: the constant, mean or median.
    pub fn typical(&self) -> Duration {
        match *self {
            Self::Fixed(duration) => duration,
            Self::Uniform { min, max } => (min + max) / 2,
            Self::Normal { mean, .. } => mean,
            Self::LogNormal { p50, .. } => p50,
        }
    }
}

impl fmt::Display for Delay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(d) => write!(f, "{d:?}"),
            Self::Uniform { min, max } => write!(f, "uniform {min:?}..{max:?}"),
            Self::Normal { mean, stddev } => write!(f, "normal {mean:?} ± {stddev:?}"),
            Self::LogNormal { p50, p99 } => write!(f, "log-normal p50 {p50:?}, p99 {p99:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::request_rng;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn draws(delay: Delay, n: u64) -> Vec<f64> {
        let mut rng = request_rng(7, 0);
        let mut values: Vec<f64> =
            (0..n).map(|_| delay.sample(&mut rng).as_secs_f64() * 1000.0).collect();
        values.sort_by(f64::total_cmp);
        values
    }

    fn percentile(sorted: &[f64], p: f64) -> f64 {
        sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
    }

    #[test]
    fn a_fixed_delay_draws_nothing() {
        let mut rng = request_rng(1, 0);
        let before = rng.clone();
        assert_eq!(Delay::Fixed(ms(5)).sample(&mut rng), ms(5));
        assert_eq!(rng, before);
    }

    #[test]
    fn uniform_draws_stay_in_range_and_spread() {
        let values = draws(Delay::Uniform { min: ms(50), max: ms(150) }, 20_000);
        assert!(values[0] >= 50.0 && *values.last().unwrap() <= 150.0);
        assert!((percentile(&values, 0.5) - 100.0).abs() < 3.0);
    }

    #[test]
    fn normal_draws_have_the_mean_and_spread_and_never_go_negative() {
        let values = draws(Delay::Normal { mean: ms(100), stddev: ms(20) }, 20_000);
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!((mean - 100.0).abs() < 1.0, "{mean}");
        assert!((percentile(&values, 0.8413) - 120.0).abs() < 2.0);
        let wide = draws(Delay::Normal { mean: ms(10), stddev: ms(50) }, 2_000);
        assert!(wide[0] >= 0.0);
    }

    #[test]
    fn log_normal_draws_hit_the_given_median_and_p99() {
        let values = draws(Delay::LogNormal { p50: ms(100), p99: ms(400) }, 50_000);
        let p50 = percentile(&values, 0.5);
        let p99 = percentile(&values, 0.99);
        assert!((p50 - 100.0).abs() < 3.0, "p50 {p50}");
        assert!((p99 - 400.0).abs() < 25.0, "p99 {p99}");
    }

    #[test]
    fn a_sum_is_the_sum_of_the_draws_pacing_would_make() {
        let mut rng = request_rng(1, 0);
        let before = rng.clone();
        assert_eq!(Delay::Fixed(ms(5)).sum(300, &mut rng), ms(1_500));
        assert_eq!(rng, before, "a fixed delay draws nothing");
        assert_eq!(Delay::Fixed(ms(5)).sum(0, &mut rng), Duration::ZERO);
        let week = crate::shape::MAX_DURATION;
        assert_eq!(Delay::Fixed(week).sum(u32::MAX, &mut rng), week, "bounded, no overflow");
        let jittered = Delay::Uniform { min: ms(10), max: ms(30) };
        let mut one_by_one = request_rng(2, 0);
        let each: Duration = (0..50).map(|_| jittered.sample(&mut one_by_one)).sum();
        let mut summed = request_rng(2, 0);
        assert_eq!(jittered.sum(50, &mut summed), each);
        assert_eq!(summed, one_by_one, "the same draws, in the same order");
    }

    #[test]
    fn draws_replay_for_a_seed() {
        let delay = Delay::LogNormal { p50: ms(100), p99: ms(400) };
        let a: Vec<_> = (0..5).map(|n| delay.sample(&mut request_rng(3, n))).collect();
        let b: Vec<_> = (0..5).map(|n| delay.sample(&mut request_rng(3, n))).collect();
        assert_eq!(a, b);
    }
}
