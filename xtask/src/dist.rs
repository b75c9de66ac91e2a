//! `cargo xtask dist`: release builds of app-web and app-desktop, packaged as the server archive
//! and the desktop bundles, with SHA256SUMS and dist-manifest.json beside them.

pub mod archive;
pub mod bundle;
#[cfg(feature = "bundler")]
pub mod debug_symbols;
#[cfg(feature = "bundler")]
pub mod tauri_bundle;
pub mod updater_manifest;

use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::artifacts::manifest::{self, Artifact, Manifest};
use crate::artifacts::targets::{self, ArtifactKind, Target};
use crate::artifacts::{checksums, verify};
use crate::setup::{self, Purpose};
use crate::workspace::{self, Product};
use crate::{flags, path, step};

/// What `dist` needs installed: the desktop build, and the tools that sign and check packages.
pub const SETUP_PURPOSES: &[Purpose] = &[Purpose::DesktopBuild, Purpose::DistChecks];

impl flags::Dist {
    /// As `ci` does: installs what is missing unless `--no-install`.
    pub fn preparation(&self) -> setup::Preparation {
        setup::Preparation::from_no_install(self.no_install)
    }

    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        step::run("setup", || {
            setup::prepare(sh, SETUP_PURPOSES, self.preparation())
        })?;
        let host = targets::host_triple(sh)?;
        let target = targets::resolve(self.target.as_deref(), &host)?;
        let desktop_config = desktop_config(None)?;
        let version = Product::load()?.version;
        let plan = Plan {
            server: target.server,
            desktop_kinds: target.desktop_bundles.to_vec(),
            desktop_features: None,
            desktop_config,
            version,
            publishing: self.publishing,
        };
        package(sh, target, self.out.unwrap_or_else(path::dist_dir), plan)
    }
}

impl flags::Bundle {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let host = targets::host_triple(sh)?;
        let target = targets::resolve(self.target.as_deref(), &host)?;
        let desktop_config = desktop_config(self.config.as_deref())?;
        let version = match desktop_config
            .as_ref()
            .and_then(|config| config.get("version"))
        {
            Some(version) => version
                .as_str()
                .context("the desktop configuration's version is not a string")?
                .to_owned(),
            None => Product::load()?.version,
        };
        let desktop_kinds = if self.kind.is_empty() {
            target.desktop_bundles.to_vec()
        } else {
            for kind in &self.kind {
                anyhow::ensure!(
                    target.desktop_bundles.contains(kind),
                    "{} makes no {kind} bundle; it makes {}",
                    target.triple,
                    target
                        .desktop_bundles
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            self.kind
        };
        if self.features.is_some() {
            anyhow::ensure!(
                !(self.publishing.release || crate::sign::is_tag_build()),
                "--features is for test builds; a release builds app-desktop with its default features"
            );
        }
        let plan = Plan {
            server: false,
            desktop_kinds,
            desktop_features: self.features,
            desktop_config,
            version,
            publishing: self.publishing,
        };
        package(
            sh,
            target,
            self.out
                .unwrap_or_else(|| path::target_dir().join("bundle-dist")),
            plan,
        )
    }
}

/// What one packaging run makes: the server archive or not, which desktop bundles, with what
/// merged into the Tauri configuration, at which version, and how it is signed and published.
struct Plan {
    server: bool,
    desktop_kinds: Vec<ArtifactKind>,
    /// Cargo features app-desktop is built with.
    desktop_features: Option<String>,
    desktop_config: Option<serde_json::Value>,
    version: String,
    publishing: flags::PublishingArgs,
}

/// What is merged into tauri.conf.json for a release build (as Tauri merges `TAURI_CONFIG`):
/// the updater's public key from TAURI_SIGNING_PUBLIC_KEY, then `config` (inline JSON or a
/// file holding it) on top.
fn desktop_config(config: Option<&str>) -> anyhow::Result<Option<serde_json::Value>> {
    let mut merged = serde_json::json!({});
    if let Ok(key) = std::env::var(crate::sign::updater::PUBLIC_KEY_VARIABLE)
        && !key.trim().is_empty()
    {
        merged = serde_json::json!({ "plugins": { "updater": { "pubkey": key.trim() } } });
    }
    if let Some(config) = config {
        let text = if config.trim_start().starts_with('{') {
            config.to_owned()
        } else {
            std::fs::read_to_string(config).with_context(|| {
                format!("read the desktop configuration {config} (pass inline JSON or a file)")
            })?
        };
        let patch: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("the desktop configuration is not JSON: {text}"))?;
        anyhow::ensure!(
            patch.is_object(),
            "the desktop configuration must be a JSON object, like tauri.conf.json"
        );
        if let Some(version) = patch.get("version") {
            let version = version.as_str().unwrap_or_default();
            semver::Version::parse(version).with_context(|| {
                format!("the desktop configuration's version {version:?} is not a semantic version")
            })?;
        }
        json_patch::merge(&mut merged, &patch);
    }
    Ok((merged != serde_json::json!({})).then_some(merged))
}

