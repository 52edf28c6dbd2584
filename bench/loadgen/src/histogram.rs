//! A lock-free log-linear histogram of latencies in microseconds: exact
//! below 64 µs, then 64 buckets per power of two (under 1.6% error), so
//! recording is one relaxed atomic add and no allocation.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Enough powers of two for 2^42 µs (about 50 days).
const BUCKETS: usize = ((42 - SUB_BITS + 1) as usize + 1) * SUB as usize;

pub struct Histogram {
    counts: Box<[AtomicU64]>,
    max: AtomicU64,
}

/// Percentiles of a histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }
}

fn bucket_of(value: u64) -> usize {
    if value < SUB {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros(); // >= SUB_BITS
    let shift = exponent - SUB_BITS;
    let sub = (value >> shift) & (SUB - 1);
    let index = (u64::from(shift) + 1) * SUB + sub;
    (index as usize).min(BUCKETS - 1)
}

/// The middle of the values a bucket holds.
fn value_of(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < SUB {
        return bucket;
    }
    let shift = bucket / SUB - 1;
    let low = (SUB + bucket % SUB) << shift;
    low + ((1u64 << shift) >> 1)
}

impl Histogram {
    pub fn record(&self, value: u64) {
        self.counts[bucket_of(value)].fetch_add(1, Relaxed);
        self.max.fetch_max(value, Relaxed);
    }

    pub fn reset(&self) {
        self.counts.iter().for_each(|c| c.store(0, Relaxed));
        self.max.store(0, Relaxed);
    }

    pub fn summary(&self) -> Summary {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Relaxed)).collect();
        let count = counts.iter().sum();
        let max = self.max.load(Relaxed);
        let at = |q: f64| percentile(&counts, count, q).min(max);
        Summary {
            count,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max,
        }
    }
}

fn percentile(counts: &[u64], total: u64, quantile: f64) -> u64 {
    if total == 0 {
        return 0;
    }
    let rank = ((total as f64 * quantile).ceil() as u64).max(1);
    let mut seen = 0;
    for (bucket, &n) in counts.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return value_of(bucket);
        }
    }
    value_of(counts.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_values_within_two_percent() {
        for value in [
            0u64,
            1,
            63,
            64,
            65,
            100,
            1_000,
            12_345,
            999_999,
            3_600_000_000,
        ] {
            let back = value_of(bucket_of(value));
            let error = back.abs_diff(value) as f64 / value.max(1) as f64;
            assert!(error < 0.02, "{value} came back as {back}");
        }
    }

    #[test]
    fn percentiles_of_a_uniform_range() {
        let h = Histogram::default();
        (1..=10_000).for_each(|v| h.record(v));
        let s = h.summary();
        assert_eq!(s.count, 10_000);
        assert_eq!(s.max, 10_000);
        assert!(s.p50.abs_diff(5_000) < 100, "{s:?}");
        assert!(s.p99.abs_diff(9_900) < 160, "{s:?}");
        h.reset();
        assert_eq!(h.summary(), Summary::default());
    }
}
