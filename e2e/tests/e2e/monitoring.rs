//! The monitoring profile's configuration loaded into real servers. A real Prometheus runs
//! docker/prometheus/prometheus.yml with every address moved to loopback and scrapes real
//! targets: app-web, the backup schedule, and Debian's PostgreSQL, Redis, nginx, node and
//! blackbox exporters (the versions compose pins) on the stack's PostgreSQL, Redis and nginx
//! configuration; every metric the alert rules and the Grafana dashboards name must come back
//! from those scrapes. Alertmanager runs docker/alertmanager's configuration as render.sh
//! writes it and delivers grouped, inhibited alerts to a webhook and an SMTP server on
//! loopback.

use e2e as support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use local_servers::{Exporter, Prometheus, Redis, RedisOptions, wait_for};
use promql_parser::parser::{Expr, parse};
use promql_parser::util::{ExprVisitor, walk_expr};
use support::proxy::Proxy;
use support::{RunningBinary, assert_success, docker_dir};

/// The metric names an expression selects.
fn metric_names(promql: &str) -> BTreeSet<String> {
    struct Names(BTreeSet<String>);
    impl ExprVisitor for Names {
        type Error = ();
        fn pre_visit(&mut self, expr: &Expr) -> Result<bool, ()> {
            let selector = match expr {
                Expr::VectorSelector(selector) => Some(selector),
                Expr::MatrixSelector(matrix) => Some(&matrix.vs),
                _ => None,
            };
            if let Some(name) = selector.and_then(|selector| selector.name.clone()) {
                self.0.insert(name);
            }
            Ok(true)
        }
    }
    let expr = parse(promql).unwrap_or_else(|err| panic!("{promql:?} is not PromQL: {err}"));
    let mut names = Names(BTreeSet::new());
    walk_expr(&mut names, &expr).unwrap();
    names.0
}

