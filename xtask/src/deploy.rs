//! `cargo xtask deploy --env NAME --tag TAG`: the compose stack of one environment, deployed to
//! its host over SSH. The files the environment lists are uploaded (a tar stream into the
//! deploy folder), `.env` is written from the environment's settings with the new image, the
//! image is pulled unless the host has it, migrations run, the services come up, the app's
//! health check must pass and `cargo xtask smoke` must pass against the environment's URL. If
//! any of that fails, the previous tag is put back the same way and the command says so. Every
//! attempt and its outcome is a line in `.deploy/history.jsonl` on the host.
//!
//! Environments live in `deploy/environments.toml` (or `--config`); SSH uses the key and
//! known-hosts file the environment names (or `DEPLOY_SSH_KEY` / `DEPLOY_KNOWN_HOSTS` holding
//! them), in batch mode with strict host key checking.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Deserialize;
use shell_words::quote;
use xshell::{Shell, cmd};

use crate::{flags, path, step};

/// One environment of `deploy/environments.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// `user@host` to SSH to.
    pub ssh: String,
    #[serde(default = "default_ssh_port")]
    pub ssh_port: u16,
    /// The private key (a path relative to the configuration file); `DEPLOY_SSH_KEY` holds
    /// the key itself instead.
    pub ssh_key: Option<PathBuf>,
    /// The host's public keys in known_hosts form (a path); `DEPLOY_KNOWN_HOSTS` instead.
    pub known_hosts: Option<PathBuf>,
    /// The deploy folder on the host.
    pub dir: String,
    /// The site's public URL, for the smoke test.
    pub url: String,
    /// Trust this CA for the smoke test (a path), e.g. a staging CA.
    pub smoke_cacert: Option<PathBuf>,
    /// The compose command on the host.
    #[serde(default = "default_compose")]
    pub compose: String,
    /// Folder the `files` are relative to (relative to the configuration file).
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// Files and folders uploaded into the deploy folder, keeping their paths.
    pub files: Vec<PathBuf>,
    /// The compose files, as uploaded (relative to the deploy folder); `.env` is written next
    /// to the first.
    pub compose_files: Vec<String>,
    /// The environment's settings (no secrets; they stay on the host), the start of `.env`.
    pub env_file: Option<PathBuf>,
    /// The image repository; the deployed tag is appended.
    pub image: String,
    /// The variable `.env` names the image in.
    #[serde(default = "default_image_variable")]
    pub image_variable: String,
    /// The service whose health decides the deploy.
    #[serde(default = "default_service")]
    pub service: String,
    /// A one-shot service that applies the migrations, run before the others come up.
    pub migrate_service: Option<String>,
    /// Seconds the service may take to become healthy.
    #[serde(default = "default_health_timeout")]
    pub health_timeout_secs: u64,
}

fn default_ssh_port() -> u16 {
    22
}
fn default_compose() -> String {
    "docker compose".into()
}
fn default_image_variable() -> String {
    "APP_WEB_IMAGE".into()
}
fn default_service() -> String {
    "app-web".into()
}
fn default_health_timeout() -> u64 {
    180
}

/// The environments of a configuration file, and the folder its paths are relative to.
pub fn load(config: &Path) -> anyhow::Result<(BTreeMap<String, Environment>, PathBuf)> {
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("read the deploy configuration {}", config.display()))?;
    let environments: BTreeMap<String, Environment> = toml::from_str(&text)
        .with_context(|| format!("{} is not a valid deploy configuration", config.display()))?;
    let base = config
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok((environments, base))
}

/// SSH to one host: the key and known-hosts files in a private folder, batch mode.
struct Remote<'a> {
    sh: &'a Shell,
    target: String,
    options: Vec<String>,
    _secrets: tempfile::TempDir,
}

