//! CPU time and peak memory of a process, from `/proc`.

use std::sync::OnceLock;

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux unless asked otherwise).
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The fields of `/proc/<pid>/stat` after the command name (which may hold spaces).
fn stat_fields(pid: &str) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    // Field 3 (state) is a letter: keep positions by mapping it to 0.
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// User plus system CPU seconds the process has used.
pub fn cpu_seconds(pid: u32) -> f64 {
    // utime and stime are fields 14 and 15; the slice starts at field 3.
    stat_fields(&pid.to_string())
        .map(|f| (f[11] + f[12]) as f64 / ticks_per_second())
        .unwrap_or(f64::NAN)
}

/// CPU seconds of this process's children that have ended and been waited for.
pub fn reaped_children_cpu_seconds() -> f64 {
    // cutime and cstime are fields 16 and 17.
    stat_fields("self")
        .map(|f| (f[13] + f[14]) as f64 / ticks_per_second())
        .unwrap_or(f64::NAN)
}

/// Peak resident set size (`VmHWM`) in MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Latency percentiles in milliseconds of a sorted list of seconds.
pub fn percentile_ms(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] * 1000.0
}
