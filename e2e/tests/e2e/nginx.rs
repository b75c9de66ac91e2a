//! Debian's nginx running the project's configuration (nginx/, rendered the way every host
//! renders it) in front of the real app-web binary, over TLS with a certificate made here:
//! security headers on every status, rate limits per client address, request filtering,
//! request ids, compression and the TLS versions offered. Everything on loopback; a second
//! client is a second loopback address.

use e2e as support;

use support::proxy::{Answer, Proxy, SERVER_NAME, burst, curl};
use support::{Postgres, Redis, RunningBinary};

/// Every header nginx/snippets/security-headers.conf sets, once, with the snippet's value.
fn assert_security_headers(answer: &Answer, what: &str) {
    for header in local_servers::nginx::security_headers() {
        assert_eq!(
            answer.count(&header.name),
            1,
            "{what}: {} once in {:?}",
            header.name,
            answer.headers
        );
        if let Some(value) = &header.value {
            assert_eq!(
                answer.header(&header.name),
                Some(value.as_str()),
                "{what}: {}",
                header.name
            );
        }
    }
    assert_eq!(
        answer.header("server"),
        Some("nginx"),
        "{what}: no version in Server"
    );
}

#[test]
fn security_headers_are_on_every_status() {
    let app = RunningBinary::start(&[]);
    let proxy = Proxy::start(app.address);

    let ok = curl(&proxy, &[], &proxy.url("/healthz"));
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_security_headers(&ok, "200");

    let dotfile = curl(&proxy, &[], &proxy.url("/.env"));
    assert_eq!(dotfile.status, 404);
    assert_security_headers(&dotfile, "404");

    // app-web serves its metrics to the internal network only; nginx never passes them on.
    let metrics = curl(&proxy, &[], &proxy.url("/metrics"));
    assert_eq!(metrics.status, 404, "{metrics:?}");
    assert_security_headers(&metrics, "404 for /metrics");

    let big = "x".repeat(100 * 1024);
    let too_large = curl(
        &proxy,
        &["--header", "content-type: application/json", "--data", &big],
        &proxy.url("/api/notes"),
    );
    assert_eq!(too_large.status, 413);
    assert_security_headers(&too_large, "413");

    let method = curl(&proxy, &["--request", "TRACE"], &proxy.url("/"));
    assert_eq!(method.status, 405);
    assert_security_headers(&method, "405");

    let answers = burst(&proxy, &proxy.url("/api/info"), 100);
    let limited = answers
        .iter()
        .find(|answer| answer.status == 429)
        .expect("a burst of 100 requests is limited");
    assert_security_headers(limited, "429");

    let redirect = curl(
        &proxy,
        &[],
        &format!("http://{SERVER_NAME}:{}/api/info?x=1", proxy.http),
    );
    assert_eq!(redirect.status, 308);
    assert_eq!(
        redirect.header("location"),
        Some(format!("https://{SERVER_NAME}:{}/api/info?x=1", proxy.https).as_str()),
        "the redirect keeps the path and query"
    );

    drop(app);
    // From another address: this one has used up its burst above.
    let bad_gateway = curl(
        &proxy,
        &["--interface", "127.0.0.3"],
        &proxy.url("/healthz"),
    );
    assert_eq!(bad_gateway.status, 502);
    assert_security_headers(&bad_gateway, "502");
}

#[test]
fn a_burst_from_one_client_is_limited_while_another_is_served() {
    let app = RunningBinary::start(&[]);
    let proxy = Proxy::start(app.address);
    let statuses: Vec<u16> = burst(&proxy, &proxy.url("/api/info"), 100)
        .iter()
        .map(|answer| answer.status)
        .collect();
    // The second client, from another loopback address, is within its limit.
    for _ in 0..5 {
        let other = curl(
            &proxy,
            &["--interface", "127.0.0.2"],
            &proxy.url("/api/info"),
        );
        assert_eq!(
            other.status, 200,
            "the second client was limited: {other:?}"
        );
    }
    let allowed = statuses.iter().filter(|status| **status == 200).count();
    let limited = statuses.iter().filter(|status| **status == 429).count();
    assert_eq!(allowed + limited, 100, "{statuses:?}");
    assert!(
        allowed >= 41,
        "the burst of 40 was not allowed: {statuses:?}"
    );
    assert!(limited > 0, "nothing was limited: {statuses:?}");
    assert_eq!(statuses[0], 200);
}

