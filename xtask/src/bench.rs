//! `cargo xtask bench`: benchmarks that print their figures next to a baseline measured in the
//! same run.

use xshell::{Shell, cmd};

use crate::setup::{self, Purpose};
use crate::{flags, step};

impl flags::Bench {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
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
                step::run_command(
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
                step::run_command(
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
                step::run_command(
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
                step::run_command(
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
                step::run_command(
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
