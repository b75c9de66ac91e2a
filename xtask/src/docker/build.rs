//! `cargo xtask docker build`: docker/app-web.Dockerfile around the app-web binary taken from a
//! dist folder's server archive, after checking that folder against its manifest and the
//! binary's glibc requirement against the base image.

use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{Shell, cmd};

use super::glibc::{self, GlibcVersion};
use crate::artifacts::manifest;
use crate::artifacts::targets::{self, ArtifactKind};
use crate::artifacts::verify;
use crate::workspace::Product;
use crate::{path, step};

/// An image `build` made.
#[derive(Debug)]
pub struct BuiltImage {
    pub id: String,
    pub tags: Vec<String>,
    pub size: u64,
}

pub fn build(
    sh: &Shell,
    dist: &Path,
    base_image: &str,
    repository: &str,
) -> anyhow::Result<BuiltImage> {
    let host = targets::host_triple(sh)?;
    let manifest_path = dist.join(manifest::FILE_NAME);
    anyhow::ensure!(
        manifest_path.exists(),
        "{} has no {}; run `cargo xtask dist` first (or pass --dist)",
        dist.display(),
        manifest::FILE_NAME
    );
    // The whole dist folder is checked against its manifest and SHA256SUMS, as `verify` does.
    let manifest = verify::verify_dist(dist).with_context(|| {
        format!(
            "{} does not check out; run `cargo xtask dist` again",
            dist.display()
        )
    })?;
    let archive = manifest
        .artifacts
        .iter()
        .find(|artifact| artifact.kind == ArtifactKind::ServerArchive && artifact.target == host)
        .with_context(|| {
            format!(
                "{} lists no server archive for {host}; run `cargo xtask dist` on this machine",
                manifest_path.display()
            )
        })?;
    let archive_path = dist.join(&archive.file);

    let context = tempfile::Builder::new()
        .prefix("xtask-docker-context-")
        .tempdir()
        .context("create the build context")?;
    let binary = context.path().join("app-web");
    extract_binary(&archive_path, &binary)?;
    // The image's /var/lib/app-web: an empty crash report folder, owned by the app's user there.
    std::fs::create_dir_all(context.path().join("state/crashes"))
        .context("make the state folder in the build context")?;

    super::require_image(
        sh,
        base_image,
        "pull it, or make a Debian base with `cargo xtask docker base` and pass --base-image",
    )?;
    step::run_with_spinner(&format!("check glibc of {base_image}"), || {
        check_glibc(sh, &binary, base_image, &host)
    })?;

    let product = Product::load()?;
    let tags = vec![
        format!("{repository}:{}", manifest.version),
        format!("{repository}:{}", commit_tag(&manifest.commit)),
    ];
    let created = manifest.source_date()?;
    let docker = super::client();
    let dockerfile = path::runtime_dockerfile();
    let version = &manifest.version;
    let revision = &manifest.commit;
    let source = &product.repository;
    let tag_args: Vec<String> = tags
        .iter()
        .flat_map(|tag| ["--tag".to_owned(), tag.clone()])
        .collect();
    let context_dir: PathBuf = context.path().to_path_buf();
    step::run_with_spinner(&format!("docker build {}", tags[0]), || {
        step::captured(cmd!(
            sh,
            "{docker} build --file {dockerfile} --build-arg BASE_IMAGE={base_image} --build-arg VERSION={version} --build-arg REVISION={revision} --build-arg CREATED={created} --build-arg SOURCE={source} {tag_args...} {context_dir}"
        ))
        .map(drop)
    })?;
    let id = super::inspect(sh, &tags[0], "{{.Id}}")?;
    let size = super::inspect(sh, &tags[0], "{{.Size}}")?
        .parse()
        .context("docker printed a size that is not a number")?;
    Ok(BuiltImage { id, tags, size })
}

/// `0123456789ab` from a full commit id, keeping a `-dirty` mark.
fn commit_tag(commit: &str) -> String {
    let (id, dirty) = match commit.strip_suffix("-dirty") {
        Some(id) => (id, "-dirty"),
        None => (commit, ""),
    };
    format!("{}{dirty}", &id[..id.len().min(12)])
}