#[test]
fn unknown_hosts_are_dropped_and_acme_challenges_are_served_over_http() {
    let app = RunningBinary::start(&[]);
    let proxy = Proxy::start(app.address);

    let unknown_http = curl(
        &proxy,
        &["--header", "Host: other.test"],
        &format!("http://127.0.0.1:{}/", proxy.http),
    );
    // 444: the connection closes without a byte of answer (curl: empty reply, or reset).
    assert!(
        [52, 56].contains(&unknown_http.exit) && unknown_http.status == 0,
        "expected no answer: {unknown_http:?}"
    );
    let unknown_tls = curl(
        &proxy,
        &[
            "--resolve",
            &format!("other.test:{}:127.0.0.1", proxy.https),
        ],
        &format!("https://other.test:{}/", proxy.https),
    );
    assert_eq!(
        unknown_tls.exit, 35,
        "expected a refused handshake: {unknown_tls:?}"
    );

    let token = "test-token_123";
    std::fs::write(
        proxy
            .folder
            .path()
            .join("acme/.well-known/acme-challenge")
            .join(token),
        "key-authorization",
    )
    .unwrap();
    let challenge = curl(
        &proxy,
        &[],
        &format!(
            "http://{SERVER_NAME}:{}/.well-known/acme-challenge/{token}",
            proxy.http
        ),
    );
    assert_eq!(
        challenge.status,
        200,
        "{challenge:?}\n{}",
        proxy.nginx.log()
    );
}

#[test]
fn request_ids_pass_through_or_are_made_and_tls_is_1_2_or_1_3_over_http2() {
    let app = RunningBinary::start(&[]);
    let proxy = Proxy::start(app.address);

    let given = curl(
        &proxy,
        &["--header", "X-Request-ID: trace-abc.123"],
        &proxy.url("/api/info"),
    );
    assert_eq!(given.header("x-request-id"), Some("trace-abc.123"));
    // The access log is JSON lines on stdout, carrying the same id. nginx writes the line
    // once the answer is sent, so it may come a moment after curl is done.
    let mut logged = None;
    let found = local_servers::wait_for(
        std::time::Duration::from_secs(5),
        "the JSON access log line",
        || {
            logged = proxy
                .nginx
                .access_log()
                .lines()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .find(|record| record["request_id"] == "trace-abc.123");
            logged.is_some()
        },
    );
    assert!(
        found.is_ok(),
        "no JSON access log line:\n{}",
        proxy.nginx.access_log()
    );
    let logged = logged.unwrap();
    assert_eq!(logged["method"], "GET");
    assert_eq!(logged["uri"], "/api/info");
    assert_eq!(logged["status"], 200);
    assert_eq!(logged["remote_addr"], "127.0.0.1");
    let made = curl(&proxy, &[], &proxy.url("/api/info"));
    let id = made.header("x-request-id").unwrap();
    assert_eq!(id.len(), 32, "{id}");
    let unsafe_id = curl(
        &proxy,
        &["--header", "X-Request-ID: a b<c>"],
        &proxy.url("/api/info"),
    );
    assert_ne!(unsafe_id.header("x-request-id"), Some("a b<c>"));

    assert_eq!(made.http_version, "2");
    let gzip = curl(
        &proxy,
        &["--header", "Accept-Encoding: gzip"],
        &proxy.url("/app.js"),
    );
    assert_eq!(gzip.header("content-encoding"), Some("gzip"), "{gzip:?}");
    // Pages are never compressed (BREACH), whatever their size.
    for page in ["/", "/index.html"] {
        let plain = curl(
            &proxy,
            &["--header", "Accept-Encoding: gzip"],
            &proxy.url(page),
        );
        assert_eq!(plain.status, 200, "{page}: {plain:?}");
        assert_eq!(plain.header("content-encoding"), None, "{page}: {plain:?}");
        assert!(plain.header("content-security-policy").is_some(), "{page}");
    }

    for (flags, accepted) in [
        (["--tlsv1.2", "--tls-max", "1.2"], true),
        (["--tlsv1.3", "--tls-max", "1.3"], true),
        (["--tlsv1.1", "--tls-max", "1.1"], false),
    ] {
        let answer = curl(&proxy, &flags, &proxy.url("/healthz"));
        assert_eq!(answer.status == 200, accepted, "{flags:?}: {answer:?}");
    }
}

