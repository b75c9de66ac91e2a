//! docker/compose.yaml and its PgBouncer override as Debian's docker-compose reads them: both
//! are accepted with docker/.env.example's settings, and the resolved stack has what the tidy
//! rules promise once compose has filled in the variables and merge keys.

use e2e::tools as support;

use std::process::{Command, Output};

use support::{assert_success, project_root};
use yaml_rust2::{Yaml, YamlLoader};

/// `docker-compose config` on `files`, in docker/, with `env_file` and APP_WEB_IMAGE set
/// unless `image` is `None`.
fn compose_config(files: &[&str], env_file: &str, image: Option<&str>) -> Output {
    let mut command = Command::new("docker-compose");
    command
        .current_dir(project_root().join("docker"))
        .env_remove("APP_WEB_IMAGE")
        .env_remove("APP_WEB_PORT");
    for file in files {
        command.args(["--file", file]);
    }
    command.args(["--env-file", env_file, "config"]);
    if let Some(image) = image {
        command.env("APP_WEB_IMAGE", image);
    }
    command
        .output()
        .expect("run docker-compose (package docker-compose; `cargo xtask setup` installs it)")
}

/// The resolved configuration.
fn resolved(files: &[&str]) -> Yaml {
    let output = compose_config(files, ".env.example", Some("app-web:test"));
    assert_success(&output, "docker-compose config");
    let text = String::from_utf8(output.stdout).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

fn strings(node: &Yaml) -> Vec<&str> {
    node.as_vec()
        .unwrap_or_else(|| panic!("expected a list, got {node:?}"))
        .iter()
        .map(|item| item.as_str().unwrap())
        .collect()
}

#[test]
fn docker_compose_accepts_the_stack_and_resolves_it_as_intended() {
    let stack = resolved(&["compose.yaml"]);
    let services = &stack["services"];
    let mut names: Vec<&str> = services
        .as_hash()
        .unwrap()
        .keys()
        .map(|key| key.as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "alertmanager",
            "alloy",
            "app-web",
            "backup",
            "blackbox-exporter",
            "certbot",
            "grafana",
            "loki",
            "migrate",
            "nginx",
            "nginx-exporter",
            "node-exporter",
            "postgres",
            "postgres-exporter",
            "prometheus",
            "redis",
            "redis-exporter",
        ]
    );
    for name in names {
        let profiles = &services[name]["profiles"];
        if NOT_FROM_DEBIAN.contains(&name) {
            assert_eq!(strings(profiles), ["monitoring"], "{name}");
        } else if MONITORING.contains(&name) {
            // The `metrics` profile is `monitoring` without the images Debian cannot provide,
            // which is what the whole-stack test runs on stand-ins.
            assert_eq!(strings(profiles), ["monitoring", "metrics"], "{name}");
        } else {
            assert!(profiles.is_badvalue(), "{name} runs without a profile");
        }
    }
    let backup = &services["backup"];
    assert_eq!(
        backup["build"]["args"]["POSTGRES_IMAGE"].as_str(),
        services["postgres"]["image"].as_str(),
        "the backup image's pg_dump comes from the server's own image"
    );
    assert_eq!(
        backup["build"]["args"]["APP_WEB_IMAGE"].as_str(),
        Some("app-web:test")
    );
    assert_eq!(backup["read_only"].as_bool(), Some(true));
    assert_eq!(
        backup["environment"]["APP_WEB_DATABASE_PASSWORD_FILE"].as_str(),
        Some("/run/secrets/postgres_password")
    );
    assert!(
        backup["environment"]["APP_WEB_BACKUP_RECIPIENTS"]
            .as_str()
            .is_some_and(|keys| keys.starts_with("age1")),
        "recipients come from .env"
    );
    // The seams between nginx and app-web: app-web believes forwarded addresses from nginx's
    // fixed address and nobody else's, and both refuse the same bodies.
    let app_web = &services["app-web"];
    let nginx_address = services["nginx"]["networks"]["default"]["ipv4_address"]
        .as_str()
        .expect("nginx has a fixed address on the stack's network");
    assert_eq!(
        app_web["environment"]["APP_WEB_TRUSTED_PROXIES"].as_str(),
        Some(nginx_address)
    );
    let subnet = stack["networks"]["default"]["ipam"]["config"][0]["subnet"]
        .as_str()
        .unwrap();
    let dynamic = stack["networks"]["default"]["ipam"]["config"][0]["ip_range"]
        .as_str()
        .unwrap();
    let inside = |range: &str| {
        let (network, bits) = range.split_once('/').unwrap();
        let network: std::net::Ipv4Addr = network.parse().unwrap();
        let bits: u32 = bits.parse().unwrap();
        let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
        let address: std::net::Ipv4Addr = nginx_address.parse().unwrap();
        u32::from(address) & mask == u32::from(network) & mask
    };
    assert!(inside(subnet), "nginx's address is on the stack's network");
    assert!(
        !inside(dynamic),
        "nginx's address is outside the range Docker hands to other containers"
    );
    for (app_web_variable, nginx_variable) in [
        ("APP_WEB_CRASH_MAX_MIB", "NGINX_CRASH_MAX_MIB"),
        ("APP_WEB_SYMBOLS_MAX_MIB", "NGINX_SYMBOLS_MAX_MIB"),
    ] {
        let value = app_web["environment"][app_web_variable].as_str();
        assert!(value.is_some(), "{app_web_variable}");
        assert_eq!(
            services["nginx"]["environment"][nginx_variable].as_str(),
            value,
            "{nginx_variable} and {app_web_variable} come from one .env variable"
        );
    }
    let nginx = &services["nginx"];
    assert_eq!(
        nginx["environment"]["NGINX_SERVER_NAME"].as_str(),
        Some("app.example.org")
    );
    assert_eq!(
        strings(&nginx["ports"]),
        ["127.0.0.1:80:80/tcp", "127.0.0.1:443:443/tcp"]
    );
    assert_eq!(
        nginx["depends_on"]["app-web"]["condition"].as_str(),
        Some("service_healthy")
    );
    let certbot = &services["certbot"];
    assert_eq!(certbot["pid"].as_str(), Some("service:nginx"));
    assert_eq!(
        certbot["environment"]["CERTBOT_SERVER"].as_str(),
        Some("https://acme-staging-v02.api.letsencrypt.org/directory"),
        "staging until .env says production"
    );

    let app = &services["app-web"];
    assert_eq!(app["image"].as_str(), Some("app-web:test"));
    assert_eq!(app["read_only"].as_bool(), Some(true));
    assert_eq!(strings(&app["cap_drop"]), ["ALL"]);
    assert_eq!(
        app["depends_on"]["migrate"]["condition"].as_str(),
        Some("service_completed_successfully")
    );
    assert_eq!(
        app["depends_on"]["postgres"]["condition"].as_str(),
        Some("service_healthy")
    );
    assert_eq!(
        app["depends_on"]["redis"]["condition"].as_str(),
        Some("service_healthy")
    );
    assert_eq!(strings(&app["ports"]), ["127.0.0.1:8080-8081:8080/tcp"]);
    assert_eq!(
        app["environment"]["APP_WEB_DATABASE_PASSWORD_FILE"].as_str(),
        Some("/run/secrets/app_db_password")
    );
    assert_eq!(
        app["environment"]["APP_WEB_ADMIN_TOKEN_FILE"].as_str(),
        Some("/run/secrets/admin_token")
    );
    assert_eq!(services["migrate"]["restart"].as_str(), Some("no"));
    assert_eq!(
        strings(&services["postgres"]["healthcheck"]["test"])[1..4],
        ["pg_isready", "-h", "127.0.0.1"]
    );
    assert_eq!(services["redis"]["read_only"].as_bool(), Some(true));
    assert_eq!(
        services["redis"]["logging"]["options"]["max-size"].as_str(),
        Some("10m")
    );
}

