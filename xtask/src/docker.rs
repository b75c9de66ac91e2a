//! `cargo xtask docker`: the app-web runtime image. `base` makes a Debian base where no
//! registry is reachable, `build` wraps the released binary in docker/app-web.Dockerfile, and
//! `smoke` runs the image against real PostgreSQL and Redis; `stand-ins` builds the stack's
//! third-party images from Debian's packages where none can be pulled.

pub mod base;
pub mod build;
pub mod glibc;
pub mod secrets;
pub mod smoke;
pub mod stand_ins;

use std::ffi::OsString;

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::setup::{self, Purpose};
use crate::{flags, path, step};

/// The base the runtime Dockerfile names by default.
pub const DEFAULT_BASE_IMAGE: &str = "gcr.io/distroless/cc-debian12:nonroot";

/// The repository part of the image's tags.
pub const REPOSITORY: &str = "app-web";

impl flags::Docker {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        if let flags::DockerCommand::Secrets {
            dir,
            force,
            dry_run,
        } = self.command
        {
            let dir = dir.unwrap_or_else(|| path::docker_dir().join("secrets"));
            return secrets::write_missing(&dir, force, dry_run);
        }
        setup::require(sh, &[Purpose::Containers])?;
        require_engine(sh)?;
        match self.command {
            flags::DockerCommand::Base {
                tag,
                with_apt,
                suite,
                mirror,
                force,
            } => {
                let variant = if with_apt {
                    base::Variant::WithApt
                } else {
                    base::Variant::Runtime
                };
                let tag = tag.unwrap_or_else(|| variant.default_tag().to_owned());
                base::make(sh, &tag, variant, &suite, &mirror, force)
            }
            flags::DockerCommand::Build {
                dist,
                base_image,
                repository,
            } => {
                let dist = dist.unwrap_or_else(path::dist_dir);
                let image = build::build(sh, &dist, &base_image, &repository)?;
                eprintln!(
                    "xtask: built {} ({}, {:.1} MB)",
                    image.tags.join(", "),
                    image.id,
                    image.size as f64 / 1e6
                );
                Ok(())
            }
            flags::DockerCommand::Secrets { .. } => unreachable!("handled above"),
            flags::DockerCommand::Smoke { image } => {
                let image = match image {
                    Some(image) => image,
                    None => format!(
                        "{REPOSITORY}:{}",
                        crate::workspace::Product::load()?.version
                    ),
                };
                smoke::smoke(sh, &image)
            }
            flags::DockerCommand::Push { image } => push(sh, &image),
            flags::DockerCommand::StandIns {
                base_image,
                only,
                dry_run,
            } => stand_ins::build(sh, &base_image, &only, dry_run),
        }
    }
}

/// Pushes `image` and prints the registry's digest for it, also to GITHUB_OUTPUT (`digest=`)
/// when that is set.
fn push(sh: &Shell, image: &str) -> anyhow::Result<()> {
    let docker = client();
    step::run(&format!("docker push {image}"), || {
        step::captured(cmd!(sh, "{docker} push {image}")).map(drop)
    })?;
    let (repository, _) = image
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
        .unwrap_or((image, ""));
    let digests = inspect(sh, image, "{{range .RepoDigests}}{{println .}}{{end}}")?;
    let digest = digests
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{repository}@")))
        .with_context(|| format!("the registry gave {image} no digest: {digests:?}"))?
        .to_owned();
    println!("{digest}");
    crate::ci::github_output("digest", &digest)
}

/// The docker client: `$DOCKER` when set, else `docker` from `PATH`.
pub fn client() -> OsString {
    local_servers::docker_client()
}

/// Fails with what to do when no Docker engine answers.
pub fn require_engine(sh: &Shell) -> anyhow::Result<()> {
    let docker = client();
    let format = "{{.Server.Version}}";
    step::captured(cmd!(sh, "{docker} version --format {format}"))
        .map(drop)
        .context(
            "no Docker engine answers; start one (as root: `dockerd &`, or `systemctl start docker`) \
             or point DOCKER_HOST at one",
        )
}

pub fn image_exists(sh: &Shell, image: &str) -> bool {
    let docker = client();
    let format = "{{.Id}}";
    step::captured(cmd!(sh, "{docker} image inspect --format {format} {image}")).is_ok()
}

/// One field of `docker image inspect` or `docker inspect`, by Go template.
pub fn inspect(sh: &Shell, object: &str, template: &str) -> anyhow::Result<String> {
    let docker = client();
    let text = step::captured(cmd!(sh, "{docker} inspect --format {template} {object}"))
        .with_context(|| format!("inspect {object}"))?;
    Ok(text.trim().to_owned())
}

/// Fails with the ways to get `image` when the engine does not have it.
pub fn require_image(sh: &Shell, image: &str, how: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        image_exists(sh, image),
        "the image {image} is not on this Docker engine; {how}"
    );
    Ok(())
}
