//! `cargo xtask release prepare` and `cargo xtask changelog` in a temporary git repository with
//! synthetic conventional commits: the version git-cliff's rules make under 1.0.0 and after it,
//! every version site updated, CHANGELOG.md's sections, the release commit and annotated tag,
//! `--dry-run` changing nothing, and each refusal.

use e2e::tools as support;

use std::path::Path;
use std::process::{Command, Output};

use support::{assert_success, project_root};

fn git(repo: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .expect("run git");
    assert_success(&output, &format!("git {args:?}"));
    String::from_utf8(output.stdout).unwrap()
}

fn commit(repo: &Path, message: &str) {
    let file = repo.join("work.txt");
    let mut text = std::fs::read_to_string(&file).unwrap_or_default();
    text.push_str(message);
    text.push('\n');
    std::fs::write(&file, text).unwrap();
    git(repo, &["add", "work.txt"]);
    git(repo, &["commit", "--quiet", "-m", message]);
}

/// A repository shaped like this workspace: a workspace version, a lock file with a member
/// that inherits it and a registry crate that happens to share it, and the project's
/// cliff.toml; tagged v0.3.0.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "--quiet", "--initial-branch", "main"]);
    git(repo, &["config", "user.name", "Release Test"]);
    git(repo, &["config", "user.email", "release-test@app.test"]);
    std::fs::write(
        repo.join("Cargo.toml"),
        "[workspace]\nmembers = []\n\n# The one version.\n[workspace.package]\nversion = \"0.3.0\"\nedition = \"2024\"\n",
    )
    .unwrap();
    std::fs::write(
        repo.join("Cargo.lock"),
        "version = 4\n\n[[package]]\nname = \"demo\"\nversion = \"0.3.0\"\n\n[[package]]\nname = \"other\"\nversion = \"0.3.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"00\"\n",
    )
    .unwrap();
    std::fs::copy(project_root().join("cliff.toml"), repo.join("cliff.toml")).unwrap();
    git(repo, &["add", "."]);
    git(
        repo,
        &["commit", "--quiet", "-m", "chore: start the project"],
    );
    git(repo, &["tag", "v0.3.0"]);
    dir
}