/// Every alert rule's expression, by alert name.
fn alert_expressions() -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(docker_dir().join("prometheus/rules/app.rules.yml")).unwrap();
    let document = yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap()
        .remove(0);
    document["groups"]
        .as_vec()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_vec().unwrap())
        .map(|rule| {
            (
                rule["alert"].as_str().unwrap().to_owned(),
                rule["expr"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Every PromQL query of the dashboards, as `dashboard / panel`.
fn dashboard_expressions() -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(docker_dir().join("grafana/dashboards")).unwrap() {
        let path = entry.unwrap().path();
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                if target["datasource"]["uid"] == "prometheus" {
                    found.push((
                        format!("{} / {}", dashboard["title"], panel["title"]),
                        target["expr"].as_str().unwrap().to_owned(),
                    ));
                }
            }
        }
    }
    assert!(
        found.len() > 40,
        "the dashboards query Prometheus: {found:?}"
    );
    found
}

#[test]
fn the_rules_and_dashboards_parse_and_name_metrics() {
    assert_eq!(
        metric_names("sum(rate(a_total{x=\"1\"}[5m])) / on() b + time() * count(c offset 5m)"),
        ["a_total", "b", "c"].map(String::from).into()
    );
    assert_eq!(alert_expressions().len(), 12);
    for (what, expr) in alert_expressions().iter().chain(&dashboard_expressions()) {
        assert!(!metric_names(expr).is_empty(), "{what}: {expr}");
    }
}

/// docker/prometheus/prometheus.yml with each stack address replaced by where the test runs
/// that target, scraping every second.
fn loopback_prometheus_config(addresses: &[(&str, String)], blackbox_targets: &Path) -> String {
    let mut config =
        std::fs::read_to_string(docker_dir().join("prometheus/prometheus.yml")).unwrap();
    let mut replace = |from: &str, to: &str| {
        assert!(
            config.contains(from),
            "prometheus.yml no longer has {from:?}"
        );
        config = config.replace(from, to);
    };
    for (service, address) in addresses {
        replace(&format!("\"{service}\""), &format!("\"{address}\""));
    }
    replace(
        "/run/prometheus/blackbox-targets.yml",
        blackbox_targets.to_str().unwrap(),
    );
    replace(
        "  - rules/*.yml",
        &format!(
            "  - {}/*.yml",
            docker_dir().join("prometheus/rules").display()
        ),
    );
    replace("scrape_interval: 15s", "scrape_interval: 1s");
    replace("evaluation_interval: 15s", "evaluation_interval: 1s");
    config
}

/// The blackbox modules as shipped, trusting the test's self-signed certificate as well.
fn blackbox_config(folder: &Path, certificate: &Path) -> std::path::PathBuf {
    let shipped = std::fs::read_to_string(docker_dir().join("blackbox/blackbox.yml")).unwrap();
    let trusted = "        insecure_skip_verify: false\n";
    assert!(shipped.contains(trusted));
    let config = shipped.replace(
        trusted,
        &format!("{trusted}        ca_file: {}\n", certificate.display()),
    );
    let path = folder.join("blackbox.yml");
    std::fs::write(&path, config).unwrap();
    path
}

/// The backup schedule running every two seconds with drills, as the superuser with its
/// password from a file, as the stack's backup service runs (drills create a database).
fn backup_schedule(
    postgres: &local_servers::Postgres,
    secrets: &Path,
    folder: &Path,
) -> (std::process::Child, u16) {
    let password = "postgres-password-from-a-secret";
    postgres
        .psql(&format!("ALTER ROLE postgres PASSWORD '{password}'"))
        .unwrap();
    std::fs::write(secrets.join("postgres_password"), password).unwrap();
    let keygen = Command::new(support::binary("app-web"))
        .args(["backup", "keygen", "--out"])
        .arg(folder.join("identity.txt"))
        .output()
        .unwrap();
    assert_success(&keygen, "backup keygen");
    let recipient = String::from_utf8(keygen.stdout).unwrap().trim().to_owned();
    let port = local_servers::free_port().unwrap();
    let child = Command::new(support::binary("app-web"))
        .args(["backup", "schedule", "--cron", "*/2 * * * * *", "--verify"])
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{port}"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(
            "APP_WEB_DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{}/app", postgres.port),
        )
        .env(
            "APP_WEB_DATABASE_PASSWORD_FILE",
            secrets.join("postgres_password"),
        )
        .env("APP_WEB_BACKUP_DIR", folder.join("backups"))
        .env("APP_WEB_BACKUP_RECIPIENTS", recipient)
        .env("APP_WEB_BACKUP_IDENTITY_FILE", folder.join("identity.txt"))
        .env(
            "APP_WEB_BACKUP_PG_DUMP",
            local_servers::Postgres::client_program("pg_dump").unwrap(),
        )
        .env(
            "APP_WEB_BACKUP_PG_RESTORE",
            local_servers::Postgres::client_program("pg_restore").unwrap(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, port)
}

