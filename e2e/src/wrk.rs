//! wrk, the load generator of the benchmarks: a run over loopback and its `--latency` report.

use std::process::Command;

/// How hard and how long wrk drives each configuration; the benchmarks' shared flags.
#[derive(Debug, clap::Args)]
pub struct Load {
    /// Seconds wrk drives each configuration
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,

    /// Open connections wrk keeps
    #[arg(long, default_value_t = 32)]
    pub connections: u32,
}

/// What wrk measured.
pub struct Measurement {
    pub requests_per_sec: f64,
    pub p99_ms: f64,
    pub non_2xx: u64,
}

/// Reads wrk's `--latency` report.
pub fn parse(report: &str) -> Measurement {
    let requests_per_sec = report
        .lines()
        .find_map(|line| line.trim().strip_prefix("Requests/sec:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("wrk printed no Requests/sec:\n{report}"));
    let p99_ms = report
        .lines()
        .find_map(|line| line.trim().strip_prefix("99%"))
        .map(|value| to_millis(value.trim()))
        .unwrap_or_else(|| panic!("wrk printed no 99% latency:\n{report}"));
    let non_2xx = report
        .lines()
        .find_map(|line| line.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    Measurement {
        requests_per_sec,
        p99_ms,
        non_2xx,
    }
}

/// wrk prints latencies as `812.00us`, `3.41ms` or `1.02s`.
fn to_millis(value: &str) -> f64 {
    let (number, scale) = if let Some(number) = value.strip_suffix("us") {
        (number, 0.001)
    } else if let Some(number) = value.strip_suffix("ms") {
        (number, 1.0)
    } else if let Some(number) = value.strip_suffix('s') {
        (number, 1000.0)
    } else {
        panic!("wrk latency {value:?} has no unit")
    };
    number.parse::<f64>().expect("wrk latency is a number") * scale
}

/// Drives `url` with wrk (two threads) as `load` says and reads its report.
pub fn run(url: &str, load: &Load) -> Measurement {
    run_script(url, load, None)
}

/// As [`run`], with wrk's requests made by the Lua `script` when one is given.
pub fn run_script(url: &str, load: &Load, script: Option<&std::path::Path>) -> Measurement {
    let mut command = Command::new("wrk");
    if let Some(script) = script {
        command.arg("--script").arg(script);
    }
    let output = command
        .args([
            "--threads",
            "2",
            "--connections",
            &load.connections.to_string(),
        ])
        .args([
            "--duration",
            &format!("{}s", load.duration_secs),
            "--timeout",
            "5s",
            "--latency",
        ])
        .arg(url)
        .output()
        .expect("run wrk (package wrk; `cargo xtask setup` installs it)");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "wrk failed: {report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse(&report)
}

/// Prints `subject` and `baseline` as a table, then their ratio as `ratio (<ratio_name>): ...`.
pub fn print_against_baseline(
    subject: (&str, &Measurement),
    baseline: (&str, &Measurement),
    ratio_name: &str,
) {
    let width = [subject.0, baseline.0, "configuration"]
        .iter()
        .map(|name| name.len())
        .max()
        .unwrap_or(0);
    println!(
        "{:<width$} {:>12} {:>10} {:>8}",
        "configuration", "requests/s", "p99 ms", "non-2xx"
    );
    for (name, measurement) in [subject, baseline] {
        println!(
            "{:<width$} {:>12.0} {:>10.2} {:>8}",
            name, measurement.requests_per_sec, measurement.p99_ms, measurement.non_2xx
        );
    }
    println!(
        "ratio ({ratio_name}): {:.2}x requests/s, {:.2}x p99",
        subject.1.requests_per_sec / baseline.1.requests_per_sec,
        subject.1.p99_ms / baseline.1.p99_ms
    );
}
