//! A log-bucketed histogram with the part of the `base2histogram` API that
//! openraft's runtime statistics use: `Histogram::{new, record, record_n,
//! percentile_stats}`, `PercentileStats` and `AsciiChart::{new, add, detailed}`.
//!
//! Why it exists: openraft creates its runtime-statistics histograms when a Raft
//! node starts, whether or not anyone reads them, and the published crate builds
//! value-to-bucket lookup tables for all sixteen of its precisions the first time
//! any histogram is made. Those tables stayed resident, about 27 MiB of an idle
//! server's 36 MiB. The workspace's `[patch.crates-io]` puts this crate in its
//! place; it has one precision and computes a value's bucket from its leading
//! zeros, so it needs no table at all.
//!
//! Buckets: values 0 to 3 have one bucket each; above that every power of two
//! `[2^k, 2^(k+1))` is cut into four equal buckets, so a bucket's width is at most
//! a quarter of its lower bound. 252 buckets cover all of `u64`.

use std::fmt;
use std::marker::PhantomData;

/// Buckets per power of two, as a number of bits.
const SUB_BITS: u32 = 2;
const SUB: usize = 1 << SUB_BITS;
/// Four exact buckets for 0..4, then four for each of the powers 2^2 .. 2^63.
const BUCKETS: usize = SUB + (64 - SUB_BITS as usize) * SUB;

/// The bucket a value falls in.
fn bucket_of(value: u64) -> usize {
    if value < SUB as u64 {
        return value as usize;
    }
    let msb = 63 - value.leading_zeros();
    let offset = (value >> (msb - SUB_BITS)) as usize & (SUB - 1);
    (msb - SUB_BITS + 1) as usize * SUB + offset
}

/// The smallest value of a bucket.
fn bucket_low(index: usize) -> u64 {
    if index < SUB {
        return index as u64;
    }
    let msb = (index / SUB) as u32 + SUB_BITS - 1;
    (1u64 << msb) | (((index % SUB) as u64) << (msb - SUB_BITS))
}

/// The largest value of a bucket.
fn bucket_high(index: usize) -> u64 {
    if index + 1 >= BUCKETS {
        u64::MAX
    } else {
        bucket_low(index + 1) - 1
    }
}

/// Counts of recorded values by bucket. `T` is accepted for the published
/// crate's per-slot metadata and is not used: there is one period only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram<T = ()> {
    counts: Vec<u64>,
    total: u64,
    min: u64,
    max: u64,
    _slot: PhantomData<T>,
}

impl<T> Default for Histogram<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Histogram<T> {
    /// An empty histogram; its counters are allocated at the first value.
    pub fn new() -> Self {
        Histogram {
            counts: Vec::new(),
            total: 0,
            min: u64::MAX,
            max: 0,
            _slot: PhantomData,
        }
    }

    /// Records one value.
    pub fn record(&mut self, value: u64) {
        self.record_n(value, 1);
    }

    /// Records a value `count` times.
    pub fn record_n(&mut self, value: u64, count: u64) {
        if count == 0 {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        self.counts[bucket_of(value)] += count;
        self.total += count;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// How many values were recorded.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The value at quantile `q` (0.0 to 1.0): the middle of the bucket holding
    /// the value of that rank, kept within the smallest and largest recorded;
    /// the first and last ranks are the smallest and largest themselves. Zero
    /// for an empty histogram.
    pub fn percentile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((self.total as f64 * q).ceil() as u64).clamp(1, self.total);
        if rank == 1 {
            return self.min;
        }
        if rank == self.total {
            return self.max;
        }
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (low, high) = (bucket_low(i), bucket_high(i));
                return (low + (high - low) / 2).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// The sample count and the usual percentiles.
    pub fn percentile_stats(&self) -> PercentileStats {
        PercentileStats {
            samples: self.total,
            p0_1: self.percentile(0.001),
            p1: self.percentile(0.01),
            p5: self.percentile(0.05),
            p10: self.percentile(0.10),
            p50: self.percentile(0.50),
            p90: self.percentile(0.90),
            p99: self.percentile(0.99),
            p99_9: self.percentile(0.999),
        }
    }

    /// The non-empty buckets as (smallest value, largest value, count).
    fn buckets(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, &n)| (bucket_low(i), bucket_high(i), n))
    }
}

/// A histogram's sample count and percentiles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PercentileStats {
    pub samples: u64,
    pub p0_1: u64,
    pub p1: u64,
    pub p5: u64,
    pub p10: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
}

