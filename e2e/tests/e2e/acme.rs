//! A real ACME flow: Pebble (Let's Encrypt's test server) and certbot, run with the project's
//! nginx/certbot/cli.ini, issue a certificate for app.test through the HTTP-01 webroot the
//! project's nginx serves; the project's deploy hook links it and reloads nginx, which then
//! serves a chain that verifies against Pebble's root; a forced renewal replaces it while
//! requests keep being answered.

use e2e as support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use local_servers::Pebble;
use support::RunningBinary;
use support::proxy::{Proxy, SERVER_NAME, curl, nginx_dir};

/// nginx/certbot/run.sh, the stack's certbot service, once round its loop, with certbot's
/// state in `state` and `extra` passed on to certbot; its output. The stack's twice-daily
/// renewal keeps certbot's random delay; here it would only wait.
fn run_certbot_service(state: &Path, pebble: &Pebble, proxy: &Proxy, extra: &[&str]) -> String {
    let output = Command::new("sh")
        .arg(nginx_dir().join("certbot/run.sh"))
        .args(extra)
        .arg("--work-dir")
        .arg(state.join("work"))
        .arg("--logs-dir")
        .arg(state.join("logs"))
        .arg("--no-random-sleep-on-renew")
        .env("CERTBOT_DOMAINS", SERVER_NAME)
        .env("CERTBOT_EMAIL", "ops@app.test")
        .env("CERTBOT_SERVER", pebble.directory())
        .env("CERTBOT_CONFIG_DIR", state.join("config"))
        .env("CERTBOT_HEARTBEAT", state.join("heartbeat"))
        .env("CERTBOT_ONCE", "1")
        .env("ACME_ROOT", proxy.acme_root())
        // certbot must trust Pebble's API; the certificates it issues chain to another root.
        .env("REQUESTS_CA_BUNDLE", pebble.api_certificate())
        .env("NGINX_CERT_DIR", proxy.cert_dir())
        .env("NGINX_PID_FILE", proxy.nginx.pid_file())
        .output()
        .expect("run nginx/certbot/run.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "run.sh failed:\n{text}\nPebble:\n{}",
        pebble.log()
    );
    assert!(
        state.join("heartbeat").exists(),
        "run.sh wrote no heartbeat"
    );
    text
}

/// The serial number of the certificate nginx serves for app.test.
fn served_serial(proxy: &Proxy) -> String {
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{} -servername {SERVER_NAME} </dev/null 2>/dev/null | openssl x509 -noout -serial",
            proxy.https
        ))
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn wait_until(limit: Duration, what: &str, done: impl FnMut() -> bool) {
    local_servers::wait_for(limit, what, done).unwrap();
}

/// app-web behind nginx with a certificate Pebble issued through certbot.
struct Issued {
    proxy: Proxy,
    pebble: Pebble,
    state: tempfile::TempDir,
    root: std::path::PathBuf,
    serial: String,
    service_output: String,
    _app: RunningBinary,
}

/// Let's Encrypt's certificates are moving to 45 days.
const LIFETIME_DAYS: u32 = 45;

fn issue(lifetime_days: u32) -> Issued {
    let app = RunningBinary::start(&[]);
    let proxy = Proxy::start(app.address);
    let pebble = Pebble::start(
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        proxy.http,
        lifetime_days,
    )
    .expect("start Pebble");
    let state = tempfile::tempdir().unwrap();
    let root = state.path().join("pebble-root.pem");
    pebble.write_root_certificate(&root).unwrap();
    let root_arg = root.to_str().unwrap().to_owned();
    let trusting_pebble = ["--cacert", root_arg.as_str()];

    // Before: nginx runs on its self-signed certificate, which Pebble's root does not sign.
    let before = curl(&proxy, &trusting_pebble, &proxy.url("/healthz"));
    assert_eq!(before.exit, 60, "{before:?}");
    let self_signed = served_serial(&proxy);

    // The stack's certbot service: the first certificate, then one renewal attempt, which
    // renews only a certificate with 30 days or less left.
    let service = run_certbot_service(state.path(), &pebble, &proxy, &[]);
    assert!(
        service.contains("Successfully received certificate"),
        "{service}"
    );
    let renewed_at_once = service.contains("Renewing an existing certificate");
    let left_alone = service.contains("not yet due for renewal");
    assert!(
        renewed_at_once == (lifetime_days <= 30) && left_alone == (lifetime_days > 30),
        "{lifetime_days}-day certificate: {service}"
    );
    wait_until(
        Duration::from_secs(10),
        "nginx to serve the issued certificate",
        || curl(&proxy, &trusting_pebble, &proxy.url("/healthz")).status == 200,
    );
    let serial = served_serial(&proxy);
    assert_ne!(serial, self_signed);
    Issued {
        proxy,
        pebble,
        state,
        root,
        serial,
        service_output: service,
        _app: app,
    }
}

