//! A histogram of atomics. prometheus-client's `Histogram` keeps its
//! buckets behind one mutex; observed on every frame by every session, that
//! mutex would be a lock shared by all of them. This one only adds to
//! atomics and lets prometheus-client encode it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Counts observations of integer values (nanoseconds, frames) into fixed
/// buckets; exported in `unit`s (e.g. seconds = 1e-9 per nanosecond).
#[derive(Debug, Clone)]
pub struct AtomicHistogram {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Upper bounds, in observed units, ascending; `+Inf` is implicit.
    bounds: Box<[u64]>,
    /// One counter per bound, then the `+Inf` bucket.
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    count: AtomicU64,
    /// Exported value of one observed unit.
    unit: f64,
}

impl AtomicHistogram {
    /// `bounds` are upper bounds in observed units; `unit` scales them (and
    /// the sum) for export.
    pub fn new(bounds: impl IntoIterator<Item = u64>, unit: f64) -> AtomicHistogram {
        let mut bounds: Vec<u64> = bounds.into_iter().collect();
        bounds.sort_unstable();
        bounds.dedup();
        let buckets = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        AtomicHistogram {
            inner: Arc::new(Inner {
                bounds: bounds.into(),
                buckets,
                sum: AtomicU64::new(0),
                count: AtomicU64::new(0),
                unit,
            }),
        }
    }

    /// Latencies from 25 µs to about 3.3 s, in seconds.
    pub fn latency() -> AtomicHistogram {
        AtomicHistogram::new((0..18).map(|i| 25_000u64 << i), 1e-9)
    }

    /// Counts (e.g. queued frames) from 1 to 16384.
    pub fn counts() -> AtomicHistogram {
        AtomicHistogram::new((0..15).map(|i| 1u64 << i), 1.0)
    }

    pub fn observe(&self, value: u64) {
        let inner = &*self.inner;
        let bucket = inner.bounds.partition_point(|&b| b < value);
        inner.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        inner.sum.fetch_add(value, Ordering::Relaxed);
        inner.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn observe_duration(&self, took: Duration) {
        self.observe(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let inner = &*self.inner;
        // Read without a lock: a scrape racing an observation may see the
        // count one ahead of a bucket; Prometheus tolerates that.
        let buckets: Vec<(f64, u64)> = inner
            .bounds
            .iter()
            .map(|&b| b as f64 * inner.unit)
            .chain(std::iter::once(f64::INFINITY))
            .zip(inner.buckets.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        encoder.encode_histogram::<NoLabelSet>(
            inner.sum.load(Ordering::Relaxed) as f64 * inner.unit,
            inner.count.load(Ordering::Relaxed),
            &buckets,
            None::<&HashMap<usize, Exemplar<NoLabelSet, f64>>>,
        )
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_first_bucket_that_holds_them() {
        let h = AtomicHistogram::new([1, 2, 4], 1.0);
        for v in [0, 1, 2, 3, 4, 5, 100] {
            h.observe(v);
        }
        let counts: Vec<u64> = h
            .inner
            .buckets
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts, [2, 1, 2, 2]);
        assert_eq!(h.inner.sum.load(Ordering::Relaxed), 115);
    }
}