/// The nginx image renders the template at start with nginx/docker-entrypoint.sh; it must
/// produce what `cargo xtask nginx render` and these tests produce.
#[test]
fn the_image_entrypoint_renders_the_template_as_xtask_does() {
    let values: Vec<(String, String)> = [
        "SERVER_NAME=app.example.org",
        "HTTP_LISTEN=80",
        "HTTPS_LISTEN=443",
        "STATUS_LISTEN=8081",
        "HTTPS_ORIGIN=https://app.example.org",
        "UPSTREAM=app-web:8080",
        "RATE_LIMIT=20r/s",
        "RATE_BURST=40",
        "CRASH_MAX_MIB=8",
        "SYMBOLS_MAX_MIB=1024",
        "CERTIFICATE=/etc/nginx/certs/current/fullchain.pem",
        "CERTIFICATE_KEY=/etc/nginx/certs/current/privkey.pem",
        "ACME_ROOT=/var/www/acme",
        "RUNTIME_DIR=/run/nginx",
    ]
    .iter()
    .map(|pair| {
        let (name, value) = pair.split_once('=').unwrap();
        (format!("NGINX_{name}"), value.to_owned())
    })
    .collect();
    let out = tempfile::tempdir().unwrap();
    let by_xtask = out.path().join("xtask");
    local_servers::nginx::render(
        &support::proxy::nginx_dir(),
        &by_xtask,
        &values.iter().cloned().collect(),
    )
    .unwrap();
    let by_entrypoint = out.path().join("entrypoint");
    let status = std::process::Command::new("sh")
        .arg(support::proxy::nginx_dir().join("docker-entrypoint.sh"))
        .arg("render")
        .arg(&by_entrypoint)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(values.iter().map(|(name, value)| (name, value)))
        .status()
        .unwrap();
    assert!(status.success());
    for file in [
        "nginx.conf",
        "snippets/security-headers.conf",
        "snippets/proxy-to-app-web.conf",
    ] {
        assert_eq!(
            std::fs::read_to_string(by_entrypoint.join(file)).unwrap(),
            std::fs::read_to_string(by_xtask.join(file)).unwrap(),
            "{file}"
        );
    }

    let missing = std::process::Command::new("sh")
        .arg(support::proxy::nginx_dir().join("docker-entrypoint.sh"))
        .arg("render")
        .arg(out.path().join("incomplete"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("NGINX_SERVER_NAME", "app.example.org")
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("NGINX_UPSTREAM"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );

    // The switch `cargo xtask deploy` makes takes HOST:PORT only: anything that could add a
    // directive to the configuration is refused before it is written.
    for address in [
        "10.0.0.5:8080;error_log /tmp/x",
        "10.0.0.5",
        "a b:80",
        ":8080",
    ] {
        let refused = std::process::Command::new("sh")
            .arg(support::proxy::nginx_dir().join("docker-entrypoint.sh"))
            .args(["upstream", address])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("NGINX_RUNTIME_DIR", out.path())
            .env("NGINX_UPSTREAM", "app-web:8080")
            .output()
            .unwrap();
        assert_eq!(refused.status.code(), Some(2), "{address}");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("is not HOST:PORT"),
            "{address}: {}",
            String::from_utf8_lossy(&refused.stderr)
        );
    }
}

#[test]
fn fingerprinted_assets_are_cached_for_a_year_and_nothing_else_is() {
    let ui = tempfile::tempdir().unwrap();
    std::fs::write(
        ui.path().join("index.html"),
        "<!doctype html><title>t</title>",
    )
    .unwrap();
    std::fs::write(ui.path().join("app.0123abcd.js"), "console.log(1);\n").unwrap();
    let app = RunningBinary::start(&["--ui-dir", ui.path().to_str().unwrap()]);
    let proxy = Proxy::start(app.address);

    let asset = curl(&proxy, &[], &proxy.url("/app.0123abcd.js"));
    assert_eq!(asset.status, 200, "{asset:?}");
    assert_eq!(
        asset.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_security_headers(&asset, "asset");

    let missing = curl(&proxy, &[], &proxy.url("/app.fedcba98.js"));
    assert_eq!(missing.status, 404);
    assert_ne!(
        missing.header("cache-control"),
        Some("public, max-age=31536000, immutable"),
        "a missing asset must not be cached for a year"
    );
    let page = curl(&proxy, &[], &proxy.url("/"));
    assert_ne!(
        page.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
}

/// One client's request from `source` (a loopback address of its own) with `extra` curl flags.
fn from(proxy: &Proxy, source: &str, extra: &[&str], path: &str) -> Answer {
    let mut args = vec!["--interface", source];
    args.extend_from_slice(extra);
    curl(proxy, &args, &proxy.url(path))
}

/// The shipped stack's setting: app-web trusts the forwarded address from its nginx only.
#[test]
fn clients_behind_nginx_get_buckets_and_user_hashes_of_their_own() {
    let postgres = Postgres::start().expect("start PostgreSQL");
    let redis = Redis::start().expect("start Redis");
    let app = RunningBinary::start_on(
        &postgres,
        Some(&redis),
        &[
            "--trusted-proxies",
            "127.0.0.1",
            "--rate-limit-per-minute",
            "20",
        ],
    );
    let proxy = Proxy::start(app.address);
    // app-web counts in fixed one-minute windows: start early in one, so the whole test falls
    // inside it.
    let into_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if into_minute > 40 {
        std::thread::sleep(std::time::Duration::from_secs(61 - into_minute));
    }
    let busy = "127.0.0.2";
    let other = "127.0.0.3";

    // The busy client uses up its 20 notes requests a minute (nginx's burst of 40 lets them
    // through); app-web's 429 is JSON, nginx's would be HTML.
    let statuses: Vec<u16> = (0..24)
        .map(|_| from(&proxy, busy, &[], "/api/notes").status)
        .collect();
    assert_eq!(&statuses[..20], &[200; 20], "{statuses:?}");
    assert_eq!(&statuses[20..], &[429; 4], "{statuses:?}");
    let refused = from(&proxy, busy, &[], "/api/notes");
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("content-type"), Some("application/json"));

    // Another address is served.
    let served = from(&proxy, other, &[], "/api/notes");
    assert_eq!(
        served.status, 200,
        "the other client shares the busy one's bucket: {served:?}"
    );

    // Headers of the busy client's own cannot move or reset its count.
    for spoof in [
        "x-real-ip: 127.0.0.9",
        "x-forwarded-for: 127.0.0.9",
        "x-forwarded-for: 127.0.0.3",
    ] {
        let answer = from(&proxy, busy, &["--header", spoof], "/api/notes");
        assert_eq!(answer.status, 429, "{spoof} changed the count: {answer:?}");
    }

    // Events are a bucket of their own: the busy client's notes do not stop its analytics.
    // Each client's batch is hashed as its own user.
    for (source, session) in [
        (busy, "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"),
        (other, "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0"),
    ] {
        let batch = format!(
            r#"{{"app":"app-desktop","session_id":"{session}","app_version":"1.0.0","os":"linux","locale":"en","events":[{{"name":"app_started"}}]}}"#
        );
        let answer = from(
            &proxy,
            source,
            &[
                "--header",
                "content-type: application/json",
                "--header",
                "user-agent: SameAgent/1.0",
                "--data",
                &batch,
            ],
            "/api/events",
        );
        assert_eq!(answer.status, 202, "{source}: {answer:?}");
    }
    let hashes = postgres
        .psql("SELECT count(DISTINCT user_hash) FROM analytics_events")
        .unwrap();
    assert_eq!(
        hashes.trim(),
        "2",
        "two clients with the same user agent are two users"
    );
}

/// What answered: nginx's own error pages are HTML, app-web answers JSON.
fn answered_by_nginx(answer: &Answer) -> bool {
    answer
        .header("content-type")
        .is_some_and(|value| value.starts_with("text/html"))
}

/// Posts `size` bytes of `content_type` to `path`, from a file (curl streams it).
fn post_bytes(proxy: &Proxy, method: &str, path: &str, content_type: &str, size: usize) -> Answer {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), vec![b'x'; size]).unwrap();
    let data = format!("@{}", file.path().display());
    curl(
        proxy,
        &[
            "--request",
            method,
            "--header",
            &format!("content-type: {content_type}"),
            "--data-binary",
            &data,
        ],
        &proxy.url(path),
    )
}

