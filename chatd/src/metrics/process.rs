//! The standard `process_*` metrics (CPU time, memory, descriptors), read
//! from `/proc/self` at each scrape. Elsewhere than Linux they are absent.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second in `/proc/<pid>/stat` (USER_HZ, fixed by the
/// kernel's ABI at 100 on every architecture chatd builds for).
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Default)]
pub struct ProcessCollector;

/// What one scrape read.
#[derive(Debug, Default, PartialEq)]
struct Sample {
    cpu_seconds: f64,
    resident_bytes: i64,
    virtual_bytes: i64,
    open_fds: i64,
    max_fds: i64,
    threads: i64,
    start_time_seconds: f64,
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = read() else { return Ok(()) };
        let cpu = ConstCounter::new(s.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time the process has used, in seconds.",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory (RSS), in bytes",
                s.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size, in bytes",
                s.virtual_bytes,
            ),
            (
                "process_open_fds",
                "Open file descriptors (sockets, files, the database).",
                s.open_fds,
            ),
            (
                "process_max_fds",
                "The limit on open file descriptors (RLIMIT_NOFILE).",
                s.max_fds,
            ),
            (
                "process_threads",
                "Operating-system threads of the process.",
                s.threads,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let start = ConstGauge::new(s.start_time_seconds);
        start.encode(encoder.encode_descriptor(
            "process_start_time_seconds",
            "When the process started, in seconds since the Unix epoch.",
            None,
            start.metric_type(),
        )?)?;
        Ok(())
    }
}

fn read() -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which may itself hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // Numbered as in proc(5), minus 3: state is field 3.
    let ticks = field(11)? + field(12)?;
    let threads = field(17)?;
    let start_ticks = field(19)?;
    let virtual_bytes = field(20)?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss_kib: i64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())?;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as i64;
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let max_fds = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or(-1);
    let boot_time: f64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())?;
    Some(Sample {
        cpu_seconds: ticks / TICKS_PER_SECOND,
        resident_bytes: rss_kib * 1024,
        virtual_bytes: virtual_bytes as i64,
        // The read_dir itself holds one descriptor while it counts.
        open_fds: open_fds - 1,
        max_fds,
        threads: threads as i64,
        start_time_seconds: boot_time + start_ticks / TICKS_PER_SECOND,
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn reads_this_process() {
        let s = super::read().expect("/proc/self is readable");
        assert!(
            s.resident_bytes > 0 && s.open_fds >= 3 && s.threads >= 1,
            "{s:?}"
        );
        assert!(s.max_fds >= s.open_fds, "{s:?}");
    }
}