/// The variable app-desktop's build reads the oldest version its updater installs from.
pub const MINIMUM_VERSION_VARIABLE: &str = "APP_DESKTOP_MINIMUM_VERSION";

/// A minimum version for the desktop updater must be a version no newer than the build's own:
/// an app that refused its own version would refuse every rollback to it.
fn check_minimum_version(minimum: Option<&str>, version: &str) -> anyhow::Result<()> {
    let Some(minimum) = minimum.map(str::trim).filter(|minimum| !minimum.is_empty()) else {
        return Ok(());
    };
    let parsed = semver::Version::parse(minimum).with_context(|| {
        format!("{MINIMUM_VERSION_VARIABLE}={minimum:?} is not a semantic version such as 1.2.0")
    })?;
    let own = semver::Version::parse(version)
        .with_context(|| format!("the version {version:?} is not a semantic version"))?;
    anyhow::ensure!(
        parsed <= own,
        "{MINIMUM_VERSION_VARIABLE}={minimum} is newer than the version being built ({version}); \
         set it to the oldest release the app may still install"
    );
    Ok(())
}

fn package(sh: &Shell, target: &Target, out: PathBuf, plan: Plan) -> anyhow::Result<()> {
    setup::require(sh, &[Purpose::DesktopBuild])?;
    check_minimum_version(
        std::env::var(MINIMUM_VERSION_VARIABLE).ok().as_deref(),
        &plan.version,
    )?;
    // Credentials are checked before the long builds: a missing one, or a wrong passphrase,
    // fails here.
    let release = plan.publishing.release || crate::sign::is_tag_build();
    crate::sign::platform::check(target.os, release)?;
    let gpg = crate::sign::gpg::Signer::from_env()?;
    let _lock = lock_dist(target)?;
    let product = Product::load()?;
    let source_date = workspace::source_date_epoch(sh)?;
    let commit = workspace::git_commit(sh)?;
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    let out = out
        .canonicalize()
        .with_context(|| format!("resolve {}", out.display()))?;

    // Everything is made in a staging folder inside `out` and renamed into place at the
    // end, the manifest last, so a failed run leaves no half-written dist behind.
    let staging = tempfile::Builder::new()
        .prefix(".dist-staging-")
        .tempdir_in(&out)
        .with_context(|| format!("create a staging folder in {}", out.display()))?;
    let mut staged = Vec::new();

    let tauri_config = plan
        .desktop_config
        .as_ref()
        .map(serde_json::Value::to_string);
    let _tauri_config = tauri_config
        .as_ref()
        .map(|config| sh.push_env("TAURI_CONFIG", config));

    if plan.server {
        step::run(&format!("build app-web ({})", target.triple), || {
            // app-web reports the commit it was built from (app_web_build_info).
            let _commit = sh.push_env("APP_WEB_COMMIT", &commit);
            cargo_build(sh, "app-web", target, &[], "the server archive")
        })?;
    }
    step::run(&format!("build app-desktop ({})", target.triple), || {
        // On macOS the line tables for the crash symbols go into a .dSYM beside the binary.
        let _dsym = (target.os == targets::Os::Mac)
            .then(|| sh.push_env("CARGO_PROFILE_RELEASE_SPLIT_DEBUGINFO", "packed"));
        let features: Vec<String> = plan
            .desktop_features
            .iter()
            .flat_map(|features| ["--features".to_owned(), features.clone()])
            .collect();
        cargo_build(sh, "app-desktop", target, &features, "the desktop bundles")
    })?;

    if plan.server {
        let archive_name = format!("app-web-{}-{}.tar.gz", product.version, target.triple);
        step::run_with_spinner(&format!("package {archive_name}"), || {
            write_server_archive(
                sh,
                &staging.path().join(&archive_name),
                &archive_name,
                target,
                source_date,
            )
        })?;
        staged.push((archive_name, ArtifactKind::ServerArchive));
    }

    // Not a spinner: the first run compiles xtask's bundler feature, and cargo shows that.
    for bundle in step::run("bundle app-desktop", || {
        bundle_desktop(sh, target, &plan.desktop_kinds)
    })? {
        let name = file_name(&bundle.path)?;
        let staged_path = staging.path().join(&name);
        std::fs::copy(&bundle.path, &staged_path)
            .with_context(|| format!("copy {} to the staging folder", bundle.path.display()))?;
        // The rpm's own signature is part of its bytes, so it comes before the checksums.
        if let Some(gpg) = &gpg
            && bundle.kind == ArtifactKind::Rpm
        {
            step::run(&format!("rpm-sign {name}"), || gpg.sign_rpm(&staged_path))?;
        }
        staged.push((name, bundle.kind));
    }

    let manifest = step::run_with_spinner("checksums and manifest", || {
        let released = Product {
            version: plan.version.clone(),
            ..product.clone()
        };
        write_checksums_and_manifest(
            staging.path(),
            &staged,
            target,
            &released,
            &commit,
            source_date,
        )
    })?;
    publish(staging.path(), &out, &manifest)?;
    crate::sign::sign_dist(&out, gpg.as_ref(), release)?;
    if let Some(url) = &plan.publishing.download_url {
        updater_manifest::write_fragment(&out, url, plan.publishing.notes_file.as_deref())?;
    }
    print_summary(&out, &manifest);
    Ok(())
}

