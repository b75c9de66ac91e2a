//! The monitoring configuration under docker/prometheus, checked by promtool (Debian's
//! prometheus package): the server configuration and the alert rules parse, and the rules'
//! unit tests pass, showing every alert firing when it should and quiet when it should not.

use e2e::tools as support;

use std::process::Command;

use support::{assert_success, project_root};

fn promtool(args: &[&str]) -> std::process::Output {
    Command::new("promtool")
        .args(args)
        .current_dir(project_root().join("docker/prometheus"))
        .output()
        .expect("run promtool (Debian's prometheus package; `cargo xtask setup` installs it)")
}

#[test]
fn promtool_accepts_the_configuration_and_the_rules() {
    assert_success(
        &promtool(&["check", "config", "prometheus.yml"]),
        "promtool check config",
    );
    let rules = promtool(&["check", "rules", "rules/app.rules.yml"]);
    assert_success(&rules, "promtool check rules");
    assert!(
        String::from_utf8_lossy(&rules.stdout).contains("12 rules found"),
        "{}",
        String::from_utf8_lossy(&rules.stdout)
    );
}

#[test]
fn every_alert_has_unit_tests_that_pass() {
    let tests = project_root().join("docker/prometheus/tests/app.rules.test.yml");
    let output = promtool(&["test", "rules", tests.to_str().unwrap()]);
    assert_success(&output, "promtool test rules");
    let text = std::fs::read_to_string(&tests).unwrap();
    let rules =
        std::fs::read_to_string(project_root().join("docker/prometheus/rules/app.rules.yml"))
            .unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(alerts.len(), 12);
    for alert in alerts {
        let tested = text.matches(&format!("alertname: {alert}\n")).count();
        let fires = text
            .split("alertname: ")
            .filter(|case| case.starts_with(&format!("{alert}\n")))
            .filter(|case| case.contains("exp_labels"))
            .count();
        assert!(
            tested >= 2 && fires >= 1 && fires < tested,
            "{alert}: needs a case where it fires and one where it stays quiet"
        );
    }
}

#[test]
fn every_alert_names_a_runbook_section_that_exists() {
    let rules =
        std::fs::read_to_string(project_root().join("docker/prometheus/rules/app.rules.yml"))
            .unwrap();
    let runbooks =
        std::fs::read_to_string(project_root().join("docker/prometheus/runbooks.md")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert: "))
        .collect();
    for alert in &alerts {
        assert!(
            rules.contains(&format!(
                "runbook: \"docker/prometheus/runbooks.md#{}\"",
                alert.to_lowercase()
            )),
            "{alert} names its runbook section"
        );
        assert!(
            runbooks.contains(&format!("\n## {alert}\n")),
            "runbooks.md has a section for {alert}"
        );
    }
}
