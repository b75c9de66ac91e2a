//! `cargo xtask smoke` against real servers: app-web on PostgreSQL and Redis directly (plain
//! HTTP) and through the project's nginx over TLS with its test certificate, where it also
//! checks TLS and the security headers; a wrong expected version and a database that is down
//! each fail the check, naming what is wrong.

use e2e as support;

use support::proxy::{Proxy, SERVER_NAME};
use support::{Postgres, Redis, RunningBinary, assert_success, xtask};

fn failure(output: &std::process::Output) -> String {
    assert!(!output.status.success(), "the smoke test passed");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_smoke_test_passes_a_healthy_site_and_names_what_is_wrong_otherwise() {
    let mut postgres = Postgres::start().expect("start PostgreSQL");
    let redis = Redis::start().expect("start Redis");
    let app = RunningBinary::start_on(&postgres, Some(&redis), &[]);
    let direct = app.url("");
    let version = env!("CARGO_PKG_VERSION");

    let passed = xtask(
        &["smoke", "--url", &direct, "--expect-version", version],
        &[],
    );
    assert_success(&passed, "cargo xtask smoke on app-web");
    let report = String::from_utf8_lossy(&passed.stderr);
    for step in ["readiness: ok", "version: ok", "API round trip: ok"] {
        assert!(report.contains(step), "{step:?} missing:\n{report}");
    }
    // Without nginx in front there are no security headers, and asking for them fails.
    let bare = xtask(&["smoke", "--url", &direct, "--expect-headers"], &[]);
    assert!(failure(&bare).contains("lacks the headers"));

    // Through nginx over TLS: the certificate checked against the test's own, TLS 1.1 refused,
    // every security header there.
    let proxy = Proxy::start(app.address);
    let resolve = format!("{SERVER_NAME}:{}:127.0.0.1", proxy.https);
    let certificate = proxy.certificate();
    let public = proxy.url("");
    let tls = xtask(
        &[
            "smoke",
            "--url",
            &public,
            "--cacert",
            certificate.to_str().unwrap(),
            "--resolve",
            &resolve,
        ],
        &[],
    );
    assert_success(&tls, "cargo xtask smoke through nginx");
    let report = String::from_utf8_lossy(&tls.stderr);
    for step in [
        "TLS 1.2 or newer, certificate valid: ok",
        "security headers: ok",
    ] {
        assert!(report.contains(step), "{step:?} missing:\n{report}");
    }
    // The system's trust store does not know the test certificate.
    let untrusted = xtask(&["smoke", "--url", &public, "--resolve", &resolve], &[]);
    assert!(failure(&untrusted).contains("readiness"));

    let wrong = xtask(
        &["smoke", "--url", &direct, "--expect-version", "9.9.9"],
        &[],
    );
    assert!(failure(&wrong).contains("not 9.9.9"));

    postgres.stop();
    let down = xtask(&["smoke", "--url", &direct], &[]);
    assert!(failure(&down).contains("/readyz answered 503"));
}