impl flags::Verify {
    pub fn run(self, _sh: &Shell) -> anyhow::Result<()> {
        let dir = self.dist.unwrap_or_else(path::dist_dir);
        let manifest = step::run_with_spinner(&format!("verify {}", dir.display()), || {
            verify::verify_dist(&dir)
        })?;
        eprintln!(
            "xtask: {} artifacts of {} {} match their manifest and {}",
            manifest.artifacts.len(),
            manifest.product,
            manifest.version,
            checksums::FILE_NAME
        );
        if let Some(public_key) = self.updater_pubkey.filter(|key| !key.trim().is_empty()) {
            let checked = step::run("check the updater signatures", || {
                crate::sign::check_signatures(&dir, &manifest, &public_key)
            })?;
            eprintln!("xtask: {checked} desktop bundles carry a valid updater signature");
        }
        if let Some(public_key) = self.gpg_pubkey.filter(|key| !key.trim().is_empty()) {
            let checked = step::run("check the GnuPG signatures", || {
                crate::sign::check_gpg_signatures(&dir, &manifest, &public_key)
            })?;
            eprintln!(
                "xtask: {} and {checked} Linux packages carry a valid GnuPG signature",
                checksums::FILE_NAME
            );
        }
        Ok(())
    }
}

/// Holds an exclusive lock for the target's release folder: tauri-bundler rewrites its `bundle`
/// folder in place, so two dist runs for one target must take turns.
fn lock_dist(target: &Target) -> anyhow::Result<std::fs::File> {
    let dir = path::target_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let path = dir.join(format!("xtask-dist-{}.lock", target.triple));
    let file =
        std::fs::File::create(&path).with_context(|| format!("create {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            eprintln!(
                "xtask: waiting for another dist run for {} to finish",
                target.triple
            );
            file.lock()
                .with_context(|| format!("lock {}", path.display()))?;
        }
        Err(std::fs::TryLockError::Error(err)) => {
            return Err(err).with_context(|| format!("lock {}", path.display()));
        }
    }
    Ok(file)
}

/// Builds `package` in release mode; a failure names the artifacts it leaves unmade.
fn cargo_build(
    sh: &Shell,
    package: &str,
    target: &Target,
    extra: &[String],
    artifacts: &str,
) -> anyhow::Result<()> {
    let triple = target.triple;
    step::quiet(cmd!(
        sh,
        "cargo build --release --locked --package {package} --target {triple} {extra...}"
    ))
    .run()
    .with_context(|| {
        format!("cargo build of {package} for {triple} failed, so {artifacts} cannot be made")
    })
}

fn write_server_archive(
    sh: &Shell,
    destination: &Path,
    archive_name: &str,
    target: &Target,
    source_date: u64,
) -> anyhow::Result<()> {
    let top = archive_name.trim_end_matches(".tar.gz");
    let mut entries = vec![
        archive::ArchiveEntry {
            name: "app-web".into(),
            source: path::release_dir(target.triple).join("app-web"),
            executable: true,
        },
        archive::ArchiveEntry {
            name: "LICENSE".into(),
            source: path::license(),
            executable: false,
        },
        archive::ArchiveEntry {
            name: "app-web.example.env".into(),
            source: path::web_example_config(),
            executable: false,
        },
    ];
    // The operations guides git tracks, as docs/<name>.md: what someone running the server
    // reads. Untracked drafts beside them stay out, so a commit gives the same bytes.
    for relative in workspace::tracked_files(sh, "docs/operations")? {
        let Some(name) = relative
            .strip_prefix("docs/operations/")
            .filter(|name| name.ends_with(".md") && !name.contains('/'))
        else {
            continue;
        };
        entries.push(archive::ArchiveEntry {
            name: format!("docs/{name}"),
            source: path::project_root().join(&relative),
            executable: false,
        });
    }
    archive::write_tar_gz(destination, top, &entries, source_date)
        .with_context(|| format!("the server archive {archive_name} failed"))
}

