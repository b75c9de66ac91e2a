//! `cargo xtask ci`: the whole check that CI runs and that anyone can run locally.

use std::time::Instant;

use anyhow::Context;
use xshell::Shell;

use crate::{dist, flags, setup, step};

impl flags::Ci {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let started = Instant::now();
        step::run("setup", || setup::install_missing(sh, !self.no_install))?;
        step::run("lint", || flags::Lint {}.run(sh))?;
        step::run("test", || flags::Test {}.run(sh))?;
        step::run("fuzz", || flags::Fuzz { seconds: 60 }.run(sh))?;
        let out = tempfile::Builder::new()
            .prefix("xtask-ci-dist-")
            .tempdir()
            .context("create a temporary dist folder")?;
        step::run("dist", || {
            flags::Dist {
                target: None,
                out: Some(out.path().to_path_buf()),
                publishing: flags::PublishingArgs::default(),
            }
            .run(sh)
        })?;
        step::run("verify dist", || {
            dist::verify::verify_dist(out.path()).map(drop)
        })?;
        eprintln!(
            "xtask: ci passed in {}",
            step::format_duration(started.elapsed())
        );
        Ok(())
    }
}
