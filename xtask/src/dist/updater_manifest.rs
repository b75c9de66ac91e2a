//! The static update manifests (`latest.json`, Tauri's format) for hosting on a plain file
//! server or a GitHub release, beside the update server in app-web. Each build job writes a
//! fragment for its target from its dist folder (the signed bundles and where they will be
//! downloaded from); `merge` joins the fragments of every job into `<channel>/latest.json`.
//!
//! Platform keys are the updater's: `{os}-{arch}-{bundle}` (`linux-x86_64-deb`), which the
//! updater looks up first, and `{os}-{arch}` for the bundle it falls back to (the AppImage on
//! Linux, the NSIS installer on Windows, the app on macOS, as Tauri's own tooling does).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::artifacts::manifest::{self, Manifest};
use crate::artifacts::targets::ArtifactKind;
use crate::sign::updater;
use crate::{atomic_file, flags};

/// One platform's download: what the updater fetches and the signature it checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub signature: String,
    pub url: String,
}

/// `latest.json` as the updater reads it; a fragment has the same shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateManifest {
    pub version: String,
    pub notes: String,
    pub pub_date: String,
    pub platforms: BTreeMap<String, Platform>,
}

/// The updater's `{os}-{arch}` for a target triple.
pub fn os_arch(triple: &str) -> anyhow::Result<String> {
    let target = crate::artifacts::targets::find(triple)
        .with_context(|| format!("the updater knows no platform for {triple}"))?;
    Ok(format!("{}-{}", target.os.updater_name(), target.arch))
}

/// The keys a bundle is listed under.
fn platform_keys(triple: &str, kind: ArtifactKind) -> anyhow::Result<Vec<String>> {
    let base = os_arch(triple)?;
    let Some(bundle_type) = kind.updater_bundle_type() else {
        return Ok(Vec::new());
    };
    let mut keys = vec![format!("{base}-{bundle_type}")];
    // The bundle the updater falls back to when it cannot tell which one is installed.
    if matches!(
        kind,
        ArtifactKind::AppImage | ArtifactKind::Nsis | ArtifactKind::App
    ) {
        keys.push(base);
    }
    Ok(keys)
}

/// The fragment for the signed bundles of `dist`, to be downloaded from `base_url`.
pub fn fragment(
    dist: &Path,
    manifest: &Manifest,
    base_url: &str,
    notes: &str,
    pub_date: &str,
) -> anyhow::Result<UpdateManifest> {
    anyhow::ensure!(
        base_url.starts_with("https://") || base_url.starts_with("http://"),
        "--base-url {base_url:?} must be an http:// or https:// URL"
    );
    let mut platforms = BTreeMap::new();
    for artifact in crate::sign::updater_bundles(manifest) {
        let platform = Platform {
            signature: updater::read_signature(&dist.join(&artifact.file))?,
            url: format!("{}/{}", base_url.trim_end_matches('/'), artifact.file),
        };
        for key in platform_keys(&artifact.target, artifact.kind)? {
            platforms.insert(key, platform.clone());
        }
    }
    anyhow::ensure!(
        !platforms.is_empty(),
        "{} holds no desktop bundle for the updater",
        dist.display()
    );
    Ok(UpdateManifest {
        version: manifest.version.clone(),
        notes: notes.to_owned(),
        pub_date: pub_date.to_owned(),
        platforms,
    })
}

/// The fragments of one release joined: the same version and notes everywhere, each platform
/// once (or identical where two jobs list it), and the latest publication time.
pub fn merge(fragments: &[UpdateManifest]) -> anyhow::Result<UpdateManifest> {
    let (first, rest) = fragments.split_first().context("no fragments to merge")?;
    let mut merged = first.clone();
    for fragment in rest {
        anyhow::ensure!(
            fragment.version == merged.version,
            "fragments of different versions: {} and {}",
            merged.version,
            fragment.version
        );
        anyhow::ensure!(
            fragment.notes == merged.notes,
            "the fragments of {} carry different notes",
            merged.version
        );
        for (key, platform) in &fragment.platforms {
            match merged.platforms.get(key) {
                Some(existing) if existing != platform => anyhow::bail!(
                    "{key} is in two fragments with different downloads: {} and {}",
                    existing.url,
                    platform.url
                ),
                _ => {
                    merged.platforms.insert(key.clone(), platform.clone());
                }
            }
        }
        merged.pub_date = merged.pub_date.clone().max(fragment.pub_date.clone());
    }
    Ok(merged)
}

