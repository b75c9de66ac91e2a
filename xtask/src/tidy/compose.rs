//! Rules for the compose files in docker/: every image pinned, every long-running service
//! health-checked and restarted, dependencies that wait for health or completion, secrets only
//! as files, app containers read-only without capabilities, logs rotated, ports on loopback,
//! and every variable documented in docker/.env.example.

use yaml_rust2::{Yaml, YamlLoader};

use super::{project_root, read};

/// Parses one YAML document, applying merge keys (`<<: *anchor`), which compose honours and
/// the parser leaves as ordinary keys.
fn parse(text: &str) -> Result<Yaml, String> {
    let mut documents = YamlLoader::load_from_str(text).map_err(|err| err.to_string())?;
    only_document(&mut documents).map(merge_keys)
}

fn only_document(documents: &mut Vec<Yaml>) -> Result<Yaml, String> {
    match documents.len() {
        1 => Ok(documents.remove(0)),
        n => Err(format!("expected one YAML document, found {n}")),
    }
}

fn merge_keys(node: Yaml) -> Yaml {
    match node {
        Yaml::Hash(hash) => {
            let mut merged = yaml_rust2::yaml::Hash::new();
            let merge_key = Yaml::String("<<".into());
            if let Some(Yaml::Hash(base)) = hash.get(&merge_key).cloned().map(merge_keys) {
                merged.extend(base);
            }
            for (key, value) in hash {
                if key != merge_key {
                    merged.insert(key, merge_keys(value));
                }
            }
            Yaml::Hash(merged)
        }
        Yaml::Array(items) => Yaml::Array(items.into_iter().map(merge_keys).collect()),
        other => other,
    }
}

fn entries(node: &Yaml) -> Vec<(String, &Yaml)> {
    node.as_hash()
        .map(|hash| {
            hash.iter()
                .filter_map(|(key, value)| Some((key.as_str()?.to_owned(), value)))
                .collect()
        })
        .unwrap_or_default()
}