impl<'a> Remote<'a> {
    fn new(sh: &'a Shell, environment: &Environment, base: &Path) -> anyhow::Result<Self> {
        let secrets = tempfile::tempdir().context("make a folder for the SSH key")?;
        let from = |configured: &Option<PathBuf>, variable: &str, name: &str| {
            // ssh splits its options at spaces, so the file names have none.
            let file = secrets.path().join(name.replace(' ', "_"));
            if let Ok(value) = std::env::var(variable) {
                crate::atomic_file::write(&file, format!("{}\n", value.trim()).as_bytes(), 0o600)?;
                return Ok(file);
            }
            let configured = configured.as_ref().with_context(|| {
                format!("the environment names no {name} file and {variable} is not set")
            })?;
            let source = base.join(configured);
            let bytes = std::fs::read(&source)
                .with_context(|| format!("read the {name} file {}", source.display()))?;
            crate::atomic_file::write(&file, &bytes, 0o600)?;
            anyhow::Ok(file)
        };
        let key = from(&environment.ssh_key, "DEPLOY_SSH_KEY", "ssh key")?;
        let known_hosts = from(
            &environment.known_hosts,
            "DEPLOY_KNOWN_HOSTS",
            "known hosts",
        )?;
        let options = vec![
            "-i".into(),
            key.display().to_string(),
            "-p".into(),
            environment.ssh_port.to_string(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "StrictHostKeyChecking=yes".into(),
            "-o".into(),
            format!("UserKnownHostsFile={}", known_hosts.display()),
            "-o".into(),
            "ConnectTimeout=15".into(),
        ];
        Ok(Self {
            sh,
            target: environment.ssh.clone(),
            options,
            _secrets: secrets,
        })
    }

    /// Runs `script` (sh) on the host with `stdin`; its output, or an error with it.
    fn run(&self, script: &str, stdin: &[u8]) -> anyhow::Result<String> {
        let (options, target) = (&self.options, &self.target);
        let output = cmd!(self.sh, "ssh {options...} {target} {script}")
            .quiet()
            .ignore_status()
            .stdin(stdin)
            .output()
            .context("run ssh")?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        anyhow::ensure!(
            output.status.success(),
            "on {target}: `{script}` failed ({}):\n{}",
            output.status,
            text.trim()
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// The files to upload: in a git checkout only those git tracks (so local secrets and build
/// output stay behind), elsewhere everything under each listed path; sorted.
fn files_to_upload(root: &Path, listed: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    for file in listed {
        anyhow::ensure!(
            root.join(file).exists(),
            "{} (listed in the environment's files) does not exist",
            root.join(file).display()
        );
    }
    let tracked = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z", "--"])
        .args(listed)
        .output();
    let mut files: Vec<PathBuf> = match tracked {
        Ok(output) if output.status.success() && root.join(".git").exists() => output
            .stdout
            .split(|byte| *byte == 0)
            .filter(|name| !name.is_empty())
            .map(|name| PathBuf::from(String::from_utf8_lossy(name).into_owned()))
            .collect(),
        _ => {
            let mut found = Vec::new();
            for file in listed {
                for entry in walkdir::WalkDir::new(root.join(file)).follow_links(true) {
                    let entry = entry.with_context(|| format!("read {}", file.display()))?;
                    if !entry.file_type().is_dir() {
                        found.push(entry.path().strip_prefix(root)?.to_path_buf());
                    }
                }
            }
            found
        }
    };
    files.sort();
    Ok(files)
}

/// A tar of `files` (relative to `root`) for the host to unpack.
fn bundle(root: &Path, listed: &[PathBuf]) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    for file in files_to_upload(root, listed)? {
        let source = root.join(&file);
        builder
            .append_path_with_name(&source, &file)
            .with_context(|| format!("pack {}", source.display()))?;
    }
    builder.into_inner().context("finish the upload")
}

/// What one deploy attempt records on the host.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub time: String,
    pub env: String,
    pub tag: String,
    pub previous: Option<String>,
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

struct Deploy<'a> {
    name: &'a str,
    environment: &'a Environment,
    base: &'a Path,
    remote: Remote<'a>,
    sh: &'a Shell,
}

impl Deploy<'_> {
    fn dir(&self) -> String {
        quote(&self.environment.dir).into_owned()
    }

    fn compose(&self) -> String {
        let files: Vec<String> = self
            .environment
            .compose_files
            .iter()
            .map(|file| format!("-f {}", quote(file)))
            .collect();
        format!(
            "cd {} && {} {}",
            self.dir(),
            self.environment.compose,
            files.join(" ")
        )
    }

    fn previous_tag(&self) -> anyhow::Result<Option<String>> {
        let text = self.remote.run(
            &format!("cat {}/.deploy/current-tag 2>/dev/null || true", self.dir()),
            b"",
        )?;
        Ok(Some(text.trim().to_owned()).filter(|tag| !tag.is_empty()))
    }

    fn upload(&self) -> anyhow::Result<()> {
        let root = match &self.environment.root {
            Some(root) => self.base.join(root),
            None => path::project_root(),
        };
        let tar = bundle(&root, &self.environment.files)?;
        self.remote.run(
            &format!(
                "mkdir -p {dir}/.deploy && tar -x -C {dir}",
                dir = self.dir()
            ),
            &tar,
        )?;
        Ok(())
    }

    /// `.env` beside the first compose file: the environment's settings, then the image.
    fn write_env(&self, tag: &str) -> anyhow::Result<()> {
        let mut text = match &self.environment.env_file {
            Some(file) => {
                let file = self.base.join(file);
                std::fs::read_to_string(&file).with_context(|| {
                    format!("read the environment's settings {}", file.display())
                })?
            }
            None => String::new(),
        };
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!(
            "{}={}:{tag}\n",
            self.environment.image_variable, self.environment.image
        ));
        let first = self
            .environment
            .compose_files
            .first()
            .context("the environment lists no compose_files")?;
        let env_dir = Path::new(first)
            .parent()
            .map(|dir| dir.display().to_string())
            .filter(|dir| !dir.is_empty())
            .unwrap_or_else(|| ".".into());
        self.remote.run(
            &format!(
                "cd {} && cat > {env}/.env.new && mv {env}/.env.new {env}/.env",
                self.dir(),
                env = quote(&env_dir)
            ),
            text.as_bytes(),
        )?;
        Ok(())
    }