/// Whether `candidate` is a newer version than `current` (both semver).
fn is_newer(candidate: &str, current: &str) -> anyhow::Result<bool> {
    let candidate = semver::Version::parse(candidate)
        .with_context(|| format!("{candidate:?} is not a semantic version"))?;
    let current = semver::Version::parse(current)
        .with_context(|| format!("{current:?} is not a semantic version"))?;
    Ok(candidate > current)
}

fn read(path: &Path) -> anyhow::Result<UpdateManifest> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not an update manifest", path.display()))
}

fn write(path: &Path, manifest: &UpdateManifest) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let mut text = serde_json::to_string_pretty(manifest).context("serialise the manifest")?;
    text.push('\n');
    atomic_file::write(path, text.as_bytes(), 0o644)
}

/// The files `merge` writes for `channel` into `out`: the channel's own `latest.json`, and for
/// a stable release beta's as well when it is newer than what beta has (beta installs also
/// receive newer stable releases).
pub fn write_channels(
    out: &Path,
    channel: &str,
    merged: &UpdateManifest,
) -> anyhow::Result<Vec<PathBuf>> {
    let channels: &[&str] = match channel {
        "stable" => &["stable", "beta"],
        "beta" => &["beta"],
        other => anyhow::bail!("unknown channel {other:?}: use stable or beta"),
    };
    let mut written = Vec::new();
    for name in channels {
        let path = out.join(name).join("latest.json");
        if *name != channel && path.exists() && !is_newer(&merged.version, &read(&path)?.version)? {
            continue;
        }
        write(&path, merged)?;
        written.push(path);
    }
    Ok(written)
}

/// Writes `latest-<target>.json` into a signed dist folder: its bundles downloadable under
/// `base_url`, with the notes in `notes_file`.
pub fn write_fragment(
    dist: &Path,
    base_url: &str,
    notes_file: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    let manifest = Manifest::read(&dist.join(manifest::FILE_NAME))?;
    let notes = match notes_file {
        Some(file) => {
            std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?
        }
        None => String::new(),
    };
    let pub_date = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)?
        .format(&time::format_description::well_known::Rfc3339)?;
    let fragment = fragment(dist, &manifest, base_url, &notes, &pub_date)?;
    let triple = manifest
        .artifacts
        .first()
        .map(|artifact| artifact.target.clone())
        .unwrap_or_default();
    let path = dist.join(format!("latest-{triple}.json"));
    write(&path, &fragment)?;
    eprintln!(
        "xtask: wrote {} ({} platform keys)",
        path.display(),
        fragment.platforms.len()
    );
    Ok(path)
}

