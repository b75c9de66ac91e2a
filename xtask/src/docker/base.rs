//! `cargo xtask docker base`: Debian bases for machines that cannot pull images, made with
//! debootstrap (a minbase root) and `docker import`. By default a distroless-style one in
//! place of `gcr.io/distroless/cc-debian12`: only the files of the runtime packages
//! distroless/cc also carries (glibc, libgcc, libstdc++, time zones, base-files), a `nonroot`
//! user 65532, no shell or package manager. With `--with-apt` the whole minbase system, in
//! place of `debian:bookworm-slim` for Dockerfiles that install packages.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::{path, step};

/// What the base keeps of the bootstrapped system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Only the runtime packages, like distroless/cc.
    Runtime,
    /// All of minbase, with a shell and apt, like debian:<suite>-slim.
    WithApt,
}

impl Variant {
    pub fn default_tag(self) -> &'static str {
        match self {
            Variant::Runtime => "app-base/debian-cc:bookworm",
            Variant::WithApt => "app-base/debian:bookworm-minbase",
        }
    }
}

/// The Debian packages whose files the base keeps: what a dynamically linked Rust binary needs,
/// as in distroless/cc.
const RUNTIME_PACKAGES: &[&str] = &["base-files", "libc6", "libgcc-s1", "libstdc++6", "tzdata"];

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnonroot:x:65532:\n";

pub fn make(
    sh: &Shell,
    tag: &str,
    variant: Variant,
    suite: &str,
    mirror: &str,
    force: bool,
) -> anyhow::Result<()> {
    if !force && super::image_exists(sh, tag) {
        eprintln!("xtask: {tag} is already on the engine; --force makes it again");
        return Ok(());
    }
    let uid = step::captured(cmd!(sh, "id -u"))?;
    anyhow::ensure!(
        uid.trim() == "0",
        "debootstrap needs root to make device nodes and set owners; run this as root"
    );
    // In target/ rather than /tmp, which may be a small tmpfs.
    let target = path::target_dir();
    std::fs::create_dir_all(&target).with_context(|| format!("create {}", target.display()))?;
    let work = tempfile::Builder::new()
        .prefix("xtask-docker-base-")
        .tempdir_in(&target)
        .context("create a folder for the root filesystem")?;
    let rootfs = work.path().join("rootfs");
    let include = RUNTIME_PACKAGES.join(",");
    step::run_with_spinner(&format!("debootstrap --variant=minbase {suite}"), || {
        step::captured(cmd!(
            sh,
            "debootstrap --variant=minbase --include={include} {suite} {rootfs} {mirror}"
        ))
        .map(drop)
    })?;
    let tarball = work.path().join("rootfs.tar");
    if variant == Variant::WithApt {
        step::run_with_spinner("pack the whole system", || {
            // Package lists and downloads are of no use in an image; apt-get update refills them.
            for folder in ["var/cache/apt/archives", "var/lib/apt/lists"] {
                let folder = rootfs.join(folder);
                for entry in std::fs::read_dir(&folder)
                    .with_context(|| format!("list {}", folder.display()))?
                {
                    let entry = entry?;
                    if entry.file_type()?.is_file() {
                        std::fs::remove_file(entry.path())?;
                    }
                }
            }
            step::captured(cmd!(sh, "tar --numeric-owner -C {rootfs} -cf {tarball} .")).map(drop)
        })?;
    } else {
        step::run_with_spinner("keep the runtime packages", || {
            let admin_dir = rootfs.join("var/lib/dpkg");
            let listed = step::captured(cmd!(
                sh,
                "dpkg-query --admindir={admin_dir} --listfiles {RUNTIME_PACKAGES...}"
            ))?;
            let entries = resolve_entries(&rootfs, listed.lines())?;
            write_root_tar(&rootfs, &entries, &tarball)
        })?;
    }
    let docker = super::client();
    let packages = RUNTIME_PACKAGES.join(" ");
    let message = match variant {
        Variant::Runtime => {
            format!("{packages} from debootstrap --variant=minbase {suite} {mirror}")
        }
        Variant::WithApt => format!("debootstrap --variant=minbase {suite} {mirror}"),
    };
    step::run_with_spinner(&format!("import {tag}"), || {
        step::captured(cmd!(
            sh,
            "{docker} import --message {message} {tarball} {tag}"
        ))
        .map(drop)
    })?;
    let size: u64 = super::inspect(sh, tag, "{{.Size}}")?.parse().unwrap_or(0);
    eprintln!("xtask: imported {tag} ({:.1} MB)", size as f64 / 1e6);
    Ok(())
}

