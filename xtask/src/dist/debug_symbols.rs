//! What of a desktop build ships and what stays: the Breakpad symbols of the release binary go
//! into a symbol store folder and a zip artifact (for `release publish` to upload to app-web),
//! and the bundles get a stripped copy of the binary. Part of the `bundle-desktop` step.

use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::artifacts::targets::{Os, Target};

/// Where the stripped binary waits for tauri-bundler, and the symbols zip.
pub struct Shipped {
    pub binary_dir: PathBuf,
    pub symbols_zip: PathBuf,
}

/// The file name of `binary_name` on `target`.
fn executable(target: &Target, binary_name: &str) -> String {
    match target.os {
        Os::Windows => format!("{binary_name}.exe"),
        Os::Linux | Os::Mac => binary_name.to_owned(),
    }
}

/// The file dump_syms reads the debug information from: the PDB beside a Windows executable,
/// the `.dSYM` of a macOS one (when split debug information made one), else the binary itself.
fn debug_source(target: &Target, release_dir: &Path, binary_name: &str) -> PathBuf {
    let dsym = release_dir.join(format!("{binary_name}.dSYM"));
    match target.os {
        Os::Windows => release_dir.join(format!("{}.pdb", binary_name.replace('-', "_"))),
        Os::Mac if dsym.exists() => dsym,
        Os::Linux | Os::Mac => release_dir.join(executable(target, binary_name)),
    }
}

pub fn split(
    sh: &Shell,
    target: &Target,
    release_dir: &Path,
    binary_name: &str,
    version: &str,
) -> anyhow::Result<Shipped> {
    let exe = executable(target, binary_name);
    let binary = release_dir.join(&exe);
    anyhow::ensure!(
        binary.is_file(),
        "{} is missing; build app-desktop first",
        binary.display()
    );
    let source = debug_source(target, release_dir, binary_name);
    anyhow::ensure!(
        source.exists(),
        "{} is missing: the release build of {binary_name} should have written its debug information there",
        source.display()
    );

    let store = release_dir.join("symbols");
    if store.exists() {
        std::fs::remove_dir_all(&store).with_context(|| format!("clear {}", store.display()))?;
    }
    crate::symbols::dump(sh, &[source], &store)?;
    let symbols_zip = release_dir.join(format!(
        "{binary_name}-{version}-{}-symbols.zip",
        target.triple
    ));
    crate::symbols::write_zip(&store, &symbols_zip)?;

    let binary_dir = release_dir.join("shipped");
    std::fs::create_dir_all(&binary_dir)
        .with_context(|| format!("create {}", binary_dir.display()))?;
    let shipped = binary_dir.join(&exe);
    std::fs::copy(&binary, &shipped)
        .with_context(|| format!("copy {} to {}", binary.display(), shipped.display()))?;
    strip(sh, target.os, &shipped)?;
    Ok(Shipped {
        binary_dir,
        symbols_zip,
    })
}

/// Strips the symbol table and debug information, keeping what the program and its crash
/// reports need (unwind tables, the build id that names its symbols).
fn strip(sh: &Shell, os: Os, binary: &Path) -> anyhow::Result<()> {
    match os {
        Os::Linux => crate::step::quiet(cmd!(sh, "strip --strip-all {binary}"))
            .run()
            .with_context(|| format!("strip {} (binutils' strip)", binary.display())),
        Os::Mac => crate::step::quiet(cmd!(sh, "strip -S -x {binary}"))
            .run()
            .with_context(|| format!("strip {}", binary.display())),
        // An MSVC executable carries no debug information: it is all in the PDB.
        Os::Windows => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(triple: &str) -> &'static Target {
        crate::artifacts::targets::find(triple).unwrap()
    }

    #[test]
    fn debug_information_is_read_where_each_platform_keeps_it() {
        let dir = Path::new("/r");
        assert_eq!(
            debug_source(find("x86_64-unknown-linux-gnu"), dir, "app-desktop"),
            Path::new("/r/app-desktop")
        );
        assert_eq!(
            debug_source(find("x86_64-pc-windows-msvc"), dir, "app-desktop"),
            Path::new("/r/app_desktop.pdb")
        );
        assert_eq!(
            debug_source(find("aarch64-apple-darwin"), dir, "app-desktop"),
            Path::new("/r/app-desktop"),
            "no .dSYM there"
        );
        assert_eq!(
            executable(find("x86_64-pc-windows-msvc"), "app-desktop"),
            "app-desktop.exe"
        );
    }
}
