//! `cargo xtask ci`: the whole check that CI runs and that anyone can run locally.

use std::{path::Path, time::Instant};

use anyhow::Context;
use xshell::Shell;

use crate::{flags, path, setup, step};

/// What a whole run writes on a fresh clone, measured: about 10 GiB of build output under
/// `target/`, plus images, containers and temporary databases. Below this, a run would stop
/// half-way with "No space left on device" from whichever compiler or server hit the wall.
const NEEDED_FREE_BYTES: u64 = 16 << 30;

impl flags::Ci {
    pub fn preparation(&self) -> setup::Preparation {
        setup::Preparation::from_no_install(self.no_install)
    }

    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let started = Instant::now();
        step::run("disk space", check_free_space)?;
        step::run("setup", || {
            setup::install_missing(sh, self.preparation() == setup::Preparation::Install)
        })?;
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
                // Setup above installed everything.
                no_install: true,
                publishing: flags::PublishingArgs::default(),
            }
            .run(sh)
        })?;
        step::run("verify dist", || {
            crate::artifacts::verify::verify_dist(out.path()).map(drop)
        })?;
        eprintln!(
            "xtask: ci passed in {}",
            step::format_duration(started.elapsed())
        );
        Ok(())
    }
}

/// Fails before any work when the disk that holds `target/` is too full for a run to finish.
fn check_free_space() -> anyhow::Result<()> {
    let target = path::target_dir();
    // The target folder may not exist yet on a fresh clone; its disk is the workspace's.
    let probe = if target.exists() {
        target
    } else {
        path::project_root()
    };
    let free = fs4::available_space(&probe)
        .with_context(|| format!("read the free space on the disk of {}", probe.display()))?;
    eprintln!(
        "xtask: {} free on the disk of {}",
        gib(free),
        probe.display()
    );
    enough_space(free, &probe)
}

fn enough_space(free: u64, probe: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        free >= NEEDED_FREE_BYTES,
        "only {} free on the disk of {}, and a full run needs about {}: free some with \
         `cargo clean` in old checkouts or `docker system prune`, then run again",
        gib(free),
        probe.display(),
        gib(NEEDED_FREE_BYTES)
    );
    Ok(())
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

/// In a GitHub Actions step (`GITHUB_OUTPUT` set), makes `name=value` one of its outputs for
/// later steps; elsewhere nothing. `value` is one line.
pub fn github_output(name: &str, value: &str) -> anyhow::Result<()> {
    let Ok(output) = std::env::var("GITHUB_OUTPUT") else {
        return Ok(());
    };
    anyhow::ensure!(
        !value.contains('\n') && !value.contains('\r'),
        "a step output is one line: {name} is {value:?}"
    );
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&output)
        .and_then(|mut file| writeln!(file, "{name}={value}"))
        .with_context(|| format!("append {name} to {output}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_refused_with_the_figures_and_what_to_do() {
        let probe = Path::new("/work/target");
        assert!(enough_space(NEEDED_FREE_BYTES, probe).is_ok());
        let err = enough_space(4_939_212_390, probe).unwrap_err().to_string();
        for part in [
            "only 4.6 GiB free",
            "/work/target",
            "about 16.0 GiB",
            "cargo clean",
        ] {
            assert!(err.contains(part), "{part:?} missing from: {err}");
        }
    }
}