#[test]
fn certbot_issues_and_renews_through_the_nginx_webroot() {
    let Issued {
        proxy,
        pebble,
        state,
        root,
        serial: issued,
        _app,
        ..
    } = issue(LIFETIME_DAYS);

    // Renewal while a client keeps asking: every request is answered.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let load = {
        let (stop, answered, failures) = (stop.clone(), answered.clone(), failures.clone());
        let (https, root) = (proxy.https, root.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let output = Command::new("curl")
                    .args([
                        "--silent",
                        "--show-error",
                        "--max-time",
                        "5",
                        "--output",
                        "/dev/null",
                    ])
                    .args(["--write-out", "%{http_code}", "--cacert"])
                    .arg(&root)
                    .arg("--resolve")
                    .arg(format!("{SERVER_NAME}:{https}:127.0.0.1"))
                    .arg(format!("https://{SERVER_NAME}:{https}/healthz"))
                    .output()
                    .unwrap();
                // Ten a second: within nginx's per-client rate, so every answer should be 200.
                std::thread::sleep(Duration::from_millis(100));
                if String::from_utf8_lossy(&output.stdout) == "200" {
                    answered.fetch_add(1, Ordering::SeqCst);
                } else {
                    failures.lock().unwrap().push(format!(
                        "{} {}",
                        String::from_utf8_lossy(&output.stdout),
                        String::from_utf8_lossy(&output.stderr)
                    ));
                }
            }
        })
    };
    wait_until(Duration::from_secs(10), "the client to get going", || {
        answered.load(Ordering::SeqCst) >= 5
    });
    // The certbot service's renewal, forced.
    let renewed_output = run_certbot_service(state.path(), &pebble, &proxy, &["--force-renewal"]);
    assert!(
        renewed_output.contains("deploy-hook: nginx now serves")
            || renewed_output.contains("deploy-hook"),
        "the deploy hook did not run on renewal"
    );
    wait_until(
        Duration::from_secs(10),
        "nginx to serve the renewed certificate",
        || served_serial(&proxy) != issued,
    );
    let after_renewal = answered.load(Ordering::SeqCst);
    wait_until(
        Duration::from_secs(10),
        "requests after the renewal",
        || answered.load(Ordering::SeqCst) >= after_renewal + 5,
    );
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during the renewal: {failures:?}",
        failures.len(),
        answered.load(Ordering::SeqCst) + failures.len()
    );
}

#[test]
fn testssl_grades_the_issued_setup_a_plus_with_nothing_of_medium_severity() {
    // Let's Encrypt's 90-day certificates, still its default: testssl.sh warns (at medium
    // severity) about any certificate with less than 60 days left, which a 45-day one always has.
    let issued = issue(90);
    let json = local_servers::testssl::run(
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        SERVER_NAME,
        issued.proxy.https,
        &issued.root,
    )
    .expect("run testssl.sh");
    let findings: Vec<serde_json::Value> = serde_json::from_str(&json).expect("testssl.sh JSON");
    let field = |id: &str| {
        findings
            .iter()
            .find(|finding| finding["id"] == id)
            .map(|finding| finding["finding"].as_str().unwrap_or("").to_owned())
            .unwrap_or_else(|| panic!("testssl.sh reported no {id}"))
    };
    let serious: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|finding| {
            matches!(
                finding["severity"].as_str(),
                Some("MEDIUM" | "HIGH" | "CRITICAL")
            )
        })
        .collect();
    eprintln!(
        "testssl.sh: grade {}, {} findings, {} of medium severity or above",
        field("overall_grade"),
        findings.len(),
        serious.len()
    );
    let described: Vec<String> = serious
        .iter()
        .map(|finding| {
            format!(
                "{} {}: {}",
                finding["severity"], finding["id"], finding["finding"]
            )
        })
        .collect();
    assert!(serious.is_empty(), "{described:#?}");
    for protocol in ["SSLv2", "SSLv3", "TLS1", "TLS1_1"] {
        assert!(
            field(protocol).starts_with("not offered"),
            "{protocol}: {}",
            field(protocol)
        );
    }
    for protocol in ["TLS1_2", "TLS1_3"] {
        assert!(
            field(protocol).starts_with("offered"),
            "{protocol}: {}",
            field(protocol)
        );
    }
    assert_eq!(field("overall_grade"), "A+");
}

/// The stack's twice-daily `certbot renew` (nginx/certbot/run.sh's loop, once round): a
/// 45-day certificate is left alone while more than 30 days remain, and one with 30 days or
/// less is renewed at once, so a 45-day certificate is renewed with 30 days to spare.
#[test]
fn the_twice_daily_renewal_renews_once_30_days_or_less_remain() {
    let fresh = issue(LIFETIME_DAYS);
    assert!(
        fresh.service_output.contains("not yet due for renewal"),
        "{}",
        fresh.service_output
    );
    drop(fresh);
    let due = issue(29);
    assert!(
        due.service_output
            .contains("Renewing an existing certificate")
            && due.service_output.contains("deploy-hook: nginx now serves"),
        "{}",
        due.service_output
    );
}
