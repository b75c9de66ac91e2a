//! `cargo xtask test`: every test of the workspace, through cargo-nextest when it is installed.

use xshell::{Shell, cmd};

use crate::setup::{self, Purpose};
use crate::{flags, step};

impl flags::Test {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        setup::require(
            sh,
            &[
                Purpose::DesktopBuild,
                Purpose::DistChecks,
                Purpose::DesktopWindowTests,
                Purpose::WebTests,
            ],
        )?;
        // `--all-features` compiles xtask's `bundler` feature too, so its tests run.
        if has_nextest(sh) {
            let threads = test_threads().to_string();
            step::run_command(
                "tests (cargo nextest)",
                cmd!(
                    sh,
                    "cargo nextest run --workspace --all-features --locked --no-fail-fast --test-threads {threads}"
                ),
            )?;
            // nextest does not run doctests; cargo test does them alone.
            step::run_command(
                "doctests (cargo test --doc)",
                cmd!(sh, "cargo test --workspace --all-features --locked --doc"),
            )
        } else {
            eprintln!("xtask: cargo-nextest is not installed, running cargo test");
            step::run_command(
                "tests (cargo test)",
                cmd!(
                    sh,
                    "cargo test --workspace --all-features --locked --no-fail-fast"
                ),
            )
        }
    }
}

/// Two tests more than the processor has cores: the end-to-end tests spend minutes waiting on
/// servers (an alert's `for`, a certificate, a backup schedule) or behind Cargo's lock while
/// other tests could use the processor.
fn test_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from) + 2
}

fn has_nextest(sh: &Shell) -> bool {
    cmd!(sh, "cargo nextest --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
}
