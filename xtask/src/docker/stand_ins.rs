//! `cargo xtask docker stand-ins`: images built from Debian's packages in place of the
//! third-party images docker/compose.yaml pins, for machines that cannot pull them (this one, a
//! CI runner without registry access), so that `docker-compose up` runs the unchanged compose
//! file. Each is built from docker/stand-ins/<name>.Dockerfile on the debootstrap base
//! (`cargo xtask docker base --with-apt`) and tagged with exactly the name and tag compose pins,
//! with the label `app.stand-in` naming the service; an image of that name without the label
//! (a real one, pulled) is never replaced. What each stand-in honours of the official image's
//! contract is listed in [`STAND_INS`], and a tidy test holds the list to the compose file.
//! Grafana, Loki and Alloy are not packaged by Debian 12 and have no stand-in: runs here leave
//! them out with the `metrics` profile (docs/operations/monitoring.md).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use xshell::{Shell, cmd};
use yaml_rust2::{Yaml, YamlLoader};

use crate::{path, step};

/// One stand-in: the compose service whose pinned image it replaces, its Dockerfile in
/// docker/stand-ins, and what it honours of the official image's contract.
#[derive(Debug)]
pub struct StandIn {
    pub service: &'static str,
    pub dockerfile: &'static str,
    /// The environment variables of the official image the stack sets on the service.
    pub environment: &'static [&'static str],
    /// The rest of the contract: users, paths, programs, volumes.
    pub contract: &'static [&'static str],
}

/// The label every stand-in carries, holding the service it stands in for.
pub const LABEL: &str = "app.stand-in";

/// Where docker/nginx.Dockerfile's Debian base comes from: its `BASE_IMAGE` default.
pub const DEBIAN_SLIM: StandIn = StandIn {
    service: "nginx (its Dockerfile's base)",
    dockerfile: "debian-slim.Dockerfile",
    environment: &[],
    contract: &[
        "Debian 12 with apt and a shell, as debian:bookworm-<date>-slim",
        "/usr/sbin/policy-rc.d refusing service starts while packages install",
    ],
};

pub const STAND_INS: &[StandIn] = &[
    StandIn {
        service: "postgres",
        dockerfile: "postgres.Dockerfile",
        environment: &[
            "POSTGRES_USER",
            "POSTGRES_DB",
            "POSTGRES_PASSWORD_FILE",
            "POSTGRES_INITDB_ARGS",
        ],
        contract: &[
            "user and group postgres with uid and gid 999",
            "PGDATA /var/lib/postgresql/data, owned by postgres, a volume",
            "postgres, initdb, pg_isready, pg_dump and pg_restore 15 on PATH",
            "/docker-entrypoint-initdb.d: *.sh and *.sql run once on an empty data folder, against a server on its unix socket only",
            "clients on other hosts sign in with a password (scram-sha-256)",
            "`postgres -c ...` as the command; SIGINT stops it",
        ],
    },
    StandIn {
        service: "redis",
        dockerfile: "redis.Dockerfile",
        environment: &[],
        contract: &[
            "user and group redis with uid and gid 999",
            "redis-server and redis-cli 7.0.15 on PATH, sh for the stack's command",
            "/usr/local/etc/redis for the configuration",
            "/data owned by redis, the working folder and a volume",
        ],
    },
    StandIn {
        service: "prometheus",
        dockerfile: "prometheus.Dockerfile",
        environment: &[],
        contract: &[
            "/bin/prometheus 2.42.0, /bin/sh and printf for the stack's entrypoint",
            "wget for the health check",
            "user nobody (65534); /prometheus owned by it, a volume",
        ],
    },
    StandIn {
        service: "alertmanager",
        dockerfile: "alertmanager.Dockerfile",
        environment: &[],
        contract: &[
            "/bin/alertmanager 0.25.0, /bin/sh with cat and tr for render.sh",
            "wget for the health check",
            "user nobody (65534); /alertmanager owned by it, a volume",
        ],
    },
    StandIn {
        service: "postgres-exporter",
        dockerfile: "postgres-exporter.Dockerfile",
        environment: &[
            "DATA_SOURCE_URI",
            "DATA_SOURCE_USER",
            "DATA_SOURCE_PASS_FILE",
        ],
        contract: &[
            "/bin/postgres_exporter 0.11.1 as the entrypoint, on :9187",
            "wget for the health check",
            "user nobody (65534)",
        ],
    },
    StandIn {
        service: "redis-exporter",
        dockerfile: "redis-exporter.Dockerfile",
        environment: &["REDIS_ADDR", "REDIS_PASSWORD_FILE"],
        contract: &[
            "/redis_exporter 1.45.0 as the entrypoint, on :9121",
            "wget for the health check",
            "user nobody (65534)",
        ],
    },
    StandIn {
        service: "nginx-exporter",
        dockerfile: "nginx-exporter.Dockerfile",
        environment: &[],
        contract: &[
            "nginx-prometheus-exporter 0.11.0 as the entrypoint, taking -nginx.scrape-uri, on :9113",
            "user nobody (65534)",
        ],
    },
    StandIn {
        service: "node-exporter",
        dockerfile: "node-exporter.Dockerfile",
        environment: &[],
        contract: &[
            "/bin/node_exporter 1.5.0 as the entrypoint, taking --path.rootfs, on :9100",
            "wget for the health check",
            "user nobody (65534)",
        ],
    },
    StandIn {
        service: "blackbox-exporter",
        dockerfile: "blackbox-exporter.Dockerfile",
        environment: &[],
        contract: &[
            "/bin/blackbox_exporter 0.23.0 as the entrypoint, taking --config.file, on :9115",
            "CA certificates for the TLS probes; wget for the health check",
            "user nobody (65534)",
        ],
    },
    StandIn {
        service: "certbot",
        dockerfile: "certbot.Dockerfile",
        environment: &[],
        contract: &[
            "certbot on PATH (Debian 12's 2.1.0: every option cli.ini and run.sh use)",
            "/bin/sh with touch, sleep, ln, mv and kill for run.sh and the deploy hook",
            "root as the user; /etc/letsencrypt and /var/lib/letsencrypt volumes",
        ],
    },
];