fn bundle_desktop(
    sh: &Shell,
    target: &Target,
    wanted: &[ArtifactKind],
) -> anyhow::Result<Vec<bundle::BuiltBundle>> {
    let arch = target.triple.split('-').next().unwrap_or(target.triple);
    let mut kinds = Vec::new();
    for kind in wanted {
        if *kind == ArtifactKind::AppImage
            && let Err(reason) = bundle::appimage_tools_present(arch)
        {
            eprintln!("xtask: skipping the AppImage: {reason}");
            continue;
        }
        kinds.push(*kind);
    }
    let bundles = bundle::bundle(sh, target, &kinds).with_context(|| {
        let names: Vec<String> = kinds.iter().map(ToString::to_string).collect();
        format!(
            "the desktop bundles ({}) for {} failed",
            names.join(", "),
            target.triple
        )
    })?;
    for kind in &kinds {
        anyhow::ensure!(
            bundles.iter().any(|bundle| bundle.kind == *kind),
            "tauri-bundler reported no {kind} bundle for {}",
            target.triple
        );
    }
    Ok(bundles)
}

fn file_name(path: &Path) -> anyhow::Result<String> {
    path.file_name()
        .and_then(|name| name.to_str())
        .map(str::to_owned)
        .with_context(|| format!("{} has no UTF-8 file name", path.display()))
}

fn write_checksums_and_manifest(
    staging: &Path,
    staged: &[(String, ArtifactKind)],
    target: &Target,
    product: &Product,
    commit: &str,
    source_date: u64,
) -> anyhow::Result<Manifest> {
    let mut manifest = Manifest::new(&product.name, &product.version, commit, source_date);
    let mut sums = Vec::new();
    for (name, kind) in staged {
        let path = staging.join(name);
        let sha256 = checksums::sha256_file(&path)?;
        let size = std::fs::metadata(&path)
            .with_context(|| format!("stat {}", path.display()))?
            .len();
        sums.push((name.clone(), sha256.clone()));
        manifest.artifacts.push(Artifact {
            file: name.clone(),
            kind: *kind,
            target: target.triple.to_owned(),
            size,
            sha256,
        });
    }
    manifest.artifacts.sort_by(|a, b| a.file.cmp(&b.file));
    std::fs::write(staging.join(checksums::FILE_NAME), checksums::render(&sums))
        .context("write SHA256SUMS")?;
    std::fs::write(staging.join(manifest::FILE_NAME), manifest.to_json()?)
        .context("write the manifest")?;
    Ok(manifest)
}

/// Moves the staged files into `out`: artifacts first, then SHA256SUMS, the manifest last.
fn publish(staging: &Path, out: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    let names = manifest
        .artifacts
        .iter()
        .map(|artifact| artifact.file.as_str())
        .chain([checksums::FILE_NAME, manifest::FILE_NAME]);
    for name in names {
        std::fs::rename(staging.join(name), out.join(name))
            .with_context(|| format!("move {name} into {}", out.display()))?;
    }
    Ok(())
}

fn print_summary(out: &Path, manifest: &Manifest) {
    eprintln!(
        "xtask: {} {} ({}) in {}:",
        manifest.product,
        manifest.version,
        manifest.commit,
        out.display()
    );
    for artifact in &manifest.artifacts {
        eprintln!(
            "    {:<14} {:>12} bytes  {}",
            artifact.kind.to_string(),
            artifact.size,
            artifact.file
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_updater_minimum_must_be_a_version_no_newer_than_the_build() {
        assert!(check_minimum_version(None, "1.2.0").is_ok());
        assert!(check_minimum_version(Some(""), "1.2.0").is_ok());
        assert!(check_minimum_version(Some("1.1.3"), "1.2.0").is_ok());
        let err = check_minimum_version(Some("1.3.0"), "1.2.0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("newer than the version being built"), "{err}");
        let err = format!(
            "{:#}",
            check_minimum_version(Some("one"), "1.2.0").unwrap_err()
        );
        assert!(err.contains("is not a semantic version"), "{err}");
    }
}