/// The services of the `monitoring` profile.
const MONITORING: &[&str] = &[
    "alertmanager",
    "alloy",
    "blackbox-exporter",
    "grafana",
    "loki",
    "nginx-exporter",
    "node-exporter",
    "postgres-exporter",
    "prometheus",
    "redis-exporter",
];

/// The monitoring services left out of the `metrics` profile: no Debian package provides them.
const NOT_FROM_DEBIAN: &[&str] = &["alloy", "grafana", "loki"];

/// Whether `output` (a program's version report) names `version` whole: after a space or `=`
/// and not followed by another digit or dot.
fn reports_version(output: &str, version: &str) -> bool {
    output.match_indices(version).any(|(at, _)| {
        let before = output[..at].chars().next_back();
        let after = output[at + version.len()..].chars().next();
        matches!(before, Some(' ' | '='))
            && !after.is_some_and(|next| next.is_ascii_digit() || next == '.')
    })
}

#[test]
fn the_monitoring_images_are_the_versions_the_tests_run() {
    assert!(reports_version(
        "node_exporter, version 1.5.0 (branch",
        "1.5.0"
    ));
    assert!(reports_version("Exporter version=0.11.0-1+b4", "0.11.0"));
    assert!(!reports_version("version 1.5.01", "1.5.0"));
    assert!(!reports_version("version 11.5.0", "1.5.0"));

    let stack = resolved(&["compose.yaml"]);
    let services = &stack["services"];
    for (service, program, flag) in [
        ("prometheus", "prometheus", "--version"),
        ("alertmanager", "prometheus-alertmanager", "--version"),
        (
            "postgres-exporter",
            "prometheus-postgres-exporter",
            "--version",
        ),
        ("redis-exporter", "prometheus-redis-exporter", "-version"),
        ("nginx-exporter", "prometheus-nginx-exporter", "-version"),
        ("node-exporter", "prometheus-node-exporter", "--version"),
        (
            "blackbox-exporter",
            "prometheus-blackbox-exporter",
            "--version",
        ),
    ] {
        let image = services[service]["image"].as_str().unwrap();
        let tag = image.rsplit_once(':').unwrap().1;
        let version = tag.trim_start_matches('v').trim_end_matches("-alpine");
        let output = Command::new(program)
            .arg(flag)
            .output()
            .unwrap_or_else(|err| panic!("run {program} (`cargo xtask setup` installs it): {err}"));
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            reports_version(&report, version),
            "{service} pins {image}, but the tests run {program}: {report}"
        );
    }
    // The configuration the tests load is the one the containers mount.
    for (service, mount) in [
        ("prometheus", "/docker/prometheus:/etc/prometheus:ro"),
        ("alertmanager", "/docker/alertmanager:/etc/alertmanager:ro"),
        ("blackbox-exporter", "/docker/blackbox:/etc/blackbox:ro"),
        (
            "grafana",
            "/docker/grafana/dashboards:/var/lib/grafana/dashboards:ro",
        ),
        ("loki", "/docker/loki/loki.yml:/etc/loki/loki.yml:ro"),
        (
            "alloy",
            "/docker/alloy/config.alloy:/etc/alloy/config.alloy:ro",
        ),
    ] {
        let volumes = strings(&services[service]["volumes"]);
        assert!(
            volumes.iter().any(|volume| volume.ends_with(mount)),
            "{service} mounts {mount}: {volumes:?}"
        );
    }
    // Grafana's password, the exporters' and Alertmanager's credentials come from files.
    assert_eq!(
        services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"].as_str(),
        Some("/run/secrets/grafana_admin_password")
    );
    assert_eq!(
        services["postgres-exporter"]["environment"]["DATA_SOURCE_USER"].as_str(),
        Some("monitor")
    );
    let secrets: Vec<&str> = services["alertmanager"]["secrets"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|secret| secret["source"].as_str().unwrap())
        .collect();
    assert_eq!(secrets, ["alert_webhook_url", "alert_smtp_password"]);
    for service in ["prometheus", "alertmanager", "grafana"] {
        for port in strings(&services[service]["ports"]) {
            assert!(port.starts_with("127.0.0.1:"), "{service}: {port}");
        }
    }
}

