//! `cargo xtask changelog` and `cargo xtask release prepare`: the next version from the
//! conventional commits since the last `v*` tag (git-cliff-core's bump rules, with cliff.toml's
//! 0.x settings) or as given, every file that carries the version updated together, CHANGELOG.md
//! regenerated from the whole history, a release commit and an annotated tag.

mod history;
mod publish;

use std::path::{Path, PathBuf};

use anyhow::Context;
use git_cliff_core::changelog::Changelog;
use git_cliff_core::config::Config;
use git_cliff_core::release::Release;

use crate::{flags, path};
use history::git;

const CHANGELOG: &str = "CHANGELOG.md";
const CLIFF_CONFIG: &str = "cliff.toml";

fn root_of(directory: Option<PathBuf>) -> PathBuf {
    directory.unwrap_or_else(path::project_root)
}

fn cliff_config(root: &Path) -> anyhow::Result<Config> {
    let file = root.join(CLIFF_CONFIG);
    anyhow::ensure!(file.is_file(), "{} is missing", file.display());
    Config::load(&file)
        .with_context(|| format!("{} is not a git-cliff configuration", file.display()))
}

/// The workspace version in `root`'s Cargo.toml.
fn workspace_version(root: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(root.join("Cargo.toml")).context("read Cargo.toml")?;
    let manifest: toml_edit::DocumentMut = text.parse().context("parse Cargo.toml")?;
    manifest["workspace"]["package"]["version"]
        .as_str()
        .map(str::to_owned)
        .context("Cargo.toml has no [workspace.package] version")
}

/// Renders `releases` (oldest first) with `config`; without the header for a single section.
fn render(
    config: &Config,
    releases: Vec<Release<'static>>,
    header: bool,
) -> anyhow::Result<String> {
    let mut config = config.clone();
    if !header {
        config.changelog.header = None;
    }
    let changelog = Changelog::new(releases, config, None).context("build the changelog")?;
    let mut out = Vec::new();
    changelog
        .generate(&mut out)
        .context("render the changelog")?;
    String::from_utf8(out).context("the changelog is not UTF-8")
}