fn release(repo: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["release", "prepare", "-C", repo.to_str().unwrap()];
    args.extend_from_slice(extra);
    support::xtask(&args)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn versions_follow_the_commits_before_and_after_1_0() {
    let dir = repository();
    let repo = dir.path();
    commit(repo, "fix: a crash at start");
    commit(repo, "feat(ui): a settings page");

    // Under 1.0.0 a feature bumps the patch version.
    let preview = support::xtask(&["changelog", "-C", repo.to_str().unwrap()]);
    assert_success(&preview, "changelog");
    let section = String::from_utf8_lossy(&preview.stdout);
    assert!(section.contains("## Unreleased"), "{section}");
    assert!(section.contains("**ui:** A settings page"), "{section}");
    assert!(
        stderr(&preview).contains("would make 0.3.1"),
        "{}",
        stderr(&preview)
    );

    // A breaking change bumps the minor version; --dry-run shows it and changes nothing.
    commit(repo, "feat!: a new storage format");
    let head = git(repo, &["rev-parse", "HEAD"]);
    let dry = release(repo, &["--dry-run"]);
    assert_success(&dry, "release prepare --dry-run");
    assert!(
        stderr(&dry).contains("release v0.4.0 (from 0.3.0)"),
        "{}",
        stderr(&dry)
    );
    assert!(stderr(&dry).contains("CHANGELOG.md"), "{}", stderr(&dry));
    assert!(String::from_utf8_lossy(&dry.stdout).contains("[**breaking**] A new storage format"));
    assert_eq!(git(repo, &["rev-parse", "HEAD"]), head);
    assert!(git(repo, &["tag", "--list", "v0.4.0"]).is_empty());
    assert!(!repo.join("CHANGELOG.md").exists());

    let made = release(repo, &[]);
    assert_success(&made, "release prepare");
    let manifest = std::fs::read_to_string(repo.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("version = \"0.4.0\""), "{manifest}");
    assert!(
        manifest.contains("# The one version."),
        "formatting is kept: {manifest}"
    );
    let lock = std::fs::read_to_string(repo.join("Cargo.lock")).unwrap();
    assert!(
        lock.contains("name = \"demo\"\nversion = \"0.4.0\""),
        "{lock}"
    );
    assert!(
        lock.contains("name = \"other\"\nversion = \"0.3.0\""),
        "{lock}"
    );
    let changelog = std::fs::read_to_string(repo.join("CHANGELOG.md")).unwrap();
    assert!(changelog.starts_with("# Changelog"), "{changelog}");
    let section = &changelog[changelog.find("## 0.4.0").expect("a 0.4.0 section")..];
    let features = section.find("### Features").expect("features");
    let fixes = section.find("### Bug fixes").expect("bug fixes");
    assert!(features < fixes, "{section}");
    assert!(section.contains("- A crash at start"), "{section}");
    assert!(
        changelog.contains("## 0.3.0"),
        "the earlier release is kept: {changelog}"
    );
    assert!(!changelog.contains("chore(release)"), "{changelog}");
    assert_eq!(git(repo, &["cat-file", "-t", "v0.4.0"]).trim(), "tag");
    assert_eq!(
        git(repo, &["log", "-1", "--format=%s"]).trim(),
        "chore(release): v0.4.0"
    );
    let message = git(repo, &["tag", "-l", "--format=%(contents)", "v0.4.0"]);
    assert!(message.contains("A new storage format"), "{message}");
    // The release workflow's plan: the notes come from the tag, which must match the version.
    let notes_file = repo.join("../notes.md");
    let notes = support::xtask(&[
        "release",
        "notes",
        "-C",
        repo.to_str().unwrap(),
        "--tag",
        "v0.4.0",
        "--out",
        notes_file.to_str().unwrap(),
    ]);
    assert_success(&notes, "release notes");
    let written = std::fs::read_to_string(&notes_file).unwrap();
    assert!(written.contains("A new storage format"), "{written}");
    let _ = std::fs::remove_file(&notes_file);
    let mismatch = support::xtask(&[
        "release",
        "notes",
        "-C",
        repo.to_str().unwrap(),
        "--tag",
        "v0.3.0",
    ]);
    assert!(!mismatch.status.success());
    assert!(
        stderr(&mismatch).contains("does not match the workspace version 0.4.0"),
        "{}",
        stderr(&mismatch)
    );
    assert!(git(repo, &["status", "--porcelain"]).is_empty());

    // From 1.0.0 on, a feature bumps the minor version and a breaking change the major.
    assert_success(&release(repo, &["--bump", "1.0.0"]), "release 1.0.0");
    commit(repo, "feat: search");
    let dry = release(repo, &["--dry-run"]);
    assert!(stderr(&dry).contains("release v1.1.0"), "{}", stderr(&dry));
    commit(repo, "refactor!: a new plugin interface");
    let dry = release(repo, &["--dry-run"]);
    assert!(stderr(&dry).contains("release v2.0.0"), "{}", stderr(&dry));
    let beta = release(repo, &["--bump", "minor", "--pre", "beta"]);
    assert_success(&beta, "a beta");
    assert!(
        stderr(&beta).contains("release v1.1.0-beta.1"),
        "{}",
        stderr(&beta)
    );
}

#[test]
fn each_refusal_says_what_to_do() {
    let dir = repository();
    let repo = dir.path();
    commit(repo, "fix: one");

    let taken = release(repo, &["--bump", "0.3.0"]);
    assert!(!taken.status.success());
    assert!(
        stderr(&taken).contains("v0.3.0 exists"),
        "{}",
        stderr(&taken)
    );
    git(repo, &["tag", "v0.5.0"]);
    let lower = release(repo, &["--bump", "0.4.0"]);
    assert!(!lower.status.success());
    assert!(
        stderr(&lower).contains("not greater than the last release, v0.5.0"),
        "{}",
        stderr(&lower)
    );
    let nothing = release(repo, &[]);
    assert!(
        stderr(&nothing).contains("no unreleased commits"),
        "{}",
        stderr(&nothing)
    );
    let nonsense = release(repo, &["--bump", "sideways"]);
    assert!(
        stderr(&nonsense).contains("--bump"),
        "{}",
        stderr(&nonsense)
    );

    std::fs::write(repo.join("Cargo.toml"), "[workspace]\n").unwrap();
    let dirty = release(repo, &[]);
    assert!(!dirty.status.success());
    assert!(
        stderr(&dirty).contains("uncommitted changes"),
        "{}",
        stderr(&dirty)
    );
    git(repo, &["checkout", "--quiet", "--", "Cargo.toml"]);

    git(repo, &["checkout", "--quiet", "-b", "topic"]);
    commit(repo, "fix: two");
    let branch = release(repo, &["--dry-run"]);
    assert!(!branch.status.success());
    assert!(
        stderr(&branch).contains("made on main, and this is topic"),
        "{}",
        stderr(&branch)
    );
    assert_success(
        &release(repo, &["--dry-run", "--any-branch"]),
        "--any-branch",
    );
}