#[test]
fn the_pgbouncer_override_points_app_web_at_pgbouncer_and_migrate_at_postgres() {
    let stack = resolved(&["compose.yaml", "compose.pgbouncer.yaml"]);
    let services = &stack["services"];
    let app = &services["app-web"]["environment"];
    assert_eq!(
        app["APP_WEB_DATABASE_URL"].as_str(),
        Some("postgres://app@pgbouncer:6432/app")
    );
    assert_eq!(app["APP_WEB_DB_PGBOUNCER"].as_str(), Some("true"));
    assert_eq!(
        services["migrate"]["environment"]["APP_WEB_DATABASE_URL"].as_str(),
        Some("postgres://app@postgres:5432/app")
    );
    assert_eq!(
        services["app-web"]["depends_on"]["pgbouncer"]["condition"].as_str(),
        Some("service_healthy")
    );
    assert_eq!(services["pgbouncer"]["read_only"].as_bool(), Some(true));
}

#[test]
fn the_stack_refuses_to_start_without_an_image_tag() {
    let empty = tempfile::NamedTempFile::new().unwrap();
    let output = compose_config(&["compose.yaml"], empty.path().to_str().unwrap(), None);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("set APP_WEB_IMAGE to a tag that cargo xtask docker build printed"),
        "{stderr}"
    );
}