fn strings(node: &Yaml) -> Vec<String> {
    node.as_vec()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `image` names a fixed version: `name:tag` with a numbered tag, or a variable that
/// compose requires (`${VAR:?message}`), since the file cannot spell the product version.
pub fn image_is_pinned(image: &str) -> bool {
    if let Some(variable) = image.strip_prefix("${") {
        return variable.contains(":?") && image.ends_with('}');
    }
    match image_tag(image) {
        Some(tag) => tag != "latest" && tag.chars().any(|c| c.is_ascii_digit()),
        None => image.contains("@sha256:"),
    }
}

/// Whether `image` names a tag other than `latest`, or a digest. Base images in Dockerfiles
/// need no more: distroless, the default runtime base, publishes no numbered tags, and its
/// `nonroot` tag follows Debian 12's security updates, which a runtime base should.
pub fn image_has_explicit_tag(image: &str) -> bool {
    match image_tag(image) {
        Some(tag) => tag != "latest" && !tag.is_empty(),
        None => image.contains("@sha256:"),
    }
}

/// The tag of `image`: what follows `:` in the last part of its name (a registry's port comes
/// before a `/`, so it is not taken for one).
fn image_tag(image: &str) -> Option<&str> {
    let name_end = image.rfind('/').map_or(0, |slash| slash + 1);
    image[name_end..].split_once(':').map(|(_, tag)| tag)
}

/// Whether an environment variable's name says it holds a secret.
fn names_a_secret(name: &str) -> bool {
    [
        "PASSWORD",
        "SECRET",
        "TOKEN",
        "PASSPHRASE",
        "PRIVATE_KEY",
        "API_KEY",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// Whether `value` is a URL that carries a password (`scheme://user:password@host`).
fn url_has_password(value: &str) -> bool {
    value.split_once("://").is_some_and(|(_, rest)| {
        let authority = rest.split('/').next().unwrap_or("");
        authority
            .rsplit_once('@')
            .is_some_and(|(credentials, _)| credentials.contains(':'))
    })
}

/// The services Prometheus scrapes: the host part of every `host:port` target in
/// `prometheus_yml` (docker/prometheus/prometheus.yml), the blackbox exporter's included.
pub fn scraped_services(prometheus_yml: &str) -> Vec<String> {
    let mut hosts: Vec<String> = prometheus_yml
        .split('"')
        .filter_map(|quoted| quoted.split_once(':'))
        .filter(|(host, port)| {
            !host.is_empty()
                && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !port.is_empty()
                && port.chars().all(|c| c.is_ascii_digit())
        })
        .map(|(host, _)| host.to_owned())
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// What a service may keep beyond the hardening every service gets (`read_only: true`,
/// `cap_drop: [ALL]`, `no-new-privileges:true`), and why: the capabilities it adds back, or
/// `docker.sock` for the Docker API. The stack's documentation repeats the reasons.
pub const HARDENING_EXCEPTIONS: &[(&str, &str, &str)] = &[
    (
        "nginx",
        "CHOWN SETGID SETUID",
        "the master runs as root to read certbot's private keys and switches its workers to www-data, handing them their temporary folders",
    ),
    (
        "postgres",
        "CHOWN DAC_OVERRIDE FOWNER SETGID SETUID",
        "the image's entrypoint starts as root, gives the data folder to postgres and switches to that user; the server has none of them",
    ),
    (
        "alloy",
        "docker.sock",
        "Alloy names each container's log stream by its compose service, which only the Docker API tells; the files under /var/lib/docker/containers carry ids only",
    ),
];

/// How `service` falls short of the hardening every service gets, allowing what
/// [`HARDENING_EXCEPTIONS`] lists for it.
fn hardening_problems(name: &str, service: &Yaml) -> Vec<String> {
    let allowed: Vec<&str> = HARDENING_EXCEPTIONS
        .iter()
        .filter(|(service, _, _)| *service == name)
        .flat_map(|(_, what, _)| what.split(' '))
        .collect();
    let mut problems = Vec::new();
    if service["read_only"].as_bool() != Some(true) {
        problems.push(format!(
            "{name}: read_only: true (writable paths as tmpfs or volumes)"
        ));
    }
    if !strings(&service["cap_drop"]).iter().any(|cap| cap == "ALL") {
        problems.push(format!("{name}: cap_drop: [ALL]"));
    }
    if !strings(&service["security_opt"])
        .iter()
        .any(|opt| opt == "no-new-privileges:true")
    {
        problems.push(format!("{name}: security_opt no-new-privileges:true"));
    }
    if service["privileged"].as_bool() == Some(true) {
        problems.push(format!("{name}: never privileged"));
    }
    for capability in strings(&service["cap_add"]) {
        if !allowed.contains(&capability.as_str()) {
            problems.push(format!(
                "{name}: cap_add {capability} is not among the exceptions in xtask/src/tidy/compose.rs (HARDENING_EXCEPTIONS); add it there with the reason, or drop it"
            ));
        }
    }
    for volume in strings(&service["volumes"]) {
        if volume.contains("docker.sock") && !allowed.contains(&"docker.sock") {
            problems.push(format!(
                "{name}: mounts the Docker socket (root on the host) without an exception in HARDENING_EXCEPTIONS"
            ));
        }
    }
    problems
}

/// Every rule a compose file breaks. `complete` says whether the file defines its services
/// whole (compose.yaml) or only adds to them (an override file), where services without an
/// image or build are partial and only their additions are checked. A long-running service
/// may go without a health check (`healthcheck: {disable: true}`, for images with nothing to
/// run one) only when it is in `scraped`: then Prometheus's `up` and the TargetDown alert
/// watch it.
pub fn problems(text: &str, complete: bool, scraped: &[String]) -> Vec<String> {
    let document = match parse(text) {
        Ok(document) => document,
        Err(err) => return vec![format!("not valid YAML: {err}")],
    };
    let mut problems = Vec::new();
    let defined_secrets: Vec<(String, &Yaml)> = entries(&document["secrets"]);
    for (name, secret) in &defined_secrets {
        match secret["file"].as_str() {
            Some(file) if file.starts_with("./secrets/") => {}
            _ => problems.push(format!("secret {name} must be a file under ./secrets/")),
        }
    }
    let services = entries(&document["services"]);
    if complete && services.is_empty() {
        problems.push("no services".into());
    }
    for (name, service) in services {
        let whole = complete || !service["image"].is_badvalue() || !service["build"].is_badvalue();
        let image = service["image"].as_str().unwrap_or("");
        if whole {
            if !image_is_pinned(image) {
                problems.push(format!(
                    "{name}: image {image:?} is not pinned (name:version, or ${{VAR:?...}})"
                ));
            }
            let restart = service["restart"].as_str().unwrap_or("");
            if restart == "no" {
                if !service["ports"].is_badvalue() {
                    problems.push(format!("{name}: a one-shot service publishes no ports"));
                }
            } else {
                if restart != "unless-stopped" {
                    problems.push(format!("{name}: restart must be unless-stopped (or \"no\" for a one-shot), not {restart:?}"));
                }
                let disabled = service["healthcheck"]["disable"].as_bool() == Some(true);
                if disabled && !scraped.contains(&name) {
                    problems.push(format!(
                        "{name}: only a service Prometheus scrapes may disable its healthcheck"
                    ));
                } else if !disabled && strings(&service["healthcheck"]["test"]).is_empty() {
                    problems.push(format!(
                        "{name}: a long-running service needs a healthcheck test"
                    ));
                }
            }
            let logging = &service["logging"];
            if logging["driver"].as_str() != Some("json-file")
                || logging["options"]["max-size"].is_badvalue()
                || logging["options"]["max-file"].is_badvalue()
            {
                problems.push(format!(
                    "{name}: logging must be json-file with max-size and max-file"
                ));
            }
        }
        if whole {
            problems.extend(hardening_problems(&name, service));
        }
        if !service["depends_on"].is_badvalue() {
            if service["depends_on"].as_hash().is_none() {
                problems.push(format!(
                    "{name}: depends_on must name a condition for each service"
                ));
            }
            for (dependency, condition) in entries(&service["depends_on"]) {
                let condition = condition["condition"].as_str().unwrap_or("");
                if !matches!(
                    condition,
                    "service_healthy" | "service_completed_successfully"
                ) {
                    problems.push(format!(
                        "{name}: depends_on {dependency} must wait for service_healthy or service_completed_successfully, not {condition:?}"
                    ));
                }
            }
        }
        if !service["environment"].is_badvalue() && service["environment"].as_hash().is_none() {
            problems.push(format!("{name}: environment must be a mapping"));
        }
        for (variable, value) in entries(&service["environment"]) {
            if names_a_secret(&variable) && !variable.ends_with("_FILE") {
                problems.push(format!(
                    "{name}: {variable} looks like a secret; pass it as a file ({variable}_FILE)"
                ));
            }
            if value.as_str().is_some_and(url_has_password) {
                problems.push(format!(
                    "{name}: {variable} has a password in its URL; read the password from a file"
                ));
            }
        }
        for port in service["ports"].as_vec().into_iter().flatten() {
            let port = port.as_str().unwrap_or("");
            // Loopback, or a variable whose default is loopback (a server's .env opens it up).
            let loopback = port.starts_with("127.0.0.1:")
                || (port.starts_with("${") && port.contains(":-127.0.0.1:"));
            if !loopback {
                problems.push(format!(
                    "{name}: port {port:?} must be published on 127.0.0.1 only"
                ));
            }
        }
        for secret in strings(&service["secrets"]) {
            if !defined_secrets
                .iter()
                .any(|(defined, _)| *defined == secret)
                && complete
            {
                problems.push(format!(
                    "{name}: secret {secret} is not defined in this file"
                ));
            }
        }
    }
    problems
}

/// The names of the `${VAR...}` references in `text`.
pub fn variables(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if !rest[..start].ends_with('$') {
            names.push(after[..end].to_owned());
        }
        rest = &after[end..];
    }
    names.sort();
    names.dedup();
    names
}

const COMPOSE_FILES: &[(&str, bool)] = &[
    ("docker/compose.yaml", true),
    ("docker/compose.pgbouncer.yaml", false),
];

#[test]
fn compose_files_follow_the_rules() {
    let scraped = scraped_services(
        &read("docker/prometheus/prometheus.yml").expect("read docker/prometheus/prometheus.yml"),
    );
    for (file, complete) in COMPOSE_FILES {
        let text = read(file).unwrap_or_else(|| panic!("read {file}"));
        let problems = problems(&text, *complete, &scraped);
        assert!(problems.is_empty(), "{file}:\n  {}", problems.join("\n  "));
    }
}

#[test]
fn every_hardening_exception_is_used_and_documented() {
    let compose = parse(&read("docker/compose.yaml").unwrap()).unwrap();
    let stack = read("docs/operations/stack.md").expect("read docs/operations/stack.md");
    let mut listing = String::new();
    for (service, what, why) in HARDENING_EXCEPTIONS {
        let service_yaml = &compose["services"][*service];
        let used = what.split(' ').all(|item| {
            strings(&service_yaml["cap_add"])
                .iter()
                .any(|cap| cap == item)
                || strings(&service_yaml["volumes"])
                    .iter()
                    .any(|volume| volume.contains(item))
        });
        assert!(
            used,
            "{service} no longer needs {what}: remove the exception"
        );
        assert!(
            stack.contains(&format!("`{service}`")),
            "docs/operations/stack.md must say why {service} keeps {what}"
        );
        listing.push_str(&format!("\n  {service}: {what} ({why})"));
    }
    eprintln!("hardening exceptions:{listing}");
}

#[test]
fn every_compose_variable_is_documented_in_env_example() {
    let example = read("docker/.env.example").expect("read docker/.env.example");
    let documented: Vec<&str> = example
        .lines()
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.trim()))
        .collect();
    for (file, _) in COMPOSE_FILES {
        let text = read(file).unwrap();
        for variable in variables(&text) {
            assert!(
                documented.contains(&variable.as_str()),
                "{file} uses ${{{variable}}} but docker/.env.example does not document it"
            );
        }
    }
    assert!(project_root().join("docker/secrets/.gitignore").is_file());
}

/// The `${NAME:-default}` defaults a compose file gives its variables.
fn defaults(text: &str) -> Vec<(String, String)> {
    text.match_indices("${")
        .filter_map(|(start, _)| {
            let rest = &text[start + 2..];
            let inner = &rest[..rest.find('}')?];
            let (name, default) = inner.split_once(":-")?;
            Some((name.to_owned(), default.to_owned()))
        })
        .collect()
}

#[test]
fn defaults_agree_with_env_example_and_the_nginx_flags() {
    let example = read("docker/.env.example").expect("read docker/.env.example");
    let examples: std::collections::BTreeMap<&str, &str> = example
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.trim(), value.trim()))
        .collect();
    let mut compared = 0;
    for (file, _) in COMPOSE_FILES {
        let text = read(file).unwrap();
        for (name, default) in defaults(&text) {
            // An empty default is "unset"; .env.example may show what a value looks like.
            if default.is_empty() {
                continue;
            }
            if let Some(example) = examples.get(name.as_str()) {
                assert_eq!(
                    *example, default,
                    "{file} defaults {name} to {default:?}, docker/.env.example to {example:?}"
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 20, "only {compared} defaults compared");
    // The nginx rate limits are set in xtask's nginx module, which `nginx render` uses.
    let compose = read("docker/compose.yaml").unwrap();
    let compose = defaults(&compose);
    for (name, value) in [
        ("NGINX_RATE_LIMIT", crate::nginx::RATE_LIMIT),
        ("NGINX_RATE_BURST", crate::nginx::RATE_BURST),
    ] {
        assert!(
            compose.contains(&(name.to_owned(), value.to_owned())),
            "docker/compose.yaml must default {name} to {value:?}, as `cargo xtask nginx render` does"
        );
    }
}

#[test]
fn the_rules_catch_what_they_name() {
    let bad = r#"
x-hardening: &hardening
  read_only: true
  cap_drop: [ALL]
  security_opt: ["no-new-privileges:true"]
services:
  db:
    image: postgres:latest
    <<: *hardening
    restart: always
    environment:
      POSTGRES_PASSWORD: hunter2
      URL: postgres://app:hunter2@db/app
    ports: ["5432:5432", "${DB_PORT:-5432}:5432", "${OK_PORT:-127.0.0.1:5433}:5432"]
    depends_on: [cache]
  web:
    image: ${APP_WEB_IMAGE:?}
    restart: unless-stopped
    healthcheck: { test: ["CMD", "true"] }
    logging: { driver: json-file, options: { max-size: 1m, max-file: "2" } }
  exporter:
    image: exporter:1.0
    <<: *hardening
    restart: unless-stopped
    healthcheck: { disable: true }
    logging: { driver: json-file, options: { max-size: 1m, max-file: "2" } }
  scraped:
    image: exporter:1.0
    <<: *hardening
    restart: unless-stopped
    healthcheck: { disable: true }
    logging: { driver: json-file, options: { max-size: 1m, max-file: "2" } }
  nginx:
    image: nginx:1.0
    <<: *hardening
    cap_add: [CHOWN, NET_ADMIN]
    volumes: ["/var/run/docker.sock:/var/run/docker.sock:ro"]
    restart: unless-stopped
    healthcheck: { test: ["CMD", "true"] }
    logging: { driver: json-file, options: { max-size: 1m, max-file: "2" } }
"#;
    let found = problems(bad, true, &["scraped".to_owned()]);
    for expected in [
        "db: image \"postgres:latest\" is not pinned",
        "db: restart must be unless-stopped",
        "db: a long-running service needs a healthcheck test",
        "db: logging must be json-file",
        "db: depends_on must name a condition",
        "db: POSTGRES_PASSWORD looks like a secret",
        "db: URL has a password in its URL",
        "db: port \"5432:5432\" must be published on 127.0.0.1 only",
        "db: port \"${DB_PORT:-5432}:5432\" must be published on 127.0.0.1 only",
        "web: read_only: true",
        "web: cap_drop: [ALL]",
        "web: security_opt no-new-privileges:true",
        "exporter: only a service Prometheus scrapes may disable its healthcheck",
        "nginx: cap_add NET_ADMIN is not among the exceptions",
        "nginx: mounts the Docker socket",
    ] {
        assert!(
            found.iter().any(|problem| problem.starts_with(expected)),
            "missing {expected:?} in {found:#?}"
        );
    }
    assert_eq!(found.len(), 15, "{found:#?}");
}

#[test]
fn merge_keys_count_as_written() {
    let text = r#"
x-hardening: &hardening
  read_only: true
  cap_drop: [ALL]
  security_opt: ["no-new-privileges:true"]
x-logging: &logging
  driver: json-file
  options: { max-size: 1m, max-file: "2" }
services:
  web:
    image: ${APP_WEB_IMAGE:?set it}
    <<: *hardening
    restart: "no"
    logging: *logging
"#;
    assert_eq!(problems(text, true, &[]), Vec::<String>::new());
}

#[test]
fn scraped_services_are_the_hosts_of_quoted_targets() {
    let config = r#"
    static_configs:
      - targets: ["app-web:8080", "node-exporter:9100"]
    relabel_configs:
      - replacement: "blackbox-exporter:9115"
        regex: "(.*):(.*)"
    files: ["/run/prometheus/blackbox-targets.yml"]
"#;
    assert_eq!(
        scraped_services(config),
        vec!["app-web", "blackbox-exporter", "node-exporter"]
    );
}

#[test]
fn pinned_images_and_variables() {
    assert!(image_is_pinned("postgres:15.13-bookworm"));
    assert!(image_is_pinned("localhost:5000/redis:7.0.15"));
    assert!(image_is_pinned("${APP_WEB_IMAGE:?set it}"));
    assert!(!image_is_pinned("${APP_WEB_IMAGE:-app-web}"));
    assert!(!image_is_pinned("redis"));
    assert!(!image_is_pinned("redis:bookworm"));
    assert!(!image_is_pinned("localhost:5000/redis"));
    assert_eq!(
        variables("a ${B:-1} $${NOT} ${C:?x} ${B}"),
        vec!["B".to_owned(), "C".to_owned()]
    );
}
