//! `cargo xtask release publish`: a release's dist folders (one per build job) checked, merged
//! and published: every folder verified against its manifest and SHA256SUMS, every desktop
//! bundle's updater signature checked (and the GnuPG ones when a key is given); the release's
//! assets gathered into one folder (every artifact and signature, one manifest, one SHA256SUMS
//! and its GnuPG signature, the updater's `latest.json` per channel); the Breakpad symbols
//! uploaded to the symbol store; the release published to the update server; and, in GitHub
//! Actions (or with `--github-repo`), the GitHub release made with the notes and every asset.
//! Each step can run again: symbols replace themselves, the update server answers a release it
//! already has with 200, and assets GitHub already holds are not uploaded twice, so a re-run
//! after a partial failure completes the job without duplicating anything.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::artifacts::manifest::Manifest;
use crate::artifacts::targets::ArtifactKind;
use crate::artifacts::verify;
use crate::sign::updater;
use crate::{flags, step};

/// One verified dist folder.
struct Dist {
    dir: PathBuf,
    manifest: Manifest,
}

/// The update server's `{target}`, `{arch}` and bundle type of a bundle.
fn platform(triple: &str, kind: ArtifactKind) -> anyhow::Result<(String, String, String)> {
    let os_arch = crate::dist::updater_manifest::os_arch(triple)?;
    let (os, arch) = os_arch
        .split_once('-')
        .context("the updater's platform has no architecture")?;
    let bundle_type = kind
        .updater_bundle_type()
        .with_context(|| format!("{kind} is not a bundle the updater installs"))?;
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

/// The channel a release of `version` goes to: `requested`, or with `auto` beta for a
/// pre-release and stable for the rest. A pre-release is never put on stable, which every
/// install follows by default.
pub fn channel_for(version: &str, requested: &str) -> anyhow::Result<&'static str> {
    let parsed = semver::Version::parse(version)
        .with_context(|| format!("the release's version {version:?} is not a semantic version"))?;
    let pre_release = !parsed.pre.is_empty();
    match (requested, pre_release) {
        ("auto" | "beta", true) => Ok("beta"),
        ("auto" | "stable", false) => Ok("stable"),
        ("beta", false) => Ok("beta"),
        ("stable", true) => anyhow::bail!(
            "{version} is a pre-release and goes to the beta channel: pass --channel beta or auto"
        ),
        (other, _) => anyhow::bail!("unknown channel {other:?}: use auto, stable or beta"),
    }
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
    let pub_date = dists[0].manifest.source_date()?;
    Ok(serde_json::json!({
        "version": version,
        "channel": channel,
        "notes": notes,
        "pub_date": pub_date,
        "rollout_percent": rollout_percent,
        "artifacts": artifacts,
    }))
}

