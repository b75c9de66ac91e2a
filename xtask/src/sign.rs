//! `cargo xtask sign`: updater signatures for the desktop bundles of a dist folder
//! (`<bundle>.sig`, see [`updater`]) and, with a GnuPG key, detached signatures over the Linux
//! packages and SHA256SUMS (`.asc`, see [`gpg`]); `cargo xtask sign keygen` makes an updater
//! key pair. Keys come only from the environment or files and are never printed. In release
//! mode (`--release`, or a tag build on GitHub Actions) a missing key is an error naming the
//! variable; otherwise the files stay unsigned with a warning.

pub mod gpg;
pub mod platform;
pub mod updater;

use std::path::Path;

use anyhow::Context;

use crate::artifacts::checksums;
use crate::artifacts::manifest::{self, Manifest};
use crate::artifacts::targets::ArtifactKind;
use crate::{flags, path, step};

impl flags::Sign {
    pub fn run(self, _sh: &xshell::Shell) -> anyhow::Result<()> {
        match self.command {
            Some(flags::SignCommand::Keygen(keygen)) => keygen_into(&keygen.out, keygen.force),
            None => {
                let dist = self.dist.unwrap_or_else(path::dist_dir);
                let release = self.release || is_tag_build();
                let gpg = gpg::Signer::from_env()?;
                sign_dist(&dist, gpg.as_ref(), release)
            }
        }
    }
}

/// Whether this is a GitHub Actions run for a tag, where every release step is strict.
pub fn is_tag_build() -> bool {
    std::env::var("GITHUB_REF_TYPE").is_ok_and(|kind| kind == "tag")
}

/// The artifacts of `manifest` the updater installs, which carry signatures.
pub fn updater_bundles(manifest: &Manifest) -> impl Iterator<Item = &manifest::Artifact> {
    manifest
        .artifacts
        .iter()
        .filter(|artifact| artifact.kind.is_updater_bundle())
}

/// The artifacts of `manifest` that carry a detached GnuPG signature: the Linux packages.
pub fn gpg_signed(manifest: &Manifest) -> impl Iterator<Item = &manifest::Artifact> {
    manifest
        .artifacts
        .iter()
        .filter(|artifact| matches!(artifact.kind, ArtifactKind::Deb | ArtifactKind::Rpm))
}

/// Signs a finished dist folder: the updater signatures with the key in the environment, and
/// with `gpg` the detached signatures over the Linux packages and SHA256SUMS. A missing key is
/// an error in release mode and a warning otherwise.
pub fn sign_dist(dist: &Path, gpg: Option<&gpg::Signer>, release: bool) -> anyhow::Result<()> {
    let manifest = Manifest::read(&dist.join(manifest::FILE_NAME))
        .with_context(|| format!("run `cargo xtask dist --out {}` first", dist.display()))?;
    sign_bundles(dist, &manifest, release)?;
    let packages: Vec<_> = gpg_signed(&manifest).collect();
    match gpg {
        Some(gpg) => {
            for package in packages {
                step::run(&format!("GnuPG-sign {}", package.file), || {
                    gpg.detach_sign(&dist.join(&package.file)).map(drop)
                })?;
            }
            step::run(&format!("GnuPG-sign {}", checksums::FILE_NAME), || {
                gpg.detach_sign(&dist.join(checksums::FILE_NAME)).map(drop)
            })?;
        }
        None if release && !packages.is_empty() => anyhow::bail!(
            "{} is not set: a release signs SHA256SUMS and the Linux packages with GnuPG; set it to the armoured secret key (its text or a path) and {} to its passphrase",
            gpg::KEY_VARIABLE,
            gpg::PASSPHRASE_VARIABLE
        ),
        None => eprintln!(
            "xtask: warning: {} is not set, so SHA256SUMS and {} Linux package(s) carry no GnuPG signature",
            gpg::KEY_VARIABLE,
            packages.len()
        ),
    }
    Ok(())
}