    /// Pull, migrate, up, wait for health, smoke: the tag runs and answers, or an error.
    fn roll_out(&self, tag: &str) -> anyhow::Result<()> {
        let image = quote(&format!("{}:{tag}", self.environment.image)).into_owned();
        self.write_env(tag)?;
        step::run(&format!("pull {}:{tag}", self.environment.image), || {
            self.remote.run(
                &format!("docker image inspect {image} >/dev/null 2>&1 || docker pull {image}"),
                b"",
            )
        })?;
        if let Some(migrate) = &self.environment.migrate_service {
            step::run("migrations", || {
                self.remote.run(
                    &format!("{} run --rm {}", self.compose(), quote(migrate)),
                    b"",
                )
            })?;
        }
        step::run("services up", || {
            self.remote.run(
                &format!("{} up -d --no-build --remove-orphans", self.compose()),
                b"",
            )
        })?;
        step::run(&format!("{} healthy", self.environment.service), || {
            self.wait_healthy()
        })?;
        step::run("smoke test", || {
            flags::Smoke {
                url: self.environment.url.clone(),
                cacert: self
                    .environment
                    .smoke_cacert
                    .as_ref()
                    .map(|file| self.base.join(file)),
                resolve: Vec::new(),
                expect_version: None,
                expect_headers: false,
            }
            .run(self.sh)
        })?;
        Ok(())
    }

    fn wait_healthy(&self) -> anyhow::Result<()> {
        let service = quote(&self.environment.service);
        let script = format!(
            "id=$({} ps -q {service}) && [ -n \"$id\" ] && docker inspect --format '{{{{if .State.Health}}}}{{{{.State.Health.Status}}}}{{{{else}}}}{{{{.State.Status}}}}{{{{end}}}}' $id",
            self.compose()
        );
        let deadline = Instant::now() + Duration::from_secs(self.environment.health_timeout_secs);
        loop {
            let status = self.remote.run(&script, b"").unwrap_or_default();
            match status.trim() {
                "healthy" => return Ok(()),
                "unhealthy" | "exited" | "dead" => anyhow::bail!(
                    "{} is {} on the host",
                    self.environment.service,
                    status.trim()
                ),
                _ if Instant::now() > deadline => anyhow::bail!(
                    "{} was not healthy within {}s (last: {:?})",
                    self.environment.service,
                    self.environment.health_timeout_secs,
                    status.trim()
                ),
                _ => std::thread::sleep(Duration::from_secs(1)),
            }
        }
    }

    fn record(&self, record: &Record) -> anyhow::Result<()> {
        let line = format!("{}\n", serde_json::to_string(record)?);
        self.remote.run(
            &format!(
                "mkdir -p {dir}/.deploy && cat >> {dir}/.deploy/history.jsonl",
                dir = self.dir()
            ),
            line.as_bytes(),
        )?;
        if record.outcome == "deployed" {
            self.remote.run(
                &format!(
                    "printf '%s\\n' {} > {}/.deploy/current-tag",
                    quote(&record.tag),
                    self.dir()
                ),
                b"",
            )?;
        }
        Ok(())
    }

