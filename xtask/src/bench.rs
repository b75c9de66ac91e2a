//! `cargo xtask bench`: benchmarks that print their figures next to a baseline measured in the
//! same run; with `--record` the figures also replace that benchmark's section of
//! docs/benchmarks.md, dated.

use std::path::Path;

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::setup::{self, Purpose};
use crate::{flags, path, step};

impl flags::Bench {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let record = self.record;
        let run_command = |name: &str, cmd: xshell::Cmd<'_>| -> anyhow::Result<()> {
            if !record {
                return step::run_command(name, cmd);
            }
            // The figures are what the benchmark prints on stdout; its progress goes to stderr.
            let figures = step::run(name, || Ok(step::quiet(cmd).read()?))?;
            println!("{figures}");
            let file = path::project_root().join("docs/benchmarks.md");
            record_figures(&file, name, &figures, &machine())?;
            eprintln!("xtask: recorded the figures in {}", file.display());
            Ok(())
        };
        match self.subject {
            flags::BenchSubject::Web {
                duration_secs,
                connections,
                notes,
            } => {
                setup::require(sh, &[Purpose::WebTests, Purpose::Benchmarks])?;
                let (duration_secs, connections, notes) = (
                    duration_secs.to_string(),
                    connections.to_string(),
                    notes.to_string(),
                );
                run_command(
                    "bench web",
                    cmd!(
                        sh,
                        "cargo bench --locked --package app-web --bench web -- --duration-secs {duration_secs} --connections {connections} --notes {notes}"
                    ),
                )
            }
            flags::BenchSubject::Proxy {
                duration_secs,
                connections,
            } => {
                setup::require(sh, &[Purpose::Proxy, Purpose::Benchmarks])?;
                let (duration_secs, connections) =
                    (duration_secs.to_string(), connections.to_string());
                run_command(
                    "bench proxy",
                    cmd!(
                        sh,
                        "cargo bench --locked --package app-web --bench proxy -- --duration-secs {duration_secs} --connections {connections}"
                    ),
                )
            }
            flags::BenchSubject::Updates {
                duration_secs,
                connections,
                releases,
            } => {
                setup::require(
                    sh,
                    &[Purpose::WebTests, Purpose::Proxy, Purpose::Benchmarks],
                )?;
                let (duration_secs, connections, releases) = (
                    duration_secs.to_string(),
                    connections.to_string(),
                    releases.to_string(),
                );
                run_command(
                    "bench updates",
                    cmd!(
                        sh,
                        "cargo bench --locked --package app-web --bench updates -- --duration-secs {duration_secs} --connections {connections} --releases {releases}"
                    ),
                )
            }
            flags::BenchSubject::Ingest {
                duration_secs,
                connections,
                batch,
            } => {
                setup::require(
                    sh,
                    &[
                        Purpose::WebTests,
                        Purpose::Benchmarks,
                        Purpose::DesktopBuild,
                        Purpose::DesktopWindowTests,
                    ],
                )?;
                // The desktop release build dist makes (line tables kept), and its symbols.
                let host = crate::artifacts::targets::host_triple(sh)?;
                step::run("build app-desktop (release)", || {
                    step::quiet(cmd!(
                        sh,
                        "cargo build --release --locked --package app-desktop --target {host}"
                    ))
                    .run()
                    .map_err(Into::into)
                })?;
                let binary = crate::path::release_dir(&host).join("app-desktop");
                let symbols = crate::path::target_dir().join("bench-symbols");
                if symbols.exists() {
                    std::fs::remove_dir_all(&symbols)?;
                }
                crate::symbols::dump(sh, std::slice::from_ref(&binary), &symbols)?;
                let (duration_secs, connections, batch) = (
                    duration_secs.to_string(),
                    connections.to_string(),
                    batch.to_string(),
                );
                run_command(
                    "bench ingest",
                    cmd!(
                        sh,
                        "cargo bench --locked --package app-web --bench ingest -- --duration-secs {duration_secs} --connections {connections} --batch {batch} --desktop-binary {binary} --symbols {symbols}"
                    ),
                )
            }
            flags::BenchSubject::Backup { size_mib } => {
                setup::require(sh, &[Purpose::WebTests])?;
                let size_mib = size_mib.to_string();
                run_command(
                    "bench backup",
                    cmd!(
                        sh,
                        "cargo bench --locked --package app-web --bench backup -- --size-mib {size_mib}"
                    ),
                )
            }
        }
    }
}

/// This machine, as the record names it: cores and memory.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or_else(String::new, |kib| {
            format!(", {} GiB", (kib + (1 << 19)) >> 20)
        });
    format!("{cores} cores{memory_gib}")
}

/// Replaces the `## {name}` section of `file` with `figures`, dated today, or adds it at the end.
fn record_figures(file: &Path, name: &str, figures: &str, machine: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("read {} (it holds the recorded figures)", file.display()))?;
    let today = time::OffsetDateTime::now_utc().date();
    let updated = with_section(&text, name, figures, &today.to_string(), machine);
    crate::atomic_file::write(file, updated.as_bytes(), 0o644)
}

fn with_section(text: &str, name: &str, figures: &str, date: &str, machine: &str) -> String {
    let heading = format!("## {name}");
    let section = format!(
        "{heading}\n\nRecorded {date} by `cargo xtask {name} --record` ({machine}):\n\n```text\n{}\n```\n",
        figures.trim_end()
    );
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines.iter().position(|line| line.trim_end() == heading) else {
        return format!("{}\n\n{section}", text.trim_end());
    };
    let end = lines[start + 1..]
        .iter()
        .position(|line| line.starts_with("## "))
        .map_or(lines.len(), |offset| start + 1 + offset);
    let mut out = lines[..start].join("\n");
    out.push('\n');
    out.push_str(&section);
    if end < lines.len() {
        out.push('\n');
        out.push_str(&lines[end..].join("\n"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_section;

    #[test]
    fn a_record_replaces_its_own_section_and_keeps_the_others() {
        let text = "# Benchmarks\n\n## bench web\n\nold web\n\n## bench proxy\n\nproxy figures\n";
        let updated = with_section(text, "bench web", "new web\n", "2026-12-02", "2 cores");
        assert_eq!(
            updated,
            "# Benchmarks\n\n## bench web\n\nRecorded 2026-12-02 by `cargo xtask bench web --record` \
             (2 cores):\n\n```text\nnew web\n```\n\n## bench proxy\n\nproxy figures\n"
        );
        let added = with_section(text, "bench backup", "b", "2026-12-02", "2 cores");
        assert!(added.starts_with(text.trim_end()));
        assert!(added.ends_with("```text\nb\n```\n"));
        // Recording again gives the same file.
        assert_eq!(
            with_section(&updated, "bench web", "new web\n", "2026-12-02", "2 cores"),
            updated
        );
    }
}