#[test]
fn one_byte_over_each_routes_limit_stops_at_nginx_and_the_limit_itself_reaches_app_web() {
    use app_web::body_limits;
    let crash_dir = tempfile::tempdir().unwrap();
    let app = RunningBinary::start(&["--crash-dir", crash_dir.path().to_str().unwrap()]);
    let proxy = Proxy::start(app.address);
    let crash_bytes = body_limits::mib(8) as usize;
    for (method, path, content_type, limit) in [
        (
            "POST",
            "/api/notes",
            "application/json",
            body_limits::API_BYTES,
        ),
        (
            "PATCH",
            "/api/admin/releases/1.0.0",
            "application/json",
            body_limits::API_BYTES,
        ),
        (
            "POST",
            "/api/events",
            "application/json",
            body_limits::EVENTS_BYTES,
        ),
        (
            "POST",
            "/api/crashes",
            "multipart/form-data; boundary=x",
            crash_bytes,
        ),
        ("POST", "/", "text/plain", body_limits::PAGES_BYTES),
        (
            "POST",
            "/index.html",
            "text/plain",
            body_limits::PAGES_BYTES,
        ),
        (
            "POST",
            "/app.0123abcd.js",
            "text/plain",
            body_limits::PAGES_BYTES,
        ),
    ] {
        let over = post_bytes(&proxy, method, path, content_type, limit + 1);
        assert_eq!(
            over.status,
            413,
            "{method} {path} with {} bytes: {over:?}",
            limit + 1
        );
        assert!(
            answered_by_nginx(&over),
            "{path}: app-web, not nginx, refused it: {over:?}"
        );
        let at = post_bytes(&proxy, method, path, content_type, limit);
        assert!(
            !answered_by_nginx(&at) && at.status != 413,
            "{method} {path} with {limit} bytes must reach app-web and be within its limit: {at:?}"
        );
    }
    // app-web holds the same limits itself, for whatever reaches it another way: one byte over
    // is its own 413 on every route that reads a body.
    for (path, content_type, limit) in [
        ("/api/notes", "application/json", body_limits::API_BYTES),
        ("/api/events", "application/json", body_limits::EVENTS_BYTES),
        (
            "/api/crashes",
            "multipart/form-data; boundary=x",
            crash_bytes,
        ),
    ] {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), vec![b'x'; limit + 1]).unwrap();
        let output = std::process::Command::new("curl")
            .args([
                "--silent",
                "--max-time",
                "30",
                "--output",
                "/dev/null",
                "--write-out",
                "%{http_code}",
            ])
            .args(["--header", &format!("content-type: {content_type}")])
            .arg("--data-binary")
            .arg(format!("@{}", file.path().display()))
            .arg(format!("http://{}{path}", app.address))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "413",
            "app-web took {} bytes on {path}",
            limit + 1
        );
    }
    // Symbols: 1 GiB is too much to send in a test; nginx refuses a declared length over its
    // limit before reading any of the body.
    let over = curl(
        &proxy,
        &[
            "--http1.1",
            "--request",
            "PUT",
            "--header",
            &format!("content-length: {}", body_limits::mib(1024) + 1),
            "--data-binary",
            "x",
        ],
        &proxy.url("/api/admin/symbols/app.sym/0123456789ABCDEF0123456789ABCDEF0"),
    );
    assert_eq!(over.status, 413, "{over:?}");
    assert!(answered_by_nginx(&over), "{over:?}");
}