    fn history(&self) -> anyhow::Result<Vec<Record>> {
        let text = self.remote.run(
            &format!(
                "cat {}/.deploy/history.jsonl 2>/dev/null || true",
                self.dir()
            ),
            b"",
        )?;
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).context("a history line is not valid"))
            .collect()
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl flags::Deploy {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let config = self
            .config
            .unwrap_or_else(|| path::project_root().join("deploy/environments.toml"));
        let (environments, base) = load(&config)?;
        let environment = environments.get(&self.env).with_context(|| {
            format!(
                "{} has no environment {:?}; it has {}",
                config.display(),
                self.env,
                environments.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })?;
        if self.dry_run {
            let tag = self.tag.as_deref().unwrap_or("<tag>");
            eprintln!(
                "xtask: would deploy {}:{tag} to {} ({}:{}) in {}: upload {}, then {} with {}, wait for {} to be healthy and smoke-test {}",
                environment.image,
                self.env,
                environment.ssh,
                environment.ssh_port,
                environment.dir,
                environment
                    .files
                    .iter()
                    .map(|file| file.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                environment.compose,
                environment.compose_files.join(", "),
                environment.service,
                environment.url
            );
            return Ok(());
        }
        crate::setup::require(sh, &[crate::setup::Purpose::Deploys])?;
        let remote = Remote::new(sh, environment, &base)?;
        let deploy = Deploy {
            name: &self.env,
            environment,
            base: &base,
            remote,
            sh,
        };
        if self.history {
            for record in deploy.history()? {
                println!("{}", serde_json::to_string(&record)?);
            }
            return Ok(());
        }
        let tag = self
            .tag
            .context("name the image tag to deploy with --tag (or ask for --history)")?;
        deploy.attempt(&tag)
    }
}

impl Deploy<'_> {
    fn attempt(&self, tag: &str) -> anyhow::Result<()> {
        let previous = step::run("read the deployed tag", || self.previous_tag())?;
        step::run(&format!("upload to {}", self.environment.ssh), || {
            self.upload()
        })?;
        let record = |outcome: &str, reason: Option<String>| Record {
            time: now(),
            env: self.name.to_owned(),
            tag: tag.to_owned(),
            previous: previous.clone(),
            outcome: outcome.to_owned(),
            reason,
        };
        let failure = match self.roll_out(tag) {
            Ok(()) => {
                self.record(&record("deployed", None))?;
                eprintln!(
                    "xtask: {}:{tag} deployed to {}",
                    self.environment.image, self.name
                );
                return Ok(());
            }
            Err(err) => format!("{err:#}"),
        };
        let Some(previous_tag) = previous.clone() else {
            self.record(&record("failed", Some(failure.clone())))?;
            anyhow::bail!(
                "deploying {tag} to {} failed and there is no earlier deploy to go back to: {failure}",
                self.name
            );
        };
        eprintln!("xtask: deploying {tag} failed; putting {previous_tag} back: {failure}");
        match self.roll_out(&previous_tag) {
            Ok(()) => {
                self.record(&record(
                    &format!("rolled back to {previous_tag}"),
                    Some(failure.clone()),
                ))?;
                anyhow::bail!(
                    "deploying {tag} to {} failed, and {previous_tag} is running again: {failure}",
                    self.name
                )
            }
            Err(rollback) => {
                self.record(&record(
                    "failed, rollback failed",
                    Some(format!("{failure}; rollback: {rollback:#}")),
                ))?;
                anyhow::bail!(
                    "deploying {tag} to {} failed ({failure}) and putting {previous_tag} back failed too: {rollback:#}",
                    self.name
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_configuration_reads_and_names_existing_files() {
        let (environments, base) =
            load(&path::project_root().join("deploy/environments.toml")).unwrap();
        for name in ["dev", "staging", "production"] {
            let environment = environments
                .get(name)
                .unwrap_or_else(|| panic!("no {name} environment"));
            let root = environment
                .root
                .as_ref()
                .map(|root| base.join(root))
                .unwrap_or_else(path::project_root);
            for file in &environment.files {
                assert!(
                    root.join(file).exists(),
                    "{name}: {} is missing",
                    file.display()
                );
            }
            if let Some(env_file) = &environment.env_file {
                assert!(
                    base.join(env_file).is_file(),
                    "{name}: {}",
                    env_file.display()
                );
            }
            assert!(environment.url.starts_with("https://"), "{name}");
        }
    }

    /// What the host's shell gets: words with spaces or quotes in single quotes.
    #[test]
    fn quoting_survives_the_host_shell() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
