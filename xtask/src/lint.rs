//! `cargo xtask lint`: formatting, clippy with warnings as errors, and the tidy tests.

use xshell::{Shell, cmd};

use crate::setup::{self, Purpose};
use crate::{flags, step};

impl flags::Lint {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        // Clippy compiles app-desktop, whose build scripts look for WebKitGTK.
        setup::require(sh, &[Purpose::DesktopBuild])?;
        step::run("rustfmt", || {
            Ok(step::quiet(cmd!(sh, "cargo fmt --all --check")).run()?)
        })?;
        step::run("clippy", || {
            Ok(step::quiet(cmd!(
                sh,
                "cargo clippy --workspace --all-targets --all-features --locked -- -D warnings"
            ))
            .run()?)
        })?;
        step::run("tidy", || {
            Ok(step::quiet(cmd!(
                sh,
                "cargo test --package xtask --bin xtask --all-features --locked -- tidy::"
            ))
            .run()?)
        })
    }
}
