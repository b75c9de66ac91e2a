//! Repository checks that run as ordinary tests, so `cargo test` enforces them and CI adds no
//! hidden steps.

mod compose;
mod dockerfile;
mod migrations;
mod nginx;
mod stand_ins;
mod workflows;

use xshell::{Shell, cmd};

use crate::path::{ci_script, project_root, workspace_manifest};
use crate::workspace::Product;

/// Paths of every file git tracks, relative to the workspace root.
fn tracked_files() -> Vec<String> {
    let sh = Shell::new().unwrap();
    sh.change_dir(project_root());
    let listing = cmd!(sh, "git ls-files")
        .quiet()
        .read()
        .expect("list the tracked files with git");
    listing
        .lines()
        .map(str::to_owned)
        .filter(|file| project_root().join(file).is_file())
        .collect()
}

fn read(relative: &str) -> Option<String> {
    std::fs::read_to_string(project_root().join(relative)).ok()
}

/// The test command README.md gives: the `cargo xtask` line in a code block whose comment
/// calls it the tests.
fn readme_test_command() -> String {
    let text = std::fs::read_to_string(project_root().join("README.md")).expect("read README.md");
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code
            && let Some((command, comment)) = line.split_once('#')
            && command.trim().starts_with("cargo xtask")
            && comment.contains("tests")
        {
            return command.trim().to_owned();
        }
    }
    panic!("README.md has no code line `cargo xtask ...  # ... tests ...` giving the test command");
}

#[test]
fn ci_runs_the_readme_test_command_and_nothing_else() {
    let test_command = readme_test_command();
    assert_eq!(
        test_command, "cargo xtask ci",
        "README.md's test command is `cargo xtask ci`"
    );
    let script = std::fs::read_to_string(ci_script()).expect("read .ci/run");
    let commands: Vec<&str> = script
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter(|line| !line.starts_with("set ") && !line.starts_with("cd "))
        .collect();
    assert_eq!(
        commands,
        vec![format!("exec {test_command}").as_str()],
        ".ci/run must run README.md's test command and nothing else besides `set` and `cd`"
    );
}

/// Whether `text` holds `version` as a whole version, not as part of a longer one.
fn mentions_version(text: &str, version: &str) -> bool {
    text.match_indices(version).any(|(start, _)| {
        let before = text[..start].chars().next_back();
        let after = text[start + version.len()..].chars().next();
        let joins = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.');
        !joins(before) && !joins(after)
    })
}

#[test]
fn the_version_lives_only_in_the_workspace_manifest() {
    let version = Product::load().unwrap().version;
    let mut offenders = Vec::new();
    for file in tracked_files() {
        // Cargo.lock is written by cargo from the manifests.
        if file == "Cargo.toml" || file == "Cargo.lock" {
            continue;
        }
        if read(&file).is_some_and(|text| mentions_version(&text, &version)) {
            offenders.push(file);
        }
    }
    assert!(
        offenders.is_empty(),
        "these files spell out the version {version}; read it from the workspace Cargo.toml instead: {offenders:?}"
    );

    for member in ["app-web/Cargo.toml", "app-desktop/Cargo.toml"] {
        let manifest: toml::Table = toml::from_str(&read(member).unwrap()).unwrap();
        assert_eq!(
            manifest["package"]["version"]
                .get("workspace")
                .and_then(|v| v.as_bool()),
            Some(true),
            "{member} must say `version.workspace = true`"
        );
    }
    let tauri: serde_json::Value =
        serde_json::from_str(&read("app-desktop/tauri.conf.json").unwrap()).unwrap();
    assert!(
        tauri.get("version").is_none(),
        "tauri.conf.json must leave the version to Cargo.toml"
    );
}

#[test]
fn version_matching_respects_boundaries() {
    assert!(mentions_version("version = \"1.2.3\"", "1.2.3"));
    assert!(mentions_version("app_1.2.3_amd64.deb", "1.2.3"));
    assert!(!mentions_version("11.2.3", "1.2.3"));
    assert!(!mentions_version("1.2.30", "1.2.3"));
    assert!(!mentions_version("v1.2.3.4", "1.2.3"));
}

