//! The repository's history as git-cliff-core takes it: the `v*` tags in version order, the
//! commits of each release (from the tag before it), and the unreleased commits since the last
//! tag, read with git itself.

use std::path::Path;
use std::process::Command;

use anyhow::Context;
use git_cliff_core::commit::Commit;
use git_cliff_core::release::Release;

/// A release tag: its name (`v1.2.0`) and version.
#[derive(Debug, Clone)]
pub struct Tag {
    pub name: String,
    pub version: semver::Version,
}

/// Runs git in `root`; its standard output, or an error with what it printed.
pub fn git(root: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .context("run git")?;
    anyhow::ensure!(
        output.status.success(),
        "git {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The release tags, oldest version first; tags that are not `v` and a semantic version are
/// not releases and are left out.
pub fn tags(root: &Path) -> anyhow::Result<Vec<Tag>> {
    let listing = git(root, &["tag", "--list", "v[0-9]*"])?;
    let mut tags: Vec<Tag> = listing
        .lines()
        .filter_map(|name| {
            let version = semver::Version::parse(name.strip_prefix('v')?).ok()?;
            Some(Tag {
                name: name.to_owned(),
                version,
            })
        })
        .collect();
    tags.sort_by(|a, b| a.version.cmp(&b.version));
    Ok(tags)
}

/// The commits in `range` (as `git log` takes it), oldest first.
fn commits(root: &Path, range: &str) -> anyhow::Result<Vec<Commit<'static>>> {
    let log = git(root, &["log", "--reverse", "--format=%H%x00%B%x1e", range])?;
    Ok(log
        .split('\u{1e}')
        .filter_map(|record| {
            let (id, message) = record.trim_start_matches('\n').split_once('\0')?;
            Some(Commit::new(id.to_owned(), message.trim_end().to_owned()))
        })
        .collect())
}

fn timestamp(root: &Path, revision: &str) -> anyhow::Result<i64> {
    git(root, &["log", "-1", "--format=%ct", revision])?
        .trim()
        .parse()
        .with_context(|| format!("git gave no commit time for {revision}"))
}

/// Every release, oldest first, then the unreleased commits as a release without a version
/// (git-cliff's "unreleased"). With no tag yet, the unreleased release's previous version is
/// `base`, so a bump starts from it.
pub fn releases(root: &Path, base: &str) -> anyhow::Result<Vec<Release<'static>>> {
    let tags = tags(root)?;
    let mut releases: Vec<Release<'static>> = Vec::new();
    for (index, tag) in tags.iter().enumerate() {
        let range = match index {
            0 => tag.name.clone(),
            _ => format!("{}..{}", tags[index - 1].name, tag.name),
        };
        releases.push(Release {
            version: Some(tag.name.clone()),
            commits: commits(root, &range)?,
            commit_id: Some(
                git(root, &["rev-list", "-n", "1", &tag.name])?
                    .trim()
                    .to_owned(),
            ),
            timestamp: Some(timestamp(root, &tag.name)?),
            previous: releases
                .last()
                .map(|previous| Box::new(version_only(previous))),
            ..Release::default()
        });
    }
    let range = match tags.last() {
        Some(last) => format!("{}..HEAD", last.name),
        None => "HEAD".to_owned(),
    };
    let previous = releases
        .last()
        .map(version_only)
        .unwrap_or_else(|| Release {
            version: Some(format!("v{base}")),
            ..Release::default()
        });
    releases.push(Release {
        version: None,
        commits: commits(root, &range)?,
        previous: Some(Box::new(previous)),
        ..Release::default()
    });
    Ok(releases)
}

/// A release reduced to its version, as a later release's `previous`.
fn version_only(release: &Release<'static>) -> Release<'static> {
    Release {
        version: release.version.clone(),
        ..Release::default()
    }
}
