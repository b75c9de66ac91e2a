//! `cargo xtask lint`: formatting, clippy with warnings as errors, and the tidy tests.

use xshell::{Shell, cmd};

use crate::setup::{self, Purpose};
use crate::{flags, step};

impl flags::Lint {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        // Clippy compiles app-desktop, whose build scripts look for WebKitGTK.
        setup::require(sh, &[Purpose::DesktopBuild])?;
        step::run_command("rustfmt", cmd!(sh, "cargo fmt --all --check"))?;
        step::run_command(
            "clippy",
            cmd!(
                sh,
                "cargo clippy --workspace --all-targets --all-features --locked -- -D warnings"
            ),
        )?;
        step::run_command(
            "tidy",
            cmd!(
                sh,
                "cargo test --package xtask --bin xtask --all-features --locked -- tidy::"
            ),
        )
    }
}