/// What git-cliff's bump rules make of the unreleased commits.
fn bumped_version(config: &Config, releases: &[Release<'static>]) -> anyhow::Result<String> {
    let mut changelog =
        Changelog::new(releases.to_vec(), config.clone(), None).context("build the changelog")?;
    let next = changelog
        .bump_version()
        .context("work out the next version")?
        .context("there are no unreleased commits to release")?;
    Ok(next.trim_start_matches('v').to_owned())
}

impl flags::Changelog {
    pub fn run(self, _sh: &xshell::Shell) -> anyhow::Result<()> {
        let root = root_of(self.directory);
        let config = cliff_config(&root)?;
        let releases = history::releases(&root, &workspace_version(&root)?)?;
        let unreleased = releases.last().cloned().into_iter().collect();
        let section = render(&config, unreleased, false)?;
        if section.trim().is_empty() {
            eprintln!("xtask: nothing unreleased since the last tag");
            return Ok(());
        }
        print!("{section}");
        eprintln!(
            "xtask: `release prepare --bump auto` would make {}",
            bumped_version(&config, &releases)?
        );
        Ok(())
    }
}

/// The version `bump` asks for, after `last` (the last release, or the workspace version when
/// nothing was released yet).
fn next_version(
    bump: &str,
    pre: Option<&str>,
    last: &semver::Version,
    auto: impl FnOnce() -> anyhow::Result<String>,
    existing: &[history::Tag],
) -> anyhow::Result<semver::Version> {
    let mut next = match bump {
        "auto" => semver::Version::parse(&auto()?)?,
        "patch" => semver::Version::new(last.major, last.minor, last.patch + 1),
        "minor" => semver::Version::new(last.major, last.minor + 1, 0),
        "major" => semver::Version::new(last.major + 1, 0, 0),
        given => semver::Version::parse(given.trim_start_matches('v')).with_context(|| {
            format!("--bump {given:?} is not auto, patch, minor, major or a version like 1.2.3")
        })?,
    };
    if let Some(pre) = pre {
        anyhow::ensure!(
            !pre.is_empty() && pre.bytes().all(|b| b.is_ascii_alphanumeric()),
            "--pre {pre:?} must be a word such as beta or rc"
        );
        next.pre = semver::Prerelease::EMPTY;
        // The next free number: beta.1, beta.2, ...
        let taken = existing
            .iter()
            .filter(|tag| {
                (tag.version.major, tag.version.minor, tag.version.patch)
                    == (next.major, next.minor, next.patch)
                    && tag.version.pre.as_str().starts_with(&format!("{pre}."))
            })
            .count();
        next.pre = semver::Prerelease::new(&format!("{pre}.{}", taken + 1))?;
    }
    Ok(next)
}

/// The files a release changes, with their new contents.
struct Edit {
    file: PathBuf,
    text: String,
}

/// Cargo.toml's workspace version and the Cargo.lock entries of the workspace members that
/// inherit it (no `source`, the old version), set to `next`.
fn version_edits(root: &Path, old: &str, next: &str) -> anyhow::Result<Vec<Edit>> {
    let manifest_path = root.join("Cargo.toml");
    let mut manifest: toml_edit::DocumentMut = std::fs::read_to_string(&manifest_path)
        .context("read Cargo.toml")?
        .parse()
        .context("parse Cargo.toml")?;
    manifest["workspace"]["package"]["version"] = toml_edit::value(next);
    let mut edits = vec![Edit {
        file: manifest_path,
        text: manifest.to_string(),
    }];
    let lock_path = root.join("Cargo.lock");
    if lock_path.is_file() {
        let mut lock: toml_edit::DocumentMut = std::fs::read_to_string(&lock_path)
            .context("read Cargo.lock")?
            .parse()
            .context("parse Cargo.lock")?;
        if let Some(packages) = lock
            .get_mut("package")
            .and_then(|item| item.as_array_of_tables_mut())
        {
            for package in packages.iter_mut() {
                let member = package.get("source").is_none()
                    && package.get("version").and_then(|v| v.as_str()) == Some(old);
                if member {
                    package["version"] = toml_edit::value(next);
                }
            }
        }
        edits.push(Edit {
            file: lock_path,
            text: lock.to_string(),
        });
    }
    Ok(edits)
}

/// Writes every edit to a temporary file beside its target first, then renames them all into
/// place, so a failure while writing changes nothing.
fn apply(edits: &[Edit]) -> anyhow::Result<()> {
    let mut staged = Vec::new();
    for edit in edits {
        let dir = edit.file.parent().unwrap_or(Path::new("."));
        let mut temporary = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("create a temporary file in {}", dir.display()))?;
        std::io::Write::write_all(&mut temporary, edit.text.as_bytes())
            .and_then(|()| temporary.as_file().sync_all())
            .with_context(|| format!("write {}", edit.file.display()))?;
        staged.push((temporary, &edit.file));
    }
    for (temporary, file) in staged {
        temporary
            .persist(file)
            .with_context(|| format!("rename into {}", file.display()))?;
    }
    Ok(())
}

impl flags::ReleasePrepare {
    pub fn run(self, _sh: &xshell::Shell) -> anyhow::Result<()> {
        let root = root_of(self.directory.clone());
        let config = cliff_config(&root)?;

        let dirty = git(&root, &["status", "--porcelain", "--untracked-files=no"])?;
        anyhow::ensure!(
            dirty.trim().is_empty(),
            "the working tree has uncommitted changes; commit or stash them first:\n{}",
            dirty.trim_end()
        );
        let branch = git(&root, &["rev-parse", "--abbrev-ref", "HEAD"])?
            .trim()
            .to_owned();
        anyhow::ensure!(
            self.any_branch || branch == self.branch,
            "releases are made on {}, and this is {branch}; switch to it, or pass --any-branch",
            self.branch
        );

        let current = workspace_version(&root)?;
        let tags = history::tags(&root)?;
        let releases = history::releases(&root, &current)?;
        let last = match tags.last() {
            Some(tag) => tag.version.clone(),
            None => semver::Version::parse(&current)
                .with_context(|| format!("the workspace version {current:?} is not semver"))?,
        };
        let next = next_version(
            &self.bump,
            self.pre.as_deref(),
            &last,
            || bumped_version(&config, &releases),
            &tags,
        )?;
        let tag = format!("v{next}");
        anyhow::ensure!(
            git(&root, &["tag", "--list", &tag])?.trim().is_empty(),
            "the tag {tag} exists already"
        );
        if let Some(last) = tags.last() {
            anyhow::ensure!(
                next > last.version,
                "{next} is not greater than the last release, {}",
                last.name
            );
        }

        // The unreleased commits become the release.
        let mut releases = releases;
        if let Some(unreleased) = releases.last_mut() {
            unreleased.version = Some(tag.clone());
            unreleased.timestamp = Some(time::OffsetDateTime::now_utc().unix_timestamp());
        }
        let section = render(
            &config,
            releases.last().cloned().into_iter().collect(),
            false,
        )?;
        let changelog = render(&config, releases, true)?;
        let mut edits = version_edits(&root, &current, &next.to_string())?;
        edits.push(Edit {
            file: root.join(CHANGELOG),
            text: changelog,
        });

        eprintln!("xtask: release {tag} (from {})", last);
        print!("{section}");
        for edit in &edits {
            eprintln!("xtask: changes {}", edit.file.display());
        }
        if self.dry_run {
            eprintln!("xtask: dry run: nothing written, committed or tagged");
            return Ok(());
        }
        apply(&edits)?;
        let mut add = vec!["add", "--"];
        let names: Vec<String> = edits
            .iter()
            .map(|edit| edit.file.display().to_string())
            .collect();
        add.extend(names.iter().map(String::as_str));
        git(&root, &add)?;
        git(
            &root,
            &["commit", "--quiet", "-m", &format!("chore(release): {tag}")],
        )?;
        git(
            &root,
            &[
                "tag",
                "--annotate",
                &tag,
                "--cleanup=verbatim",
                "-m",
                &format!("{tag}\n\n{section}"),
            ],
        )?;
        eprintln!("xtask: committed and tagged {tag}; push with `git push --follow-tags`");
        Ok(())
    }
}

