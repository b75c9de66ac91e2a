//! `cargo xtask fuzz`: the crash upload parser's libFuzzer target (`crates/crash-upload/fuzz`)
//! through cargo-fuzz for a bounded time. Without sanitizers, so it builds with the stable
//! toolchain the workspace pins; a crash or a hang fails the run and libFuzzer leaves the input
//! that caused it in `crates/crash-upload/fuzz/artifacts/`.

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::setup::{self, Purpose};
use crate::{flags, path, step};

/// The fuzz target's name in `crates/crash-upload/fuzz/Cargo.toml`.
const TARGET: &str = "crash_upload";

impl flags::Fuzz {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        anyhow::ensure!(self.seconds > 0, "--seconds must be at least 1");
        setup::require(sh, &[Purpose::Fuzzing])?;
        step::quiet(cmd!(sh, "cargo fuzz --version"))
            .read()
            .context("cargo-fuzz is not installed; run `cargo xtask setup`")?;
        let _dir = sh.push_dir(path::project_root().join("crates/crash-upload"));
        let limits = [
            format!("-max_total_time={}", self.seconds),
            // One input may take at most 10 s and 2 GiB; the parser's own limit is 1 MiB.
            "-timeout=10".to_owned(),
            "-rss_limit_mb=2048".to_owned(),
            "-max_len=1100000".to_owned(),
            "-print_final_stats=1".to_owned(),
        ];
        step::run_command(
            &format!("fuzz {TARGET} for {}s", self.seconds),
            cmd!(
                sh,
                "cargo fuzz run --sanitizer none {TARGET} -- {limits...}"
            ),
        )
    }
}
