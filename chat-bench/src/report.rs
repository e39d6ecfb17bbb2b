//! Latency histograms and result printing.

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// A latency histogram in microseconds (1 µs .. 60 s, 3 significant digits).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

/// Percentiles in microseconds, as JSON.
pub fn percentiles(h: &Histogram<u64>) -> Value {
    json!({
        "count": h.len(),
        "p50_us": h.value_at_quantile(0.50),
        "p99_us": h.value_at_quantile(0.99),
        "p999_us": h.value_at_quantile(0.999),
        "max_us": h.max(),
        "mean_us": (h.mean() * 10.0).round() / 10.0,
    })
}

pub fn describe(h: &Histogram<u64>) -> String {
    format!(
        "p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs ({} samples)",
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max(),
        h.len()
    )
}

/// Prints the machine-readable result line.
pub fn emit(result: Value) {
    println!("{result}");
}