impl fmt::Display for PercentileStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n={} p0.1={} p1={} p5={} p10={} p50={} p90={} p99={} p99.9={}",
            self.samples,
            self.p0_1,
            self.p1,
            self.p5,
            self.p10,
            self.p50,
            self.p90,
            self.p99,
            self.p99_9
        )
    }
}

/// Named histograms drawn as text bars, one block per histogram.
#[derive(Debug, Clone)]
pub struct AsciiChart<T = ()> {
    series: Vec<(String, Histogram<T>)>,
}

impl<T> Default for AsciiChart<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> AsciiChart<T> {
    pub fn new() -> Self {
        AsciiChart { series: Vec::new() }
    }

    /// Adds a histogram under a name.
    pub fn add(mut self, name: &str, hist: Histogram<T>) -> Self {
        self.series.push((name.to_string(), hist));
        self
    }

    /// The chart with a bar per non-empty bucket and each histogram's percentiles.
    pub fn detailed(&self) -> Detailed<'_, T> {
        Detailed(self)
    }
}

/// [`AsciiChart::detailed`]'s rendering.
pub struct Detailed<'a, T>(&'a AsciiChart<T>);

const BAR_WIDTH: u64 = 40;

impl<T> fmt::Display for Detailed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, hist) in &self.0.series {
            writeln!(f, "{name}")?;
            let largest = hist.buckets().map(|(_, _, n)| n).max().unwrap_or(0);
            let ranges: Vec<String> = hist
                .buckets()
                .map(|(low, high, _)| format!("[{low}, {high}]"))
                .collect();
            let width = ranges.iter().map(String::len).max().unwrap_or(0);
            for (range, (_, _, n)) in ranges.iter().zip(hist.buckets()) {
                let bar = (n * BAR_WIDTH).div_ceil(largest) as usize;
                writeln!(f, "{range:>width$} | {} {n}", "#".repeat(bar))?;
            }
            writeln!(f, "{}", hist.percentile_stats())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order_within_a_quarter() {
        assert_eq!(BUCKETS, 252);
        let mut expected_low = 0u64;
        for i in 0..BUCKETS {
            assert_eq!(bucket_low(i), expected_low, "bucket {i}");
            let high = bucket_high(i);
            assert!(high >= bucket_low(i));
            assert_eq!(bucket_of(bucket_low(i)), i);
            assert_eq!(bucket_of(high), i);
            if bucket_low(i) >= 4 {
                assert!(
                    high - bucket_low(i) < bucket_low(i) / 4 + 1,
                    "bucket {i} too wide"
                );
            }
            expected_low = high.wrapping_add(1);
        }
        assert_eq!(bucket_high(BUCKETS - 1), u64::MAX);
        for v in [
            5u64,
            9,
            10,
            11,
            12,
            100,
            1000,
            4095,
            4096,
            1 << 40,
            u64::MAX - 1,
        ] {
            let i = bucket_of(v);
            assert!(
                bucket_low(i) <= v && v <= bucket_high(i),
                "{v} not in bucket {i}"
            );
        }
    }

    #[test]
    fn percentiles_land_within_the_bucket_error() {
        let mut h: Histogram = Histogram::new();
        assert_eq!(h.percentile_stats(), PercentileStats::default());
        for v in 1..=1000u64 {
            h.record(v);
        }
        let s = h.percentile_stats();
        assert_eq!(s.samples, 1000);
        for (got, want) in [
            (s.p1, 10u64),
            (s.p10, 100),
            (s.p50, 500),
            (s.p90, 900),
            (s.p99, 990),
        ] {
            let err = got.abs_diff(want) as f64 / want as f64;
            assert!(err <= 0.125, "got {got} for {want}");
        }
        assert!(s.p99_9 <= 1000 && s.p0_1 >= 1);
        h.record_n(7, 0);
        assert_eq!(h.total(), 1000);
        h.record_n(1_000_000, 9000);
        assert_eq!(h.percentile_stats().samples, 10_000);
        let median = h.percentile(0.5);
        assert!((875_000..=1_000_000).contains(&median), "median {median}");
        // The largest recorded value bounds every answer.
        assert_eq!(h.percentile(1.0), 1_000_000);
    }

    #[test]
    fn chart_draws_each_non_empty_bucket() {
        let mut a: Histogram = Histogram::new();
        a.record_n(3, 2);
        a.record(100);
        let text = AsciiChart::new().add("stage", a).detailed().to_string();
        assert!(text.starts_with("stage\n"), "{text}");
        assert!(
            text.contains("[3, 3] | ######################################## 2"),
            "{text}"
        );
        assert!(
            text.contains("[96, 111] | #################### 1"),
            "{text}"
        );
        assert!(text.contains("n=3 "), "{text}");
    }
}
