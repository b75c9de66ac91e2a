//! `cargo xtask release publish`: a release's dist folders (one per build job) checked and
//! published to app-web: every folder verified against its manifest and SHA256SUMS, every
//! desktop bundle's updater signature checked (and the GnuPG ones when a key is given), the
//! build's Breakpad symbols uploaded to the symbol store, and the release, with one artifact per
//! platform and bundle type, published to the update server. Each step can run again: symbols
//! replace themselves and the update server answers a release it already has with 200, so a
//! re-run after a partial failure completes the job without duplicating anything.

use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::dist::manifest::Manifest;
use crate::dist::targets::ArtifactKind;
use crate::dist::verify;
use crate::sign::updater;
use crate::{flags, step};

/// One verified dist folder.
struct Dist {
    dir: PathBuf,
    manifest: Manifest,
}

/// The update server's `{target}`, `{arch}` and bundle type of a bundle.
fn platform(triple: &str, kind: ArtifactKind) -> anyhow::Result<(String, String, String)> {
    let os = if triple.contains("-linux-") {
        "linux"
    } else if triple.contains("-windows-") {
        "windows"
    } else if triple.contains("-apple-darwin") {
        "darwin"
    } else {
        anyhow::bail!("the update server knows no platform for {triple}")
    };
    let arch = triple.split('-').next().unwrap_or_default();
    let bundle_type = match kind {
        ArtifactKind::Deb => "deb",
        ArtifactKind::Rpm => "rpm",
        ArtifactKind::AppImage => "appimage",
        ArtifactKind::Msi => "msi",
        ArtifactKind::Nsis => "nsis",
        ArtifactKind::App => "app",
        other => anyhow::bail!("{other} is not a bundle the updater installs"),
    };
    Ok((os.to_owned(), arch.to_owned(), bundle_type.to_owned()))
}

fn load(dirs: &[PathBuf]) -> anyhow::Result<Vec<Dist>> {
    anyhow::ensure!(!dirs.is_empty(), "name at least one dist folder");
    let mut dists: Vec<Dist> = Vec::new();
    for dir in dirs {
        let manifest = step::run_with_spinner(&format!("verify {}", dir.display()), || {
            verify::verify_dist(dir)
        })?;
        if let Some(first) = dists.first() {
            anyhow::ensure!(
                manifest.product == first.manifest.product
                    && manifest.version == first.manifest.version,
                "{} holds {} {} but {} holds {} {}: publish one release at a time",
                dir.display(),
                manifest.product,
                manifest.version,
                first.dir.display(),
                first.manifest.product,
                first.manifest.version
            );
        }
        dists.push(Dist {
            dir: dir.clone(),
            manifest,
        });
    }
    Ok(dists)
}

/// The release as the update server's admin API takes it.
fn publication(
    dists: &[Dist],
    download_url: &str,
    channel: &str,
    notes: &str,
    rollout_percent: u8,
) -> anyhow::Result<serde_json::Value> {
    let base = download_url.trim_end_matches('/');
    let mut artifacts = Vec::new();
    for dist in dists {
        for bundle in crate::sign::updater_bundles(&dist.manifest) {
            let (target, arch, bundle_type) = platform(&bundle.target, bundle.kind)?;
            artifacts.push(serde_json::json!({
                "target": target,
                "arch": arch,
                "bundle_type": bundle_type,
                "url": format!("{base}/{}", bundle.file),
                "signature": updater::read_signature(&dist.dir.join(&bundle.file))?,
            }));
        }
    }
    anyhow::ensure!(
        !artifacts.is_empty(),
        "the dist folders hold no desktop bundle for the updater"
    );
    let version = &dists[0].manifest.version;
    let pub_date =
        time::OffsetDateTime::from_unix_timestamp(dists[0].manifest.source_date_epoch as i64)?
            .format(&time::format_description::well_known::Rfc3339)?;
    Ok(serde_json::json!({
        "version": version,
        "channel": channel,
        "notes": notes,
        "pub_date": pub_date,
        "rollout_percent": rollout_percent,
        "artifacts": artifacts,
    }))
}