/// Turns dpkg's file list (paths as packaged, e.g. `/lib/...`, before Debian's merge of `/lib`
/// into `/usr/lib`) into paths inside `rootfs` with every directory component real, plus all
/// their parent folders and the merge's own links (`lib -> usr/lib`), sorted parents first.
fn resolve_entries<'a>(
    rootfs: &Path,
    listed: impl Iterator<Item = &'a str>,
) -> anyhow::Result<BTreeSet<PathBuf>> {
    let root = rootfs
        .canonicalize()
        .with_context(|| format!("resolve {}", rootfs.display()))?;
    let mut entries = BTreeSet::new();
    for line in listed {
        let relative = Path::new(line.trim())
            .strip_prefix("/")
            .unwrap_or(Path::new(""));
        let (Some(parent), Some(name)) = (relative.parent(), relative.file_name()) else {
            continue;
        };
        let Ok(real_parent) = root.join(parent).canonicalize() else {
            continue;
        };
        let real_parent = real_parent
            .strip_prefix(&root)
            .with_context(|| format!("{line} resolves outside the root file system"))?;
        let entry = real_parent.join(name);
        if root.join(&entry).symlink_metadata().is_err() {
            continue;
        }
        let mut ancestor = entry.parent();
        while let Some(folder) = ancestor.filter(|folder| !folder.as_os_str().is_empty()) {
            entries.insert(folder.to_path_buf());
            ancestor = folder.parent();
        }
        entries.insert(entry);
    }
    Ok(entries)
}

/// Writes the kept files, plus the users, `/tmp` and the home of `nonroot`, as a tar for
/// `docker import`.
fn write_root_tar(
    rootfs: &Path,
    entries: &BTreeSet<PathBuf>,
    tarball: &Path,
) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(tarball).with_context(|| format!("create {}", tarball.display()))?;
    let mut tar = tar::Builder::new(file);
    tar.follow_symlinks(false);
    for entry in entries {
        tar.append_path_with_name(rootfs.join(entry), entry)
            .with_context(|| format!("add {} to the base", entry.display()))?;
    }
    let folders: [(&str, u32, u64); 4] = [
        ("tmp", 0o1777, 0),
        ("home", 0o755, 0),
        ("home/nonroot", 0o700, 65532),
        ("root", 0o700, 0),
    ];
    for (name, mode, owner) in folders {
        if entries.contains(Path::new(name)) {
            continue;
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(mode);
        header.set_uid(owner);
        header.set_gid(owner);
        header.set_size(0);
        tar.append_data(&mut header, name, std::io::empty())?;
    }
    for (name, text) in [("etc/passwd", PASSWD), ("etc/group", GROUP)] {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(text.len() as u64);
        tar.append_data(&mut header, name, text.as_bytes())?;
    }
    tar.into_inner()?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A root with Debian's merged `/lib`: dpkg lists `/lib/...`, the base gets `usr/lib/...`
    /// and the `lib` link.
    #[test]
    fn merged_folders_resolve_to_real_paths_with_their_links() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("usr/lib/x86_64-linux-gnu")).unwrap();
        std::fs::write(root.path().join("usr/lib/x86_64-linux-gnu/libc.so.6"), "").unwrap();
        std::os::unix::fs::symlink("usr/lib", root.path().join("lib")).unwrap();
        let listed = [
            "/.",
            "/lib",
            "/lib/x86_64-linux-gnu",
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/share/gone",
        ];
        let entries = resolve_entries(root.path(), listed.into_iter()).unwrap();
        let names: Vec<&str> = entries
            .iter()
            .map(|entry| entry.to_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "lib",
                "usr",
                "usr/lib",
                "usr/lib/x86_64-linux-gnu",
                "usr/lib/x86_64-linux-gnu/libc.so.6"
            ]
        );
    }
}
