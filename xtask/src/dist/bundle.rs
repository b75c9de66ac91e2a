//! Desktop bundles, made by the `bundle-desktop` step: xtask runs itself built with the
//! `bundler` feature, so that tauri-bundler is linked only into that build and the everyday
//! `cargo xtask` stays quick to start. Cargo keeps both builds; switching between them only
//! re-links the `target/debug/xtask` file.

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use xshell::{Shell, cmd};

use crate::artifacts::targets::{ArtifactKind, Target};
use crate::step;

/// A bundle tauri-bundler wrote, still in cargo's target folder.
#[derive(Debug, Serialize, Deserialize)]
pub struct BuiltBundle {
    pub kind: ArtifactKind,
    pub path: PathBuf,
}

/// The folder tauri-bundler looks in for the AppImage tools it would otherwise download.
fn appimage_tools_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .map(|cache| cache.join("tauri"))
}

/// Whether the AppImage tools are already on disk. tauri-bundler downloads them from GitHub when
/// they are not, which must not be attempted on a machine that cannot reach it.
pub fn appimage_tools_present(arch: &str) -> Result<(), String> {
    let Some(dir) = appimage_tools_dir() else {
        return Err("no cache folder (set HOME or XDG_CACHE_HOME)".to_owned());
    };
    let apprun = dir.join(format!("AppRun-{arch}"));
    let suffix = format!("-{arch}.AppImage");
    let has_linuxdeploy = std::fs::read_dir(&dir).ok().is_some_and(|entries| {
        entries.flatten().any(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.starts_with("linuxdeploy-") && name.ends_with(&suffix)
        })
    });
    if apprun.is_file() && has_linuxdeploy {
        Ok(())
    } else {
        Err(format!(
            "the AppImage needs linuxdeploy and AppRun for {arch} in {}, which tauri-bundler downloads from GitHub",
            dir.display()
        ))
    }
}

/// Bundles the release binary of app-desktop for `target` as each of `kinds` by running the
/// `bundle-desktop` step, and returns what it made.
pub fn bundle(
    sh: &Shell,
    target: &Target,
    kinds: &[ArtifactKind],
) -> anyhow::Result<Vec<BuiltBundle>> {
    let triple = target.triple;
    let kind_args: Vec<String> = kinds
        .iter()
        .flat_map(|kind| ["--kind".to_owned(), kind.cli_name().to_owned()])
        .collect();
    let listing = step::quiet(cmd!(
        sh,
        "cargo run --locked --package xtask --features bundler -- bundle-desktop --target {triple} {kind_args...}"
    ))
    .read()
    .context("the bundle-desktop step failed")?;
    serde_json::from_str(&listing)
        .with_context(|| format!("bundle-desktop printed {listing:?}, not a list of bundles"))
}

#[cfg(not(feature = "bundler"))]
impl crate::flags::BundleDesktop {
    pub fn run(self, _sh: &Shell) -> anyhow::Result<()> {
        anyhow::bail!(
            "bundle-desktop needs xtask built with `--features bundler`; `cargo xtask dist` runs it that way"
        )
    }
}