/// Writes the archive's `app-web` entry to `destination`, executable.
fn extract_binary(archive: &Path, destination: &Path) -> anyhow::Result<()> {
    let file =
        std::fs::File::open(archive).with_context(|| format!("open {}", archive.display()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in tar
        .entries()
        .with_context(|| format!("read {}", archive.display()))?
    {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        if path.file_name().is_some_and(|name| name == "app-web") && path.components().count() == 2
        {
            entry.unpack(destination).with_context(|| {
                format!("extract {} from {}", path.display(), archive.display())
            })?;
            return Ok(());
        }
    }
    anyhow::bail!("{} holds no app-web binary", archive.display())
}

/// Fails when `binary` needs a newer glibc than `base_image` has.
fn check_glibc(sh: &Shell, binary: &Path, base_image: &str, triple: &str) -> anyhow::Result<()> {
    let Some(needed) = glibc::required_by(binary)? else {
        return Ok(());
    };
    let provided = image_glibc(sh, base_image, triple)?;
    check_glibc_versions(needed, provided, base_image)
}

fn check_glibc_versions(
    needed: GlibcVersion,
    provided: Option<GlibcVersion>,
    base_image: &str,
) -> anyhow::Result<()> {
    match provided {
        None => anyhow::bail!(
            "app-web is linked against glibc (it needs {needed}) but {base_image} has no glibc; \
             use a glibc base such as {}",
            super::DEFAULT_BASE_IMAGE
        ),
        Some(provided) if provided < needed => anyhow::bail!(
            "app-web needs glibc {needed} but {base_image} has glibc {provided}; use a base image \
             with glibc {needed} or newer, or build app-web on a system with an older glibc"
        ),
        Some(_) => Ok(()),
    }
}

/// The newest glibc version the image's libc.so.6 defines, or `None` when it has none.
fn image_glibc(sh: &Shell, image: &str, triple: &str) -> anyhow::Result<Option<GlibcVersion>> {
    let docker = super::client();
    // A container that is created, never started: only its file system is read.
    let container = step::captured(cmd!(sh, "{docker} create {image} /nonexistent"))
        .with_context(|| format!("create a container of {image} to read its libc"))?;
    let container = container.trim().to_owned();
    let copy = tempfile::tempdir().context("create a folder for the image's libc")?;
    let libc = copy.path().join("libc.so.6");
    let arch = triple.split('-').next().unwrap_or("x86_64");
    let candidates = [
        format!("/lib/{arch}-linux-gnu/libc.so.6"),
        format!("/usr/lib/{arch}-linux-gnu/libc.so.6"),
        "/lib64/libc.so.6".to_owned(),
        "/usr/lib64/libc.so.6".to_owned(),
        "/lib/libc.so.6".to_owned(),
    ];
    let mut found = None;
    for candidate in &candidates {
        let source = format!("{container}:{candidate}");
        if step::captured(cmd!(sh, "{docker} cp --follow-link {source} {libc}")).is_ok() {
            found = Some(glibc::provided_by(&libc)?);
            break;
        }
    }
    let _ = step::captured(cmd!(sh, "{docker} rm {container}"));
    Ok(found.flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(name: &str) -> GlibcVersion {
        GlibcVersion::from_symbol_version(name).unwrap()
    }

    #[test]
    fn an_older_glibc_in_the_base_is_refused_with_both_versions() {
        let err = check_glibc_versions(
            version("GLIBC_2.34"),
            Some(version("GLIBC_2.31")),
            "debian:bullseye",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "app-web needs glibc 2.34 but debian:bullseye has glibc 2.31; use a base image with \
             glibc 2.34 or newer, or build app-web on a system with an older glibc"
        );
        assert!(
            check_glibc_versions(version("GLIBC_2.34"), Some(version("GLIBC_2.36")), "x").is_ok()
        );
        assert!(
            check_glibc_versions(version("GLIBC_2.34"), Some(version("GLIBC_2.34")), "x").is_ok()
        );
        let none = check_glibc_versions(version("GLIBC_2.34"), None, "alpine").unwrap_err();
        assert!(none.to_string().contains("alpine has no glibc"), "{none}");
    }

    #[test]
    fn commit_tags_are_short_and_keep_dirt() {
        assert_eq!(
            commit_tag("0123456789abcdef0123456789abcdef01234567"),
            "0123456789ab"
        );
        assert_eq!(
            commit_tag("0123456789abcdef0123456789abcdef01234567-dirty"),
            "0123456789ab-dirty"
        );
    }
}