impl flags::ReleasePublish {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let dists = load(&self.dist)?;
        let public_key = self
            .updater_pubkey
            .clone()
            .filter(|key| !key.trim().is_empty())
            .context(
                "the updater's public key is needed to check the bundles before publishing them: pass --updater-pubkey or set TAURI_SIGNING_PUBLIC_KEY",
            )?;
        for dist in &dists {
            step::run(
                &format!("check the updater signatures in {}", dist.dir.display()),
                || crate::sign::check_signatures(&dist.dir, &dist.manifest, &public_key),
            )?;
            if let Some(gpg) = self
                .gpg_pubkey
                .as_deref()
                .filter(|key| !key.trim().is_empty())
            {
                step::run(
                    &format!("check the GnuPG signatures in {}", dist.dir.display()),
                    || crate::sign::check_gpg_signatures(&dist.dir, &dist.manifest, gpg),
                )?;
            }
        }
        let notes = match &self.notes_file {
            Some(file) => std::fs::read_to_string(file)
                .with_context(|| format!("read the release notes from {}", file.display()))?,
            None => String::new(),
        };
        let release = publication(
            &dists,
            &self.download_url,
            &self.channel,
            notes.trim(),
            self.rollout_percent,
        )?;
        let symbols: Vec<PathBuf> = dists
            .iter()
            .flat_map(|dist| {
                dist.manifest
                    .artifacts
                    .iter()
                    .filter(|artifact| artifact.kind == ArtifactKind::Symbols)
                    .map(|artifact| dist.dir.join(&artifact.file))
            })
            .collect();
        let server = self.server.trim_end_matches('/').to_owned();
        if self.dry_run {
            for zip in &symbols {
                eprintln!("xtask: would upload the symbols in {}", zip.display());
            }
            eprintln!(
                "xtask: would publish to {server}/api/admin/releases:\n{}",
                serde_json::to_string_pretty(&release)?
            );
            return Ok(());
        }
        for zip in &symbols {
            crate::symbols::upload(sh, zip, &server, self.token_file.as_deref(), false)?;
        }
        step::run(
            &format!("publish {} to {server}", dists[0].manifest.version),
            || post_release(sh, &server, self.token_file.as_deref(), &release),
        )?;
        eprintln!(
            "xtask: {} {} published on {} ({} symbol file(s) uploaded)",
            dists[0].manifest.product,
            dists[0].manifest.version,
            self.channel,
            symbols.len()
        );
        Ok(())
    }
}

/// POSTs the release to the admin API: 201 (published) and 200 (already published, the same)
/// both succeed; anything else fails with the server's answer.
fn post_release(
    sh: &Shell,
    server: &str,
    token_file: Option<&Path>,
    release: &serde_json::Value,
) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let headers = crate::symbols::token_header_file(scratch.path(), token_file)?;
    let header_arg = format!("@{}", headers.display());
    let body = scratch.path().join("release.json");
    std::fs::write(&body, release.to_string())?;
    let body_arg = format!("@{}", body.display());
    let url = format!("{server}/api/admin/releases");
    let write_out = "\n%{http_code}";
    let answer = step::captured(cmd!(
        sh,
        "curl --silent --show-error --noproxy * --max-time 60 --header {header_arg} --header content-type:application/json --data-binary {body_arg} --write-out {write_out} {url}"
    ))?;
    let (text, status) = answer.rsplit_once('\n').unwrap_or(("", &answer));
    match status.trim() {
        "201" | "200" => Ok(()),
        other => anyhow::bail!("the update server answered {other}: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_map_to_the_update_server_s_platforms() {
        assert_eq!(
            platform("x86_64-unknown-linux-gnu", ArtifactKind::AppImage).unwrap(),
            ("linux".into(), "x86_64".into(), "appimage".into())
        );
        assert_eq!(
            platform("aarch64-apple-darwin", ArtifactKind::App).unwrap(),
            ("darwin".into(), "aarch64".into(), "app".into())
        );
        assert_eq!(
            platform("x86_64-pc-windows-msvc", ArtifactKind::Nsis).unwrap(),
            ("windows".into(), "x86_64".into(), "nsis".into())
        );
        assert!(platform("x86_64-unknown-linux-gnu", ArtifactKind::Symbols).is_err());
        assert!(platform("wasm32-unknown-unknown", ArtifactKind::Deb).is_err());
    }
}