/// The services of compose.yaml Debian does not package, and so no stand-in replaces: left out
/// of runs here by the `metrics` profile, which has the rest of the monitoring services.
pub const NOT_PACKAGED: &[(&str, &str)] = &[
    ("grafana", "Debian 12 does not package Grafana"),
    ("loki", "Debian 12 does not package Loki"),
    ("alloy", "Debian 12 does not package Grafana Alloy"),
];

/// The image compose.yaml pins for each service that names one (anchors resolved).
pub fn pinned_images(compose: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let documents = YamlLoader::load_from_str(compose).context("parse docker/compose.yaml")?;
    let document = documents
        .first()
        .context("docker/compose.yaml holds no document")?;
    let Some(services) = document["services"].as_hash() else {
        anyhow::bail!("docker/compose.yaml has no services");
    };
    Ok(services
        .iter()
        .filter_map(|(name, service)| {
            let image = match &service["image"] {
                Yaml::String(image) => image.clone(),
                _ => return None,
            };
            Some((name.as_str()?.to_owned(), image))
        })
        .collect())
}

/// The `BASE_IMAGE` default of a Dockerfile (`ARG BASE_IMAGE=...`).
pub fn base_image_default(dockerfile: &str) -> Option<&str> {
    dockerfile
        .lines()
        .find_map(|line| line.trim().strip_prefix("ARG BASE_IMAGE="))
        .map(str::trim)
}

/// What `image` is on the engine: absent, a stand-in (for the service its label names) or
/// something else.
enum Present {
    Absent,
    StandIn,
    Other,
}

fn present(sh: &Shell, image: &str) -> Present {
    if !super::image_exists(sh, image) {
        return Present::Absent;
    }
    let docker = super::client();
    let template = format!("{{{{index .Config.Labels \"{LABEL}\"}}}}");
    match step::captured(cmd!(
        sh,
        "{docker} image inspect --format {template} {image}"
    )) {
        Ok(label) if !label.trim().is_empty() && label.trim() != "<no value>" => Present::StandIn,
        _ => Present::Other,
    }
}