impl flags::ReleaseNotes {
    pub fn run(self, _sh: &xshell::Shell) -> anyhow::Result<()> {
        let root = root_of(self.directory);
        let version = workspace_version(&root)?;
        let tag = self
            .tag
            .or_else(|| std::env::var("GITHUB_REF_NAME").ok())
            .unwrap_or_else(|| format!("v{version}"));
        anyhow::ensure!(
            tag == format!("v{version}"),
            "the tag {tag} does not match the workspace version {version}: tag the commit `release prepare` made"
        );
        let kind = git(&root, &["cat-file", "-t", &tag])
            .with_context(|| format!("there is no tag {tag}"))?;
        anyhow::ensure!(
            kind.trim() == "tag",
            "{tag} is a lightweight tag; `release prepare` makes an annotated one holding the notes"
        );
        let notes = git(&root, &["tag", "--list", "--format=%(contents)", &tag])?;
        match self.out {
            Some(out) => crate::atomic_file::write(&out, notes.trim().as_bytes(), 0o644)?,
            None => println!("{}", notes.trim()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(name: &str) -> history::Tag {
        history::Tag {
            name: name.to_owned(),
            version: semver::Version::parse(name.trim_start_matches('v')).unwrap(),
        }
    }

    #[test]
    fn bumps_and_pre_releases() {
        let last = semver::Version::parse("1.4.2").unwrap();
        let never = || -> anyhow::Result<String> { unreachable!() };
        let next = |bump: &str, pre: Option<&str>, tags: &[history::Tag]| {
            next_version(bump, pre, &last, never, tags).map(|v| v.to_string())
        };
        assert_eq!(next("patch", None, &[]).unwrap(), "1.4.3");
        assert_eq!(next("minor", None, &[]).unwrap(), "1.5.0");
        assert_eq!(next("major", None, &[]).unwrap(), "2.0.0");
        assert_eq!(next("v3.0.0", None, &[]).unwrap(), "3.0.0");
        assert_eq!(next("minor", Some("beta"), &[]).unwrap(), "1.5.0-beta.1");
        let taken = [
            tag("v1.5.0-beta.1"),
            tag("v1.5.0-beta.2"),
            tag("v1.5.0-rc.1"),
        ];
        assert_eq!(next("minor", Some("beta"), &taken).unwrap(), "1.5.0-beta.3");
        assert!(
            next("sideways", None, &[])
                .unwrap_err()
                .to_string()
                .contains("--bump")
        );
        assert!(next("minor", Some("be ta"), &[]).is_err());
        let auto = next_version("auto", None, &last, || Ok("1.5.0".to_owned()), &[]).unwrap();
        assert_eq!(auto.to_string(), "1.5.0");
    }

    #[test]
    fn the_repository_s_cliff_config_loads() {
        let config = cliff_config(&path::project_root()).unwrap();
        assert!(config.git.conventional_commits);
        assert_eq!(config.bump.features_always_bump_minor, Some(false));
    }
}