#[test]
fn every_metric_the_rules_and_dashboards_name_is_scraped_from_a_live_stack() {
    let folder = tempfile::tempdir().unwrap();
    let secrets = folder.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    let postgres = support::stack_postgres(&secrets);
    let redis_password = "redis-password-from-a-secret";
    let redis = Redis::start_with(RedisOptions {
        password: Some(redis_password.into()),
        ..RedisOptions::default()
    })
    .expect("start Redis");
    std::fs::write(secrets.join("redis_password"), redis_password).unwrap();

    // app-web on the stack's roles, with a low rate limit so that 429s are counted.
    let database_url = format!("postgres://app@127.0.0.1:{}/app", postgres.port);
    let app = RunningBinary::start(&[
        "--database-url",
        &database_url,
        "--database-password-file",
        secrets.join("app_db_password").to_str().unwrap(),
        "--migrate-on-start",
        "--redis-url",
        &redis.url(),
        "--redis-password-file",
        secrets.join("redis_password").to_str().unwrap(),
        "--rate-limit-per-minute",
        "8",
    ]);
    let (created_status, created) = support::http(
        "POST",
        &app.url("/api/notes"),
        &[("content-type", "application/json")],
        Some(r#"{"title":"monitored","body":"a note"}"#),
    );
    assert_eq!(created_status, 201, "{created}");
    let id = serde_json::from_str::<serde_json::Value>(&created).unwrap()["id"].clone();
    let note = app.url(&format!("/api/notes/{}", id.as_str().unwrap()));
    // A miss, then hits, then the limit.
    let statuses: Vec<u16> = (0..10).map(|_| support::http_get(&note).0).collect();
    assert!(
        statuses.contains(&200) && statuses.contains(&429),
        "{statuses:?}"
    );

    // An update check, which the desktop-releases dashboard counts.
    let (status, _) = support::http_get(&app.url("/api/updates/stable/linux/x86_64/0.1.4"));
    assert_eq!(status, 204);
    let proxy = Proxy::start_for(app.address, "localhost", ("20r/s", 40), "");
    let (backup, backup_port) = backup_schedule(&postgres, &secrets, folder.path());
    let backup = local_servers::KillOnDrop(backup);

    let postgres_exporter = Exporter::start(
        "prometheus-postgres-exporter",
        &["--web.listen-address=127.0.0.1:{port}"],
        &[
            (
                "DATA_SOURCE_URI",
                &format!("127.0.0.1:{}/postgres?sslmode=disable", postgres.port),
            ),
            ("DATA_SOURCE_USER", "monitor"),
            (
                "DATA_SOURCE_PASS_FILE",
                secrets.join("monitor_db_password").to_str().unwrap(),
            ),
        ],
        "/metrics",
    )
    .expect("start postgres-exporter");
    // redis-exporter reads a map from address to password, as `cargo xtask docker secrets`
    // writes it.
    let redis_address = format!("redis://127.0.0.1:{}", redis.port);
    let passwords = secrets.join("redis_exporter_passwords");
    std::fs::write(
        &passwords,
        serde_json::json!({ redis_address.as_str(): redis_password }).to_string(),
    )
    .unwrap();
    let redis_exporter = Exporter::start(
        "prometheus-redis-exporter",
        &[
            "-web.listen-address=127.0.0.1:{port}",
            "-redis.addr",
            &redis_address,
            "-redis.password-file",
            passwords.to_str().unwrap(),
        ],
        &[],
        "/metrics",
    )
    .expect("start redis-exporter");
    let nginx_exporter = Exporter::start(
        "prometheus-nginx-exporter",
        &[
            "-web.listen-address=127.0.0.1:{port}",
            &format!(
                "-nginx.scrape-uri=http://127.0.0.1:{}/stub_status",
                proxy.status
            ),
        ],
        &[],
        "/metrics",
    )
    .expect("start nginx-exporter");
    let node_exporter = Exporter::start(
        "prometheus-node-exporter",
        &["--web.listen-address=127.0.0.1:{port}"],
        &[],
        "/metrics",
    )
    .expect("start node-exporter");
    let blackbox_modules = blackbox_config(folder.path(), &proxy.certificate());
    let blackbox_exporter = Exporter::start(
        "prometheus-blackbox-exporter",
        &[
            "--web.listen-address=127.0.0.1:{port}",
            &format!("--config.file={}", blackbox_modules.display()),
        ],
        &[],
        "/-/healthy",
    )
    .expect("start blackbox-exporter");

    // The target file the prometheus service writes at start, for this site.
    let blackbox_targets = folder.path().join("blackbox-targets.yml");
    std::fs::write(
        &blackbox_targets,
        format!(
            "- targets: [\"https://localhost:{}/healthz\"]\n",
            proxy.https
        ),
    )
    .unwrap();
    let config = loopback_prometheus_config(
        &[
            ("app-web:8080", app.address.to_string()),
            ("backup:9187", format!("127.0.0.1:{backup_port}")),
            ("postgres-exporter:9187", postgres_exporter.address()),
            ("redis-exporter:9121", redis_exporter.address()),
            ("nginx-exporter:9113", nginx_exporter.address()),
            ("node-exporter:9100", node_exporter.address()),
            ("blackbox-exporter:9115", blackbox_exporter.address()),
        ],
        &blackbox_targets,
    );
    let prometheus = Prometheus::start(&config).expect("start Prometheus");

    // Every job but Prometheus's own and Alertmanager's (not running here) answers, and the
    // backup schedule has finished a backup and a drill.
    let jobs = [
        "app-web",
        "backup",
        "postgres",
        "redis",
        "nginx",
        "node",
        "blackbox-https",
    ];
    let mut last = String::new();
    let all_up = wait_for(Duration::from_secs(120), "every target up", || {
        let up: BTreeMap<String, String> = prometheus
            .query("up")
            .unwrap_or_default()
            .iter()
            .map(|sample| {
                (
                    sample["metric"]["job"].as_str().unwrap_or("").to_owned(),
                    sample["value"][1].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let drilled = prometheus
            .query("app_backup_last_verify_success == 1")
            .is_ok_and(|found| !found.is_empty());
        let probed = prometheus
            .query("probe_success == 1")
            .is_ok_and(|found| !found.is_empty());
        last = format!("up: {up:?}, drilled: {drilled}, probed: {probed}");
        drilled
            && probed
            && jobs
                .iter()
                .all(|job| up.get(*job).map(String::as_str) == Some("1"))
    });
    all_up.unwrap_or_else(|err| {
        panic!(
            "{err:#}\n{last}\nPrometheus:\n{}\npostgres-exporter:\n{}\nblackbox:\n{}",
            prometheus.log(),
            postgres_exporter.log(),
            blackbox_exporter.log()
        )
    });
    // Two more scrapes, so that counters have the two samples rate() needs.
    std::thread::sleep(Duration::from_secs(3));

    // Which job exports each metric name.
    let mut exported: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for sample in prometheus
        .query("count by (__name__, job) ({__name__=~\".+\"})")
        .unwrap()
    {
        exported
            .entry(sample["metric"]["__name__"].as_str().unwrap().to_owned())
            .or_default()
            .insert(sample["metric"]["job"].as_str().unwrap_or("").to_owned());
    }
    let mut missing = Vec::new();
    let mut sources: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (what, expr) in alert_expressions().iter().chain(&dashboard_expressions()) {
        for name in metric_names(expr) {
            match exported.get(&name) {
                Some(jobs) => sources
                    .entry(name)
                    .or_default()
                    .extend(jobs.iter().cloned()),
                None => missing.push(format!("{name} (in {what})")),
            }
        }
    }
    assert!(
        missing.is_empty(),
        "named but not exported by any target: {missing:#?}\nexported: {:?}",
        exported.keys().collect::<Vec<_>>()
    );
    // Each exporter accounts for what its dashboards and alerts need.
    for (job, expected) in [
        ("app-web", "app_web_http_requests_total"),
        ("app-web", "app_web_rate_limited_total"),
        ("backup", "app_backup_last_verify_success"),
        ("postgres", "pg_settings_max_connections"),
        ("redis", "redis_memory_max_bytes"),
        ("nginx", "nginx_connections_active"),
        ("node", "node_filesystem_avail_bytes"),
        ("blackbox-https", "probe_ssl_earliest_cert_expiry"),
    ] {
        assert!(
            sources.get(expected).is_some_and(|jobs| jobs.contains(job)),
            "{expected} comes from {job}: {sources:?}"
        );
    }

    // Every dashboard query evaluates without error, and the alert rules are healthy.
    for (what, expr) in dashboard_expressions() {
        prometheus
            .query(&expr)
            .unwrap_or_else(|err| panic!("{what}: {err:#}"));
    }
    let rules = prometheus.api("/api/v1/rules").unwrap();
    for group in rules["data"]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            assert_ne!(rule["health"], "err", "{rule}");
        }
    }
    // The alerting section names an Alertmanager.
    let alertmanagers = prometheus.api("/api/v1/alertmanagers").unwrap();
    assert_eq!(
        alertmanagers["data"]["activeAlertmanagers"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{alertmanagers}"
    );
    // The self-signed certificate lives seven days, which the 14-day alert must notice.
    let expiring = prometheus
        .query("probe_ssl_earliest_cert_expiry - time() < 14 * 86400")
        .unwrap();
    assert_eq!(expiring.len(), 1, "{expiring:?}");
    drop(backup);
}

/// A loopback HTTP server that answers 200 to every request and hands over each body.
fn webhook_receiver() -> (String, mpsc::Receiver<serde_json::Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/alerts", listener.local_addr().unwrap());
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok() {
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                if let Ok(json) = serde_json::from_slice(&body) {
                    let _ = sender.send(json);
                }
            }
        }
    });
    (url, receiver)
}

