//! A real Prometheus (Debian's package) scraping a real app-web: the request counter it reads
//! back is the traffic the test sent, and it loads the stack's alert rules as they ship.

use e2e as support;

use std::path::Path;
use std::time::Duration;

use local_servers::{Prometheus, wait_for};
use support::RunningBinary;

fn rules_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("docker/prometheus/rules")
}

/// The names of the rules in the rule files, sorted.
fn shipped_rules() -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(rules_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|extension| extension != "yml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for document in yaml_rust2::YamlLoader::load_from_str(&text).unwrap() {
            for group in document["groups"].as_vec().into_iter().flatten() {
                for rule in group["rules"].as_vec().into_iter().flatten() {
                    let name = rule["alert"].as_str().or(rule["record"].as_str());
                    names.push(name.expect("a rule names an alert or a record").to_owned());
                }
            }
        }
    }
    names.sort();
    assert!(!names.is_empty(), "no rules in {}", rules_dir().display());
    names
}

#[test]
fn prometheus_scrapes_the_traffic_the_test_sent_and_loads_the_alert_rules() {
    let app = RunningBinary::start(&[]);
    for _ in 0..7 {
        assert_eq!(support::http_get(&app.url("/api/info")).0, 200);
    }
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {}/*.yml\n\
         scrape_configs:\n  - job_name: app-web\n    static_configs:\n      - targets: [\"{}\"]\n",
        rules_dir().display(),
        app.address
    );
    let prometheus = Prometheus::start(&config).expect("start Prometheus");

    let query = "app_web_http_requests_total{job=\"app-web\", route=\"/api/info\", status=\"200\"}";
    let mut last = Vec::new();
    let scraped = wait_for(
        Duration::from_secs(30),
        "Prometheus to scrape app-web",
        || {
            last = prometheus.query(query).unwrap_or_default();
            !last.is_empty()
        },
    );
    scraped.unwrap_or_else(|err| panic!("{err:#}\n{}", prometheus.log()));
    assert_eq!(last.len(), 1, "{last:?}");
    assert_eq!(last[0]["value"][1], "7", "{last:?}");
    assert_eq!(
        prometheus.query("up{job=\"app-web\"}").unwrap()[0]["value"][1],
        "1"
    );

    let rules = prometheus.api("/api/v1/rules").unwrap();
    let mut loaded: Vec<String> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_array().unwrap())
        .filter_map(|rule| rule["name"].as_str().map(str::to_owned))
        .collect();
    loaded.sort();
    assert_eq!(loaded, shipped_rules(), "every alert rule loads: {rules}");
    let health: Vec<&str> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_array().unwrap())
        .filter_map(|rule| rule["health"].as_str())
        .collect();
    assert!(
        health.iter().all(|health| *health != "err"),
        "no rule fails to evaluate: {rules}"
    );
}