impl flags::UpdaterManifest {
    pub fn run(self, _sh: &xshell::Shell) -> anyhow::Result<()> {
        match self.command {
            flags::UpdaterManifestCommand::Fragment(args) => {
                let dist = args.dist.unwrap_or_else(crate::path::dist_dir);
                write_fragment(&dist, &args.base_url, args.notes_file.as_deref()).map(drop)
            }
            flags::UpdaterManifestCommand::Merge(args) => {
                let fragments = args
                    .fragments
                    .iter()
                    .map(|path| read(path))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let merged = merge(&fragments)?;
                for path in write_channels(&args.out, &args.channel, &merged)? {
                    eprintln!("xtask: wrote {}", path.display());
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragment_with(version: &str, platforms: &[(&str, &str)]) -> UpdateManifest {
        UpdateManifest {
            version: version.into(),
            notes: "notes".into(),
            pub_date: "2026-11-20T10:00:00Z".into(),
            platforms: platforms
                .iter()
                .map(|(key, url)| {
                    (
                        (*key).to_owned(),
                        Platform {
                            signature: format!("sig of {url}"),
                            url: (*url).to_owned(),
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn platform_keys_are_the_updater_s() {
        assert_eq!(
            platform_keys("x86_64-unknown-linux-gnu", ArtifactKind::Deb).unwrap(),
            ["linux-x86_64-deb"]
        );
        assert_eq!(
            platform_keys("aarch64-unknown-linux-gnu", ArtifactKind::AppImage).unwrap(),
            ["linux-aarch64-appimage", "linux-aarch64"]
        );
        assert!(
            platform_keys("x86_64-unknown-linux-gnu", ArtifactKind::ServerArchive)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            platform_keys("x86_64-pc-windows-msvc", ArtifactKind::Msi).unwrap(),
            ["windows-x86_64-msi"]
        );
        assert_eq!(
            platform_keys("x86_64-pc-windows-msvc", ArtifactKind::Nsis).unwrap(),
            ["windows-x86_64-nsis", "windows-x86_64"]
        );
        assert_eq!(
            platform_keys("aarch64-apple-darwin", ArtifactKind::App).unwrap(),
            ["darwin-aarch64-app", "darwin-aarch64"]
        );
        assert!(
            platform_keys("aarch64-apple-darwin", ArtifactKind::Dmg)
                .unwrap()
                .is_empty()
        );
        assert_eq!(os_arch("aarch64-apple-darwin").unwrap(), "darwin-aarch64");
        assert_eq!(os_arch("x86_64-pc-windows-msvc").unwrap(), "windows-x86_64");
        assert!(os_arch("riscv64gc-unknown-linux-gnu").is_err());
    }

    #[test]
    fn fragments_of_one_release_merge_and_disagreements_are_named() {
        let linux = fragment_with("1.2.0", &[("linux-x86_64-deb", "https://d/a.deb")]);
        let mut arm = fragment_with("1.2.0", &[("linux-aarch64-deb", "https://d/b.deb")]);
        arm.pub_date = "2026-11-20T11:00:00Z".into();
        let merged = merge(&[linux.clone(), arm.clone(), linux.clone()]).unwrap();
        assert_eq!(merged.platforms.len(), 2);
        assert_eq!(merged.pub_date, "2026-11-20T11:00:00Z");

        let other_version = fragment_with("1.3.0", &[]);
        assert!(
            merge(&[linux.clone(), other_version])
                .unwrap_err()
                .to_string()
                .contains("different versions")
        );
        let clash = fragment_with("1.2.0", &[("linux-x86_64-deb", "https://d/other.deb")]);
        let err = merge(&[linux, clash]).unwrap_err().to_string();
        assert!(
            err.contains("linux-x86_64-deb is in two fragments"),
            "{err}"
        );
        assert!(merge(&[]).is_err());
    }

    #[test]
    fn a_stable_release_reaches_beta_only_when_newer() {
        let out = tempfile::tempdir().unwrap();
        let beta = fragment_with("1.3.0-beta.1", &[("linux-x86_64-deb", "https://d/b.deb")]);
        write_channels(out.path(), "beta", &beta).unwrap();
        let stable = fragment_with("1.2.1", &[("linux-x86_64-deb", "https://d/s.deb")]);
        let written = write_channels(out.path(), "stable", &stable).unwrap();
        assert_eq!(written, [out.path().join("stable/latest.json")]);
        assert_eq!(
            read(&out.path().join("beta/latest.json")).unwrap().version,
            "1.3.0-beta.1"
        );

        let newer = fragment_with("1.3.0", &[("linux-x86_64-deb", "https://d/n.deb")]);
        let written = write_channels(out.path(), "stable", &newer).unwrap();
        assert_eq!(written.len(), 2);
        assert_eq!(
            read(&out.path().join("beta/latest.json")).unwrap().version,
            "1.3.0"
        );
        assert!(write_channels(out.path(), "nightly", &newer).is_err());
    }

    #[test]
    fn a_fragment_needs_signed_bundles_and_an_http_base() {
        let dist = tempfile::tempdir().unwrap();
        let mut manifest = Manifest::new("app", "1.2.0", &"a".repeat(40), 1);
        manifest.artifacts.push(manifest::Artifact {
            file: "app-desktop_1.2.0_amd64.deb".into(),
            kind: ArtifactKind::Deb,
            target: "x86_64-unknown-linux-gnu".into(),
            size: 1,
            sha256: "0".repeat(64),
        });
        let err = fragment(dist.path(), &manifest, "https://d/v1.2.0", "", "t").unwrap_err();
        assert!(format!("{err:#}").contains("cargo xtask sign"), "{err:#}");
        std::fs::write(
            dist.path().join("app-desktop_1.2.0_amd64.deb.sig"),
            "c2ln\n",
        )
        .unwrap();
        let made = fragment(dist.path(), &manifest, "https://d/v1.2.0/", "", "t").unwrap();
        assert_eq!(
            made.platforms["linux-x86_64-deb"],
            Platform {
                signature: "c2ln".into(),
                url: "https://d/v1.2.0/app-desktop_1.2.0_amd64.deb".into(),
            }
        );
        assert!(fragment(dist.path(), &manifest, "ftp://d", "", "t").is_err());
    }
}