/// Gathers the release's assets into `out`: every artifact with its signatures, one manifest,
/// one SHA256SUMS (signed when a GnuPG key is set), and `latest.json` per channel. Returns the
/// files to attach to a GitHub release, with the names they get there.
fn assemble(
    dists: &[Dist],
    out: &Path,
    download_url: &str,
    notes: &str,
    channel: &str,
) -> anyhow::Result<Vec<(PathBuf, String)>> {
    use crate::artifacts::{checksums, manifest};
    use crate::dist::updater_manifest;
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let first = &dists[0].manifest;
    let mut merged = Manifest::new(
        &first.product,
        &first.version,
        &first.commit,
        first.source_date_epoch,
    );
    let mut assets = Vec::new();
    for dist in dists {
        for artifact in &dist.manifest.artifacts {
            if let Some(known) = merged.artifacts.iter().find(|a| a.file == artifact.file) {
                anyhow::ensure!(
                    known.sha256 == artifact.sha256,
                    "two build jobs made different {} files",
                    artifact.file
                );
                continue;
            }
            merged.artifacts.push(artifact.clone());
            for name in [
                artifact.file.clone(),
                format!("{}.sig", artifact.file),
                format!("{}.asc", artifact.file),
            ] {
                let source = dist.dir.join(&name);
                if source.is_file() {
                    std::fs::copy(&source, out.join(&name))
                        .with_context(|| format!("copy {}", source.display()))?;
                    assets.push((out.join(&name), name));
                }
            }
        }
    }
    merged.artifacts.sort_by(|a, b| a.file.cmp(&b.file));
    let sums: Vec<(String, String)> = merged
        .artifacts
        .iter()
        .map(|artifact| (artifact.file.clone(), artifact.sha256.clone()))
        .collect();
    let sums_path = out.join(checksums::FILE_NAME);
    crate::atomic_file::write(&sums_path, checksums::render(&sums).as_bytes(), 0o644)?;
    assets.push((sums_path.clone(), checksums::FILE_NAME.to_owned()));
    if let Some(gpg) = crate::sign::gpg::Signer::from_env()? {
        let signature = gpg.detach_sign(&sums_path)?;
        assets.push((signature, format!("{}.asc", checksums::FILE_NAME)));
    }
    let manifest_path = out.join(manifest::FILE_NAME);
    crate::atomic_file::write(&manifest_path, merged.to_json()?.as_bytes(), 0o644)?;
    assets.push((manifest_path, manifest::FILE_NAME.to_owned()));

    let pub_date = first.source_date()?;
    let fragments = dists
        .iter()
        .map(|dist| {
            updater_manifest::fragment(&dist.dir, &dist.manifest, download_url, notes, &pub_date)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let latest = updater_manifest::merge(&fragments)?;
    for path in updater_manifest::write_channels(out, channel, &latest)? {
        let name = match path.parent().and_then(|dir| dir.file_name()) {
            Some(dir) if dir == "stable" => "latest.json".to_owned(),
            Some(dir) => format!("latest-{}.json", dir.to_string_lossy()),
            None => continue,
        };
        assets.push((path, name));
    }
    Ok(assets)
}

/// The GitHub release for `tag` in `repo`, made if missing, with every asset it lacks.
fn github_release(
    repo: &str,
    tag: &str,
    notes: &str,
    prerelease: bool,
    assets: &[(PathBuf, String)],
) -> anyhow::Result<()> {
    let token = std::env::var("GITHUB_TOKEN").context(
        "GITHUB_TOKEN is not set: the GitHub release needs a token with contents: write",
    )?;
    let api = std::env::var("GITHUB_API_URL").unwrap_or_else(|_| "https://api.github.com".into());
    let scratch = tempfile::tempdir()?;
    let client = crate::http::Client::new(600)
        .with_header("authorization", &format!("Bearer {}", token.trim()))
        .with_header("accept", "application/vnd.github+json")
        .with_header("x-github-api-version", "2022-11-28");
    let call = |method: &str, url: &str, body: Option<&Path>, content_type: &str| {
        let body = match body {
            Some(file) => crate::http::Body::File(file, content_type),
            None => crate::http::Body::None,
        };
        let answer = client.send(method, url, body)?;
        anyhow::Ok((answer.status, answer.body))
    };
    let (status, text) = call(
        "GET",
        &format!("{api}/repos/{repo}/releases/tags/{tag}"),
        None,
        "application/json",
    )?;
    let release: serde_json::Value = if status == 200 {
        serde_json::from_str(&text)?
    } else {
        anyhow::ensure!(status == 404, "GitHub answered {status}: {text}");
        let body = scratch.path().join("release.json");
        std::fs::write(
            &body,
            serde_json::json!({
                "tag_name": tag, "name": tag, "body": notes, "prerelease": prerelease,
            })
            .to_string(),
        )?;
        let (status, text) = call(
            "POST",
            &format!("{api}/repos/{repo}/releases"),
            Some(&body),
            "application/json",
        )?;
        anyhow::ensure!(
            status == 201,
            "GitHub refused the release ({status}): {text}"
        );
        serde_json::from_str(&text)?
    };
    let present: Vec<String> = release["assets"]
        .as_array()
        .map(|assets| {
            assets
                .iter()
                .filter_map(|asset| asset["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let upload = release["upload_url"]
        .as_str()
        .context("GitHub's release has no upload_url")?
        .split('{')
        .next()
        .unwrap_or_default()
        .to_owned();
    for (path, name) in assets {
        if present.contains(name) {
            continue;
        }
        step::run(&format!("attach {name}"), || {
            let (status, text) = call(
                "POST",
                &format!("{upload}?name={name}"),
                Some(path),
                "application/octet-stream",
            )?;
            anyhow::ensure!(status == 201, "GitHub refused {name} ({status}): {text}");
            Ok(())
        })?;
    }
    Ok(())
}

impl flags::ReleasePublish {
    pub fn run(self) -> anyhow::Result<()> {
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
        let channel = channel_for(&dists[0].manifest.version, &self.channel)?;
        eprintln!(
            "xtask: publishing {} on {channel} at {}%",
            dists[0].manifest.version, self.rollout_percent
        );
        let release = publication(
            &dists,
            &self.download_url,
            channel,
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
        let version = dists[0].manifest.version.clone();
        let out = self
            .out
            .clone()
            .unwrap_or_else(|| crate::path::target_dir().join(format!("release-{version}")));
        let assets = step::run(&format!("gather the assets in {}", out.display()), || {
            assemble(&dists, &out, &self.download_url, notes.trim(), channel)
        })?;
        let github = self
            .github_repo
            .clone()
            .or_else(|| std::env::var("GITHUB_REPOSITORY").ok());
        if self.dry_run {
            for (_, name) in &assets {
                eprintln!("xtask: would attach {name} to the GitHub release");
            }
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
            crate::symbols::upload(zip, &server, self.token_file.as_deref(), false)?;
        }
        step::run(&format!("publish {version} to {server}"), || {
            post_release(&server, self.token_file.as_deref(), &release)
        })?;
        match &github {
            Some(repo) => {
                let prerelease = semver::Version::parse(&version).is_ok_and(|v| !v.pre.is_empty());
                github_release(
                    repo,
                    &format!("v{version}"),
                    notes.trim(),
                    prerelease,
                    &assets,
                )?;
            }
            None => eprintln!(
                "xtask: no GitHub repository (GITHUB_REPOSITORY or --github-repo), so no GitHub release; the assets are in {}",
                out.display()
            ),
        }
        eprintln!(
            "xtask: {} {} published on {} ({} symbol file(s) uploaded)",
            dists[0].manifest.product,
            dists[0].manifest.version,
            channel,
            symbols.len()
        );
        Ok(())
    }
}

/// POSTs the release to the admin API: 201 (published) and 200 (already published, the same)
/// both succeed; anything else fails with the server's answer.
fn post_release(
    server: &str,
    token_file: Option<&Path>,
    release: &serde_json::Value,
) -> anyhow::Result<()> {
    let token = crate::symbols::admin_token(token_file)?;
    let answer = crate::http::Client::new(60)
        .without_proxy()
        .with_header("authorization", &format!("Bearer {token}"))
        .request(
            "POST",
            &format!("{server}/api/admin/releases"),
            Some(&release.to_string()),
        )?;
    match answer.status {
        201 | 200 => Ok(()),
        other => anyhow::bail!("the update server answered {other}: {}", answer.body),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_beta_tag_publishes_to_beta_and_a_plain_tag_to_stable() {
        assert_eq!(channel_for("1.2.0-beta.1", "auto").unwrap(), "beta");
        assert_eq!(channel_for("1.2.0", "auto").unwrap(), "stable");
        assert_eq!(channel_for("1.2.0", "beta").unwrap(), "beta");
        assert_eq!(channel_for("1.2.0-rc.2", "beta").unwrap(), "beta");
        let err = channel_for("1.2.0-beta.1", "stable")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pre-release and goes to the beta channel"),
            "{err}"
        );
        // What the release workflow passes: no channel, so auto.
        use clap::Parser;
        let parsed = crate::flags::Xtask::try_parse_from([
            "cargo xtask",
            "release",
            "publish",
            "dists/a",
            "--server",
            "https://x",
            "--download-url",
            "https://y",
        ])
        .unwrap();
        let crate::flags::Command::Release(release) = parsed.command else {
            panic!("not release")
        };
        let crate::flags::ReleaseCommand::Publish(publish) = release.command else {
            panic!("not publish")
        };
        assert_eq!(publish.channel, "auto");
    }

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