#[test]
fn the_templates_body_limits_are_app_webs() {
    use app_web::body_limits;
    let template =
        std::fs::read_to_string(support::proxy::nginx_dir().join("nginx.conf.template")).unwrap();
    // Each location (or the http block) and the limit it sets, in order.
    let mut limits = Vec::new();
    let mut location = "http".to_owned();
    for line in template.lines().map(str::trim) {
        if line.starts_with("location ") {
            location = line.trim_end_matches('{').trim().to_owned();
        }
        if let Some(value) = line.strip_prefix("client_max_body_size ") {
            limits.push((location.clone(), value.trim_end_matches(';').to_owned()));
        }
    }
    let kib = |bytes: usize| format!("{}k", bytes / 1024);
    let expected = [
        ("http", kib(body_limits::API_BYTES)),
        (
            "location ~ ^/api/crashes(/|$)",
            "${NGINX_CRASH_MAX_MIB}m".to_owned(),
        ),
        (
            "location ~ ^/api/events(/|$)",
            kib(body_limits::EVENTS_BYTES),
        ),
        (
            "location ^~ /api/admin/symbols/",
            "${NGINX_SYMBOLS_MAX_MIB}m".to_owned(),
        ),
        ("location /api/", kib(body_limits::API_BYTES)),
        (
            r#"location ~* "\.[0-9a-f]{8,}\.(css|js|png|svg|webp|woff2)$""#,
            kib(body_limits::PAGES_BYTES),
        ),
        (
            r#"location ~ "^/([A-Za-z0-9_-]+\.html)?$""#,
            kib(body_limits::PAGES_BYTES),
        ),
        ("location /", kib(body_limits::PAGES_BYTES)),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(location, limit)| (location.to_string(), limit.clone()))
        .collect();
    assert_eq!(limits, expected);
}