/// Builds the stand-ins (those of `only` when given) on `base`, tagged as compose pins them.
pub fn build(sh: &Shell, base: &str, only: &[String], dry_run: bool) -> anyhow::Result<()> {
    let docker_dir = path::docker_dir();
    let compose = std::fs::read_to_string(docker_dir.join("compose.yaml"))
        .context("read docker/compose.yaml")?;
    let pinned = pinned_images(&compose)?;
    let nginx = std::fs::read_to_string(docker_dir.join("nginx.Dockerfile"))
        .context("read docker/nginx.Dockerfile")?;
    let slim = base_image_default(&nginx)
        .context("docker/nginx.Dockerfile has no `ARG BASE_IMAGE=` default")?
        .to_owned();
    let known: Vec<&str> = STAND_INS.iter().map(|stand_in| stand_in.service).collect();
    for name in only {
        anyhow::ensure!(
            known.contains(&name.as_str()) || name == "debian",
            "--only {name}: no stand-in has that name; they are debian, {}",
            known.join(", ")
        );
    }
    let wanted = |name: &str| only.is_empty() || only.iter().any(|item| item == name);
    let mut plan: Vec<(&StandIn, String)> = Vec::new();
    if wanted("debian") {
        plan.push((&DEBIAN_SLIM, slim));
    }
    for stand_in in STAND_INS.iter().filter(|stand_in| wanted(stand_in.service)) {
        let image = pinned.get(stand_in.service).with_context(|| {
            format!(
                "docker/compose.yaml has no image for {}; update xtask/src/docker/stand_ins.rs",
                stand_in.service
            )
        })?;
        plan.push((stand_in, image.clone()));
    }
    // A real image of the same name stays: refuse before building anything.
    for (stand_in, image) in &plan {
        if let Present::Other = present(sh, image) {
            anyhow::bail!(
                "{image} is on this engine and is not a stand-in (no {LABEL} label): stand-ins never replace a real image; \
                 leave it out with --only, or remove it with `docker rmi {image}` if you want the stand-in for {}",
                stand_in.service
            );
        }
    }
    let missing = missing_dockerfiles(&docker_dir.join("stand-ins"));
    anyhow::ensure!(
        missing.is_empty(),
        "docker/stand-ins lacks {}",
        missing.join(", ")
    );
    if dry_run {
        for (stand_in, image) in &plan {
            eprintln!(
                "xtask: would build {image} from docker/stand-ins/{} on {base}, honouring:",
                stand_in.dockerfile
            );
            for item in stand_in.environment.iter().chain(stand_in.contract) {
                eprintln!("    {item}");
            }
        }
        return Ok(());
    }
    if !super::image_exists(sh, base) {
        anyhow::ensure!(
            base == super::base::Variant::WithApt.default_tag(),
            "the base image {base} is not on this engine; make it with `cargo xtask docker base --with-apt --tag {base}`"
        );
        super::base::make(
            sh,
            base,
            super::base::Variant::WithApt,
            "bookworm",
            "http://deb.debian.org/debian",
            false,
        )?;
    }
    let docker = super::client();
    let context_dir = docker_dir.join("stand-ins");
    for (stand_in, image) in &plan {
        let file = context_dir.join(stand_in.dockerfile);
        let label = format!("{LABEL}={}", stand_in.service);
        let base_arg = format!("BASE_IMAGE={base}");
        step::run_with_spinner(&format!("stand-in {image}"), || {
            step::captured(cmd!(
                sh,
                "{docker} build --quiet --file {file} --build-arg {base_arg} --label {label} --tag {image} {context_dir}"
            ))
            .map(drop)
        })?;
    }
    eprintln!(
        "xtask: no stand-in for {} (not packaged by Debian 12); leave them out with COMPOSE_PROFILES=metrics",
        NOT_PACKAGED
            .iter()
            .map(|(service, _)| *service)
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// The stand-ins' Dockerfiles that `dir` lacks.
pub fn missing_dockerfiles(dir: &Path) -> Vec<&'static str> {
    std::iter::once(&DEBIAN_SLIM)
        .chain(STAND_INS)
        .filter(|stand_in| !dir.join(stand_in.dockerfile).is_file())
        .map(|stand_in| stand_in.dockerfile)
        .collect()
}