fn sign_bundles(dist: &Path, manifest: &Manifest, release: bool) -> anyhow::Result<()> {
    let bundles: Vec<_> = updater_bundles(manifest).collect();
    let Some(key) = std::env::var(updater::KEY_VARIABLE)
        .ok()
        .filter(|key| !key.trim().is_empty())
    else {
        anyhow::ensure!(
            !release,
            "{} is not set: a release signs every desktop bundle for the updater; set it to the secret key `cargo xtask sign keygen` made (its text or its path), and {} to its password",
            updater::KEY_VARIABLE,
            updater::PASSWORD_VARIABLE
        );
        eprintln!(
            "xtask: warning: {} is not set, so {} desktop bundle(s) stay unsigned and the updater will refuse them",
            updater::KEY_VARIABLE,
            bundles.len()
        );
        return Ok(());
    };
    let password = std::env::var(updater::PASSWORD_VARIABLE).unwrap_or_default();
    let key = updater::secret_key(&key, &password)?;
    for bundle in bundles {
        let file = dist.join(&bundle.file);
        step::run(&format!("sign {}", bundle.file), || {
            updater::write_signature(&file, &key, &manifest.version).map(drop)
        })?;
    }
    Ok(())
}

/// Checks that every desktop bundle in `manifest` (from `dist`) has a `.sig` that verifies with
/// `public_key`, as the updater will check it; the number of bundles checked.
pub fn check_signatures(
    dist: &Path,
    manifest: &Manifest,
    public_key: &str,
) -> anyhow::Result<usize> {
    let mut checked = 0;
    for bundle in updater_bundles(manifest) {
        let file = dist.join(&bundle.file);
        updater::verify_file(&file, &updater::read_signature(&file)?, public_key)?;
        checked += 1;
    }
    Ok(checked)
}

/// Checks the detached GnuPG signatures over SHA256SUMS and the Linux packages of `dist`, and
/// each rpm's own signature, with `public_key` (armoured text or a path); the number of
/// packages checked.
pub fn check_gpg_signatures(
    dist: &Path,
    manifest: &Manifest,
    public_key: &str,
) -> anyhow::Result<usize> {
    let verifier = gpg::Verifier::new(public_key)?;
    verifier.verify_detached(&dist.join(checksums::FILE_NAME))?;
    let mut checked = 0;
    for package in gpg_signed(manifest) {
        let file = dist.join(&package.file);
        verifier.verify_detached(&file)?;
        if package.kind == ArtifactKind::Rpm {
            verifier.verify_rpm(&file)?;
        }
        checked += 1;
    }
    Ok(checked)
}

/// Writes a new key pair into `out`: `updater.key` (the secret key, readable by its owner
/// only) and `updater.key.pub` (the public key for the Tauri configuration).
fn keygen_into(out: &Path, force: bool) -> anyhow::Result<()> {
    let secret_path = out.join("updater.key");
    let public_path = out.join("updater.key.pub");
    anyhow::ensure!(
        force || !secret_path.exists(),
        "{} exists; pass --force to replace it (bundles signed with it will no longer update)",
        secret_path.display()
    );
    let password = std::env::var(updater::PASSWORD_VARIABLE).unwrap_or_default();
    if password.is_empty() {
        eprintln!(
            "xtask: warning: {} is empty, so the secret key is stored without a password",
            updater::PASSWORD_VARIABLE
        );
    }
    let (secret, public) = updater::generate(&password)?;
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    crate::atomic_file::write(&secret_path, secret.as_bytes(), 0o600)?;
    crate::atomic_file::write(&public_path, public.as_bytes(), 0o644)?;
    eprintln!(
        "xtask: wrote {} (keep it secret: set {} to it) and {} (the updater's pubkey)",
        secret_path.display(),
        updater::KEY_VARIABLE,
        public_path.display()
    );
    Ok(())
}
