//! Debian 13 tools that Debian 12 has only in older versions, in a chroot that debootstrap
//! makes once per cache folder: PgBouncer 1.24 (prepared statements in transaction mode),
//! testssl.sh 3.2 (which grades a server) and Pebble 2.6 (which sets certificate lifetimes).
//! A chroot shares this machine's network, so what runs in it reaches servers on 127.0.0.1
//! like everything else here. Needs root.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

const SUITE: &str = "trixie";
const MIRROR: &str = "http://deb.debian.org/debian";
const PACKAGES: &str = "pgbouncer,testssl.sh,pebble";

/// The chroot in `cache`, made on first use. Concurrent callers take turns; a half-made chroot
/// never takes the final name.
pub fn trixie_tools(cache: &Path) -> anyhow::Result<PathBuf> {
    let name = format!("debian-{SUITE}-tools");
    let root = cache.join(&name);
    std::fs::create_dir_all(cache).with_context(|| format!("create {}", cache.display()))?;
    let lock_path = cache.join(format!("{name}.lock"));
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("create {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("lock {}", lock_path.display()))?;
    let installed = ["usr/sbin/pgbouncer", "usr/bin/testssl", "usr/bin/pebble"];
    if installed.iter().all(|program| root.join(program).exists()) {
        return Ok(root);
    }
    let partial = cache.join(format!("{name}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("remove {}", partial.display()))?;
    }
    let output = Command::new("debootstrap")
        .args(["--variant=minbase", &format!("--include={PACKAGES}"), SUITE])
        .arg(&partial)
        .arg(MIRROR)
        .output()
        .context("run debootstrap (package debootstrap; `cargo xtask setup` installs it)")?;
    anyhow::ensure!(
        output.status.success(),
        "debootstrap of Debian {SUITE} with {PACKAGES} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("remove {}", root.display()))?;
    }
    std::fs::rename(&partial, &root).with_context(|| format!("rename into {}", root.display()))?;
    Ok(root)
}

/// A temporary folder in the chroot's /tmp for one run of a tool: the folder, and its path as
/// the tool inside the chroot sees it.
pub fn work_dir(root: &Path, prefix: &str) -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    let work = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(root.join("tmp"))
        .with_context(|| format!("create a folder in the chroot {}", root.display()))?;
    let inside = Path::new("/tmp").join(work.path().file_name().context("a folder name")?);
    Ok((work, inside))
}
