//! Facts about the workspace that several commands need: the product name and version from the
//! workspace Cargo.toml, the commit, and the source date used for reproducible artifacts.

use anyhow::Context;
use serde::Deserialize;
use xshell::{Shell, cmd};

use crate::path;

/// The product as the workspace Cargo.toml describes it.
#[derive(Debug, Clone)]
pub struct Product {
    pub name: String,
    pub version: String,
    /// `[workspace.package].repository`: where the source lives.
    pub repository: String,
}

#[derive(Deserialize)]
struct Manifest {
    workspace: WorkspaceSection,
}

#[derive(Deserialize)]
struct WorkspaceSection {
    package: PackageSection,
    metadata: MetadataSection,
}

#[derive(Deserialize)]
struct PackageSection {
    version: String,
    #[serde(default)]
    repository: String,
}

#[derive(Deserialize)]
struct MetadataSection {
    product: ProductSection,
}

#[derive(Deserialize)]
struct ProductSection {
    name: String,
}

impl Product {
    /// Reads `[workspace.package].version` and `[workspace.metadata.product].name`.
    pub fn load() -> anyhow::Result<Self> {
        let manifest_path = path::workspace_manifest();
        let text = std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("read {}", manifest_path.display()))?;
        Self::parse(&text).with_context(|| format!("parse {}", manifest_path.display()))
    }

    fn parse(text: &str) -> anyhow::Result<Self> {
        let manifest: Manifest = toml::from_str(text)?;
        let version = manifest.workspace.package.version;
        semver_check(&version)?;
        Ok(Self {
            name: manifest.workspace.metadata.product.name,
            version,
            repository: manifest.workspace.package.repository,
        })
    }
}

fn semver_check(version: &str) -> anyhow::Result<()> {
    semver::Version::parse(version).with_context(|| {
        format!("[workspace.package].version {version:?} is not a semantic version like 1.2.3")
    })?;
    Ok(())
}

/// The Unix time every artifact's timestamps are set to: `SOURCE_DATE_EPOCH` when set, else
/// the time of the last commit.
pub fn source_date_epoch(sh: &Shell) -> anyhow::Result<u64> {
    if let Ok(value) = std::env::var("SOURCE_DATE_EPOCH") {
        return value.trim().parse().with_context(|| {
            format!("SOURCE_DATE_EPOCH must be a Unix time in whole seconds, got {value:?}")
        });
    }
    let output = crate::step::quiet(cmd!(sh, "git log -1 --format=%ct"))
        .read()
        .context(
            "read the last commit's time with git; outside a git checkout set SOURCE_DATE_EPOCH",
        )?;
    output
        .trim()
        .parse()
        .with_context(|| format!("git printed {output:?} as the commit time"))
}

/// The files git tracks under `folder` (relative to the workspace root), sorted.
pub fn tracked_files(sh: &Shell, folder: &str) -> anyhow::Result<Vec<String>> {
    let root = path::project_root();
    let listing = crate::step::quiet(cmd!(sh, "git -C {root} ls-files -- {folder}"))
        .read()
        .with_context(|| format!("list the files git tracks in {folder}"))?;
    let mut files: Vec<String> = listing.lines().map(str::to_owned).collect();
    files.sort();
    Ok(files)
}

/// The commit being built, with `-dirty` when the work tree has uncommitted changes.
pub fn git_commit(sh: &Shell) -> anyhow::Result<String> {
    let commit = crate::step::quiet(cmd!(sh, "git rev-parse HEAD"))
        .read()
        .context("read the current commit with git")?;
    let status = crate::step::quiet(cmd!(sh, "git status --porcelain --untracked-files=no"))
        .read()
        .context("check the work tree with git status")?;
    Ok(if status.trim().is_empty() {
        commit
    } else {
        format!("{commit}-dirty")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_version_and_product_name() {
        let product = Product::parse(
            "[workspace.package]\nversion = \"2.3.4\"\n[workspace.metadata.product]\nname = \"thing\"\n",
        )
        .unwrap();
        assert_eq!(product.version, "2.3.4");
        assert_eq!(product.name, "thing");
    }

    #[test]
    fn rejects_a_version_that_is_not_semver() {
        let err = Product::parse(
            "[workspace.package]\nversion = \"2.3\"\n[workspace.metadata.product]\nname = \"thing\"\n",
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("is not a semantic version"),
            "{err:#}"
        );
    }
}