#[test]
fn the_workspace_manifest_sets_the_version_once() {
    let text = std::fs::read_to_string(workspace_manifest()).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    assert!(manifest["workspace"]["package"]["version"].is_str());
}

/// Rust sources of the workspace, excluding this file, whose job is to name what it forbids.
fn rust_sources() -> Vec<String> {
    tracked_files()
        .into_iter()
        .filter(|file| file.ends_with(".rs") && file != "xtask/src/tidy.rs")
        .collect()
}

#[test]
fn no_leftover_debugging_or_disabled_tests() {
    let forbidden = [
        concat!("todo", "!("),
        concat!("dbg", "!("),
        concat!("unimplemented", "!("),
        concat!("#[", "ignore"),
        concat!("#[", "should_panic"),
    ];
    let mut offenders = Vec::new();
    for file in rust_sources() {
        let text = read(&file).unwrap_or_default();
        for (number, line) in text.lines().enumerate() {
            for pattern in forbidden {
                if line.contains(pattern) {
                    offenders.push(format!("{file}:{}: {pattern}", number + 1));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "remove these: {offenders:#?}");
}

#[test]
fn every_rust_file_says_what_it_is_for() {
    let offenders: Vec<String> = rust_sources()
        .into_iter()
        .chain(std::iter::once("xtask/src/tidy.rs".to_owned()))
        .filter(|file| !read(file).unwrap_or_default().starts_with("//!"))
        .collect();
    assert!(
        offenders.is_empty(),
        "start these files with a `//!` line saying what they are for: {offenders:?}"
    );
}

#[test]
fn no_stray_printing_in_library_code() {
    // app-web's library logs through tracing; only its binary's main.rs may print.
    let library_files: Vec<String> = rust_sources()
        .into_iter()
        .filter(|file| file.starts_with("app-web/src/") && file != "app-web/src/main.rs")
        .collect();
    assert!(!library_files.is_empty());
    let mut offenders = Vec::new();
    for file in library_files {
        let text = read(&file).unwrap_or_default();
        for (number, line) in text.lines().enumerate() {
            if line.contains("println!(") || line.contains("eprintln!(") {
                offenders.push(format!("{file}:{}", number + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "use tracing instead of printing: {offenders:?}"
    );
}

#[test]
#[cfg(unix)]
fn ci_script_is_executable() {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(ci_script()).unwrap().permissions().mode();
    assert!(
        mode & 0o111 != 0,
        ".ci/run is not executable; run `chmod +x .ci/run` and commit"
    );
}

/// The markdown files of the project's own documentation: README, ARCHITECTURE and docs/.
fn documentation_files() -> Vec<String> {
    tracked_files()
        .into_iter()
        .filter(|file| {
            file == "README.md"
                || file == "ARCHITECTURE.md"
                || (file.starts_with("docs/") && file.ends_with(".md"))
        })
        .collect()
}

/// The targets of a markdown text's inline links, `[text](target)`.
fn link_targets(text: &str) -> Vec<&str> {
    text.match_indices("](")
        .filter_map(|(start, _)| {
            let rest = &text[start + 2..];
            rest.find(')').map(|end| &rest[..end])
        })
        .collect()
}

#[test]
fn the_readme_is_short_and_every_link_in_the_docs_leads_somewhere() {
    let readme = read("README.md").expect("read README.md");
    let lines = readme.lines().count();
    assert!(
        lines < 200,
        "README.md has {lines} lines: keep it to what the project is, the two commands, where to go \
         next and the layout, and put the rest in docs/"
    );
    let files = documentation_files();
    assert!(
        files
            .iter()
            .any(|file| file.starts_with("docs/operations/")),
        "{files:?}"
    );
    for file in &files {
        let text = read(file).unwrap();
        let folder = std::path::Path::new(file)
            .parent()
            .unwrap_or(std::path::Path::new(""));
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let path = target.split('#').next().unwrap_or(target);
            assert!(
                project_root().join(folder).join(path).exists(),
                "{file} links to {target}, which does not exist"
            );
        }
    }
}

#[test]
fn link_targets_are_read_from_inline_links() {
    assert_eq!(
        link_targets("see [a](docs/a.md) and [b](../b.md#part), not [c]"),
        ["docs/a.md", "../b.md#part"]
    );
}