/// A loopback SMTP server that accepts every message without authentication or TLS and hands
/// over each message's text.
fn smtp_receiver() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let _ = stream.write_all(b"220 smtp.test ESMTP\r\n");
            let mut message = String::new();
            let mut in_data = false;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        let _ = sender.send(std::mem::take(&mut message));
                        let _ = stream.write_all(b"250 queued\r\n");
                    } else {
                        message.push_str(&line);
                    }
                    continue;
                }
                let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                let answer: &[u8] = match verb.as_str() {
                    "EHLO" => b"250-smtp.test\r\n250 8BITMIME\r\n",
                    "DATA" => {
                        in_data = true;
                        b"354 go ahead\r\n"
                    }
                    "QUIT" => {
                        let _ = stream.write_all(b"221 bye\r\n");
                        break;
                    }
                    _ => b"250 ok\r\n",
                };
                let _ = stream.write_all(answer);
            }
        }
    });
    (address, receiver)
}

/// docker/alertmanager/render.sh OUT with `env` (and nothing else from the environment).
fn render_alertmanager(out: &Path, env: &[(&str, &str)]) -> std::process::Output {
    Command::new("sh")
        .arg(docker_dir().join("alertmanager/render.sh"))
        .arg(out)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn render_refuses_a_configuration_without_a_usable_receiver() {
    let folder = tempfile::tempdir().unwrap();
    let out = folder.path().join("alertmanager.yml");
    let url_file = folder.path().join("alert_webhook_url");
    // The webhook URL file's content, the settings, and what the refusal must name.
    let cases = [
        ("nothing", vec![], "no receiver"),
        (
            "ftp://hooks.test/a",
            vec![("ALERT_WEBHOOK_URL_FILE", url_file.to_str().unwrap())],
            "http:// or https://",
        ),
        (
            "",
            vec![
                ("ALERT_EMAIL_TO", "ops@app.test"),
                ("ALERT_EMAIL_FROM", "am@app.test"),
            ],
            "ALERT_SMTP_SMARTHOST",
        ),
    ];
    for (url, env, expected) in cases {
        std::fs::write(&url_file, url).unwrap();
        let output = render_alertmanager(&out, &env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{url}: {stderr}");
        assert!(stderr.contains(expected), "{url}: {stderr}");
        let left: Vec<_> = std::fs::read_dir(folder.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("alert_webhook_url")],
            "nothing half-written"
        );
    }
}

#[test]
fn alertmanager_groups_inhibits_and_delivers_to_the_webhook_and_by_mail() {
    let folder = tempfile::tempdir().unwrap();
    let (webhook_url, webhooks) = webhook_receiver();
    let (smarthost, mails) = smtp_receiver();
    let url_file = folder.path().join("alert_webhook_url");
    std::fs::write(&url_file, format!("{webhook_url}\n")).unwrap();
    let config = folder.path().join("alertmanager.yml");
    let rendered = render_alertmanager(
        &config,
        &[
            ("ALERT_WEBHOOK_URL_FILE", url_file.to_str().unwrap()),
            ("ALERT_EMAIL_TO", "ops@app.test"),
            ("ALERT_EMAIL_FROM", "alertmanager@app.test"),
            ("ALERT_SMTP_SMARTHOST", &smarthost),
            // The loopback SMTP server speaks no TLS; the shipped default requires it.
            ("ALERT_SMTP_REQUIRE_TLS", "false"),
        ],
    );
    assert_success(&rendered, "render.sh");
    let checked = Command::new("amtool")
        .args(["check-config"])
        .arg(&config)
        .output()
        .expect("run amtool (Debian's prometheus-alertmanager; `cargo xtask setup` installs it)");
    assert_success(&checked, "amtool check-config");

    let alertmanager = Exporter::start(
        "prometheus-alertmanager",
        &[
            &format!("--config.file={}", config.display()),
            "--storage.path={dir}/data",
            "--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        &[],
        "/-/ready",
    )
    .expect("start Alertmanager");
    let url = format!("--alertmanager.url=http://{}", alertmanager.address());
    for labels in [
        [
            "alertname=TargetDown",
            "job=nginx",
            "instance=a",
            "severity=critical",
        ],
        [
            "alertname=TargetDown",
            "job=redis",
            "instance=b",
            "severity=critical",
        ],
        [
            "alertname=PostgresDown",
            "job=postgres",
            "instance=c",
            "severity=critical",
        ],
        [
            "alertname=PostgresConnectionsNearMax",
            "job=postgres",
            "instance=c",
            "severity=warning",
        ],
    ] {
        let added = Command::new("amtool")
            .args(["alert", "add", &url])
            .args(labels)
            .arg("--annotation=summary=raised by the test")
            .output()
            .unwrap();
        assert_success(&added, "amtool alert add");
    }

    // group_wait is 30 s: one notification per alert name, TargetDown's listing both targets,
    // and none for the inhibited PostgresConnectionsNearMax.
    let started = Instant::now();
    let mut groups: BTreeMap<String, usize> = BTreeMap::new();
    // Each notification under its group's alert name, with how many alerts it lists.
    fn record(groups: &mut BTreeMap<String, usize>, body: serde_json::Value) {
        groups.insert(
            body["groupLabels"]["alertname"]
                .as_str()
                .unwrap()
                .to_owned(),
            body["alerts"].as_array().unwrap().len(),
        );
    }
    while groups.len() < 2 && started.elapsed() < Duration::from_secs(90) {
        if let Ok(body) = webhooks.recv_timeout(Duration::from_secs(1)) {
            record(&mut groups, body);
        }
    }
    // Anything else would arrive with these, at the end of the same group_wait.
    while let Ok(body) = webhooks.recv_timeout(Duration::from_secs(5)) {
        record(&mut groups, body);
    }
    assert_eq!(
        groups,
        BTreeMap::from([("PostgresDown".to_owned(), 1), ("TargetDown".to_owned(), 2)]),
        "Alertmanager's log:\n{}",
        alertmanager.log()
    );
    let mut subjects = Vec::new();
    while let Ok(message) = mails.recv_timeout(Duration::from_secs(10)) {
        let subject = message
            .lines()
            .find_map(|line| line.strip_prefix("Subject: "))
            .unwrap_or("")
            .to_owned();
        assert!(message.contains("To: ops@app.test"), "{message}");
        subjects.push(subject);
        if subjects.len() == 2 {
            break;
        }
    }
    subjects.sort();
    assert_eq!(subjects.len(), 2, "{subjects:?}\n{}", alertmanager.log());
    assert!(subjects[0].contains("PostgresDown"), "{subjects:?}");
    assert!(subjects[1].contains("TargetDown"), "{subjects:?}");
}
