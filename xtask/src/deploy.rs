//! `cargo xtask deploy --env NAME --tag TAG`: the compose stack of one environment, deployed to
//! its host over SSH. The files the environment lists are uploaded (a tar stream into the
//! deploy folder), `.env` is written from the environment's settings with the new image, the
//! image is pulled unless the host has it, the images the compose files build are built and
//! migrations run. With a `proxy_service` and the app running, the new app starts beside the
//! old one and must be healthy and pass `cargo xtask smoke` on its own address (through an SSH
//! tunnel); only then does nginx switch to it, by a reload, and the old one finish its
//! requests and stop, so no request is dropped, and a new version that fails leaves the old
//! one serving with the settings put back. Otherwise (the first deploy, or no proxy) the
//! services come up in place. Then the smoke test must pass against the environment's URL; if
//! it fails after the switch, the previous tag is put back the same way. Every attempt and
//! its outcome is a line in `.deploy/history.jsonl` on the host.
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
    /// Answer HOST:PORT with ADDRESS in the smoke test instead of DNS (as curl's --resolve),
    /// e.g. for a new host before its name points at it.
    #[serde(default)]
    pub smoke_resolve: Vec<String>,
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
    /// The service built from docker/backup.Dockerfile: before the migrations of any deploy
    /// but a host's first, `run` in it takes a backup, whose name the deploy history keeps
    /// (what to restore if the new schema has to be undone).
    pub backup_service: Option<String>,
    /// The service that proxies to `service`, built from docker/nginx.Dockerfile. With it, a
    /// deploy starts the new version beside the running one, smoke-tests it on its own
    /// address, switches the proxy to it (a reload, not a restart) and lets the old one finish
    /// its requests before it stops: no request is dropped, and a new version that fails
    /// leaves the old one serving. Without it, `service` is replaced in place.
    pub proxy_service: Option<String>,
    /// The port `service` listens on inside its container.
    #[serde(default = "default_service_port")]
    pub service_port: u16,
    /// Whether the host's engine may run the stand-ins of `cargo xtask docker stand-ins`
    /// (images built from Debian's packages under the official images' names): for test
    /// hosts only. Without it, a deploy to a host that has any stops before migrating.
    #[serde(default)]
    pub allow_stand_ins: bool,
    /// Seconds the service may take to become healthy.
    #[serde(default = "default_health_timeout")]
    pub health_timeout_secs: u64,
    /// On the first deploy to a host, seconds the smoke test waits for the site's real
    /// certificate (nginx starts on a self-signed one until certbot has it).
    #[serde(default = "default_certificate_timeout")]
    pub certificate_timeout_secs: u64,
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
fn default_service_port() -> u16 {
    8080
}
fn default_health_timeout() -> u64 {
    180
}
fn default_certificate_timeout() -> u64 {
    300
}

/// What `--tag` names: an image tag or a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagKind {
    Tag,
    Digest,
}

/// The rule Docker's reference grammar sets: a tag is 1 to 128 of letters, digits, `_`, `.`
/// and `-`, not starting with `.` or `-`; a digest is `sha256:` and 64 lower-case hex digits.
/// Anything else (a newline, a space, `=`) could change `.env` or the host's shell, so it is
/// refused before anything is sent.
fn tag_kind(tag: &str) -> Option<TagKind> {
    if let Some(hex) = tag.strip_prefix("sha256:") {
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        return valid.then_some(TagKind::Digest);
    }
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    let valid = first_ok
        && tag.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    valid.then_some(TagKind::Tag)
}

/// `--tag`'s parser: the tag as given, or an error naming the rule it breaks.
pub fn parse_tag(tag: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        tag_kind(tag).is_some(),
        "{tag:?} is not an image tag or digest: a tag is 1 to 128 letters, digits, `_`, `.` and \
         `-`, not starting with `.` or `-` (e.g. 1.4.2 or 3f2a9c1d0b7e); a digest is `sha256:` \
         and 64 lower-case hex digits"
    );
    Ok(tag.to_owned())
}

/// `image` at `tag`: `image:tag`, or `image@sha256:...` for a digest.
fn image_reference(image: &str, tag: &str) -> anyhow::Result<String> {
    parse_tag(tag)?;
    let separator = if tag_kind(tag) == Some(TagKind::Digest) {
        '@'
    } else {
        ':'
    };
    Ok(format!("{image}{separator}{tag}"))
}

/// The host's own settings, beside `.env`: a deploy reads it and never writes it, so what an
/// operator sets there (keys, buckets, anything host-specific) survives every deploy.
pub const LOCAL_ENV: &str = "local.env";

/// The marker the shipped environment files put where only the operator knows the value.
const PLACEHOLDER: &str = "REPLACE_WITH";

impl Environment {
    /// The environment's settings file's text (empty without one).
    pub fn settings(&self, base: &Path) -> anyhow::Result<String> {
        match &self.env_file {
            Some(file) => {
                let file = base.join(file);
                std::fs::read_to_string(&file)
                    .with_context(|| format!("read the environment's settings {}", file.display()))
            }
            None => Ok(String::new()),
        }
    }

    /// Every service the settings name, with the setting that names it.
    fn named_services(&self) -> impl Iterator<Item = (&'static str, &String)> {
        std::iter::once(("service", &self.service))
            .chain(
                self.migrate_service
                    .iter()
                    .map(|service| ("migrate_service", service)),
            )
            .chain(
                self.backup_service
                    .iter()
                    .map(|service| ("backup_service", service)),
            )
            .chain(
                self.proxy_service
                    .iter()
                    .map(|service| ("proxy_service", service)),
            )
    }

    /// The folder `.env` goes in, relative to the deploy folder: the first compose file's.
    pub fn env_dir(&self) -> anyhow::Result<String> {
        let first = self
            .compose_files
            .first()
            .context("the environment lists no compose_files")?;
        Ok(Path::new(first)
            .parent()
            .map(|dir| dir.display().to_string())
            .filter(|dir| !dir.is_empty())
            .unwrap_or_else(|| ".".into()))
    }
}

/// Whether `id` is a full container id as Docker prints it (64 lower-case hex digits).
fn container_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `name` can be a compose service's: letters, digits, `_`, `.` and `-`, starting
/// with a letter or digit (so never an option).
fn service_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The variable a `.env` line sets, if it sets one.
fn env_key(line: &str) -> Option<&str> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    line.split_once('=').map(|(key, _)| key.trim())
}

/// The `.env` a deploy writes ([`merge_env`]), refused while any value still holds a
/// placeholder of the shipped files, naming the variables and where to set them.
pub fn env_text(
    settings: &str,
    local: &str,
    image_variable: &str,
    image: &str,
) -> anyhow::Result<String> {
    let text = merge_env(settings, local, image_variable, image)?;
    let unset = placeholders(&text);
    anyhow::ensure!(
        unset.is_empty(),
        "{} still hold the shipped placeholder ({PLACEHOLDER}...): set them in the host's {LOCAL_ENV} \
         beside .env (deploys never touch it) or in the environment's settings file",
        unset.join(", ")
    );
    Ok(text)
}

/// The variables whose values are still the shipped placeholder.
pub fn placeholders(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|line| line.contains(PLACEHOLDER))
        .filter_map(env_key)
        .collect()
}

/// The environment's `settings`, less what the host's `local` file sets, then that file's
/// lines, then `image_variable=image`. A variable the host sets wins over the environment's;
/// the image is the deploy's alone.
pub fn merge_env(
    settings: &str,
    local: &str,
    image_variable: &str,
    image: &str,
) -> anyhow::Result<String> {
    let local_keys: Vec<&str> = local.lines().filter_map(env_key).collect();
    anyhow::ensure!(
        !local_keys.contains(&image_variable),
        "{LOCAL_ENV} sets {image_variable}, which each deploy chooses with --tag: remove it from {LOCAL_ENV}"
    );
    let mut text = String::new();
    for line in settings.lines() {
        if env_key(line).is_some_and(|key| local_keys.contains(&key) || key == image_variable) {
            continue;
        }
        text.push_str(line);
        text.push('\n');
    }
    if !local.trim().is_empty() {
        text.push_str(&format!(
            "# From the host's {LOCAL_ENV}, which deploys never write.\n"
        ));
        for line in local.lines() {
            text.push_str(line);
            text.push('\n');
        }
    }
    text.push_str(&format!("{image_variable}={image}\n"));
    Ok(text)
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

/// A port on 127.0.0.1 that SSH forwards to an address the host reaches; closed on drop.
struct Tunnel {
    child: std::process::Child,
    port: u16,
    log: tempfile::NamedTempFile,
}

impl Tunnel {
    /// `err` with what ssh said, which names a forwarding the host refused.
    fn explain(&self, err: anyhow::Error) -> anyhow::Error {
        let said = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        if said.trim().is_empty() {
            err
        } else {
            err.context(format!("ssh, forwarding to the container: {}", said.trim()))
        }
    }
}

impl std::fmt::Display for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "127.0.0.1:{}", self.port)
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The host's deploy lock, held while this lives (the SSH session holding it ends on drop).
struct Lock(std::process::Child);

impl Drop for Lock {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Remote<'_> {
    /// Takes `dir/.deploy/lock` on the host (flock), or says that another deploy holds it.
    fn lock(&self, dir: &str) -> anyhow::Result<Lock> {
        use std::io::BufRead;
        let script = format!(
            "mkdir -p {dir}/.deploy && exec flock -n {dir}/.deploy/lock sh -c 'echo locked; exec cat'"
        );
        let mut child = std::process::Command::new("ssh")
            .args(&self.options)
            .arg(&self.target)
            .arg(&script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("run ssh")?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("ssh's output")?;
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() == "locked" {
            return Ok(Lock(child));
        }
        drop(child.stdin.take());
        let output = child.wait_with_output().context("wait for ssh")?;
        let said = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        anyhow::ensure!(
            output.status.code() != Some(1),
            "another deploy holds the lock {dir}/.deploy/lock on {} (flock): wait for it to finish",
            self.target
        );
        anyhow::bail!(
            "could not take the deploy lock {dir}/.deploy/lock on {} ({}): {said}",
            self.target,
            output.status
        )
    }

    /// Forwards a local port to `address:port` as the host sees it (a container's address on
    /// the stack's network), for as long as the tunnel lives.
    fn forward(&self, address: &std::net::Ipv4Addr, port: u16) -> anyhow::Result<Tunnel> {
        let local = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("find a free port on 127.0.0.1")?
            .port();
        let log = tempfile::NamedTempFile::new().context("make a file for ssh's messages")?;
        let child = std::process::Command::new("ssh")
            .args(&self.options)
            .args(["-N", "-o", "ExitOnForwardFailure=yes", "-L"])
            .arg(format!("127.0.0.1:{local}:{address}:{port}"))
            .arg(&self.target)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log.reopen().context("open ssh's messages")?)
            .spawn()
            .context("run ssh")?;
        let mut tunnel = Tunnel {
            child,
            port: local,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let listening = std::net::TcpStream::connect(("127.0.0.1", local)).is_ok();
            // Still running once something listens: ssh holds the port, not another program
            // that took it first (ssh would have exited, ExitOnForwardFailure).
            let exited = tunnel.child.try_wait().context("wait for ssh")?;
            if listening && exited.is_none() {
                return Ok(tunnel);
            }
            if exited.is_some() || Instant::now() > deadline {
                anyhow::bail!(
                    "ssh did not forward 127.0.0.1:{local} to {address}:{port} on {} (the host's sshd must allow TCP forwarding): {}",
                    self.target,
                    std::fs::read_to_string(tunnel.log.path())
                        .unwrap_or_default()
                        .trim()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Whether a file stays on this machine whatever else is uploaded: a `.env`, a `local.env`
/// (the host's own, which an upload must never replace) and anything in a `secrets` folder.
fn stays_behind(file: &Path) -> bool {
    file.file_name()
        .is_some_and(|name| name == ".env" || name == LOCAL_ENV)
        || file.components().any(|part| part.as_os_str() == "secrets")
}

/// The files to upload: in a git checkout only those git tracks (so local secrets and build
/// output stay behind), elsewhere everything under each listed path; sorted. Never a file
/// [`stays_behind`].
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
    files.retain(|file| !stays_behind(file));
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
    /// The backup taken before the migrations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// For a rollback: the tag it undid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
    /// For a rollback with --restore: the backup restored first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored: Option<String>,
}

struct Deploy<'a> {
    name: &'a str,
    environment: &'a Environment,
    base: &'a Path,
    remote: Remote<'a>,
    sh: &'a Shell,
    /// The name of the backup this deploy took before migrating, once it has.
    backup: std::cell::RefCell<Option<String>>,
    /// For a rollback: the tag it undoes, and the backup it restored.
    rollback_of: std::cell::RefCell<Option<String>>,
    restored: std::cell::RefCell<Option<String>>,
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

    /// `.env` beside the first compose file: the environment's settings, the host's own
    /// `local.env` beside it (which no deploy writes), then the image.
    fn write_env(&self, tag: &str) -> anyhow::Result<()> {
        let (env_dir, text) = self.env_for(tag)?;
        self.remote.run(
            &format!(
                "cd {} && umask 077 && rm -f {env}/.env.new && cat > {env}/.env.new && mv {env}/.env.new {env}/.env",
                self.dir(),
                env = quote(&env_dir)
            ),
            text.as_bytes(),
        )?;
        Ok(())
    }

    /// The folder `.env` goes in and the text a deploy of `tag` writes there, or why there is
    /// none (a placeholder still in force, the image set in `local.env`). A `local.env` that
    /// exists but cannot be read is an error, not an empty file.
    fn env_for(&self, tag: &str) -> anyhow::Result<(String, String)> {
        let settings = self.environment.settings(self.base)?;
        let env_dir = self.environment.env_dir()?;
        let local_file = format!("{}/{}/{LOCAL_ENV}", self.dir(), quote(&env_dir));
        let local = self.remote.run(
            &format!("if [ -e {local_file} ]; then cat {local_file}; fi"),
            b"",
        )?;
        let text = env_text(
            &settings,
            &local,
            &self.environment.image_variable,
            &image_reference(&self.environment.image, tag)?,
        )
        .with_context(|| {
            format!(
                "the settings for {} (the environment's file, then {}/{env_dir}/{LOCAL_ENV} on the host)",
                self.name, self.environment.dir
            )
        })?;
        Ok((env_dir, text))
    }

    /// Pull, build, migrate, start, wait for health, smoke: the tag runs and answers, or how
    /// far it got. On a `first` deploy to the host the smoke test first waits for a trusted
    /// certificate.
    fn roll_out(&self, tag: &str, first: bool) -> Result<(), Failure> {
        self.save_env().map_err(Failure::Kept)?;
        self.prepare(tag, first).map_err(Failure::Kept)?;
        let service = &self.environment.service;
        let running = self.containers(true).map_err(Failure::Kept)?;
        match &self.environment.proxy_service {
            Some(proxy) if !running.is_empty() => {
                // The proxy first, so that the one the switch talks to is this tag's (a
                // changed nginx image or setting recreates it: that is a restart).
                step::run(&format!("{proxy} up to date"), || {
                    self.remote.run(
                        &format!(
                            "{} up -d --no-deps --no-build {}",
                            self.compose(),
                            quote(proxy)
                        ),
                        b"",
                    )
                })
                .map_err(Failure::Kept)?;
                self.start_beside(tag, proxy, &running)
                    .map_err(Failure::Kept)?;
                self.drain(proxy, &running).map_err(Failure::Changed)?;
            }
            proxy => {
                step::run("services up", || {
                    self.remote.run(
                        &format!("{} up -d --no-build --remove-orphans", self.compose()),
                        b"",
                    )
                })
                .map_err(Failure::Changed)?;
                let ids = self.containers(false).map_err(Failure::Changed)?;
                step::run(&format!("{service} healthy"), || self.wait_healthy(&ids))
                    .map_err(Failure::Changed)?;
                if let Some(proxy) = proxy {
                    // nginx looks up the service's address when it starts or reloads: one
                    // that ran before this deploy replaced the service finds the new one.
                    step::run(&format!("{proxy} proxying to {service}"), || {
                        self.set_upstream(proxy, &[])
                    })
                    .map_err(Failure::Changed)?;
                }
            }
        }
        step::run("smoke test", || {
            self.smoke(
                &self.environment.url,
                if first {
                    self.environment.certificate_timeout_secs
                } else {
                    0
                },
            )
        })
        .map_err(Failure::Changed)
    }

    /// `.env` for `tag`, the image pulled, the images the compose files build built, a backup
    /// taken (once per deploy, never on a host's `first`), the migrations applied: everything
    /// but the services themselves.
    fn prepare(&self, tag: &str, first: bool) -> anyhow::Result<()> {
        let reference = image_reference(&self.environment.image, tag)?;
        let image = quote(&reference).into_owned();
        self.write_env(tag)?;
        step::run(&format!("pull {reference}"), || {
            self.remote.run(
                &format!("docker image inspect {image} >/dev/null 2>&1 || docker pull {image}"),
                b"",
            )
        })?;
        // Images the compose files build (nginx, the backup image holding this tag's binary)
        // are built on the host for each deploy; unchanged ones come from the build cache.
        step::run("build images", || {
            self.remote
                .run(&format!("{} build --quiet", self.compose()), b"")
        })?;
        if let Some(backup) = &self.environment.backup_service
            && !first
            && self.backup.borrow().is_none()
            && self.rollback_of.borrow().is_none()
        {
            let name = step::run("backup before the migrations", || self.take_backup(backup))?;
            eprintln!("xtask: backup {name} taken before the migrations");
            self.backup.replace(Some(name));
        }
        if let Some(migrate) = &self.environment.migrate_service {
            step::run("migrations", || {
                self.remote.run(
                    &format!("{} run --rm {}", self.compose(), quote(migrate)),
                    b"",
                )
            })?;
        }
        Ok(())
    }

    /// `app-web backup run` in the backup service: the backup's name, the last line it prints
    /// that is not a log line.
    fn take_backup(&self, service: &str) -> anyhow::Result<String> {
        let output = self.remote.run(
            &format!(
                "{} run --rm -T -e APP_WEB_BACKUP_PREFIX=predeploy {} run",
                self.compose(),
                quote(service)
            ),
            b"",
        )?;
        let name = output
            .lines()
            .map(str::trim)
            .rfind(|line| !line.is_empty() && !line.starts_with('{'))
            .with_context(|| format!("app-web backup run printed no backup name:\n{output}"))?;
        anyhow::ensure!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
            "app-web backup run printed {name:?}, which is not a backup's name"
        );
        Ok(name.to_owned())
    }

    /// The new version's containers, as many as run now, started beside the running ones,
    /// healthy and smoke-tested on their own address, and the proxy switched to them. On a
    /// failure up to the switch they are removed again and the running ones never noticed.
    fn start_beside(&self, tag: &str, proxy: &str, running: &[String]) -> anyhow::Result<()> {
        let service = &self.environment.service;
        let reference = image_reference(&self.environment.image, tag)?;
        // Containers of the service that do not run (left by an earlier failure) would be
        // started again by `--scale` instead of new ones of this tag.
        let stopped: Vec<String> = self
            .containers(false)?
            .into_iter()
            .filter(|id| !running.contains(id))
            .collect();
        if !stopped.is_empty() {
            step::run(
                &format!("remove {} stopped {service}", stopped.len()),
                || {
                    self.remote
                        .run(&format!("docker rm -f {}", stopped.join(" ")), b"")
                },
            )?;
        }
        let before = self.containers(false)?;
        let result = step::run(&format!("new {service} beside the running one"), || {
            self.remote.run(
                &format!(
                    "{} up -d --no-deps --no-build --no-recreate --scale {service}={} {service}",
                    self.compose(),
                    running.len() * 2,
                    service = quote(service)
                ),
                b"",
            )
        })
        .and_then(|_| {
            let started = self.started_since(&before)?;
            let images = self.remote.run(
                &format!(
                    "docker inspect --format '{{{{.Config.Image}}}}' {}",
                    started.join(" ")
                ),
                b"",
            )?;
            anyhow::ensure!(
                images.lines().all(|image| image.trim() == reference),
                "the new {service} containers run {}, not {reference}",
                images.trim()
            );
            step::run(&format!("new {service} healthy"), || {
                self.wait_healthy(&started)
            })?;
            let addresses = started
                .iter()
                .map(|id| self.address(id))
                .collect::<anyhow::Result<Vec<_>>>()?;
            step::run(
                &format!("smoke test of the new {service} on {}", addresses[0]),
                || {
                    let tunnel = self
                        .remote
                        .forward(&addresses[0], self.environment.service_port)?;
                    self.smoke(&format!("http://{tunnel}"), 0)
                        .map_err(|err| tunnel.explain(err))
                },
            )?;
            // The script changes nothing unless nginx takes the new configuration, so a
            // failure here still leaves the running containers serving.
            let upstreams: Vec<String> = addresses
                .iter()
                .map(|address| format!("{address}:{}", self.environment.service_port))
                .collect();
            step::run(&format!("{proxy} switched to the new {service}"), || {
                self.set_upstream(proxy, &upstreams)
            })?;
            Ok(())
        });
        if let Err(err) = result {
            let started = self.started_since(&before).unwrap_or_default();
            if !started.is_empty() {
                let removed = step::run(&format!("remove the new {service}"), || {
                    self.remote
                        .run(&format!("docker rm -f {}", started.join(" ")), b"")
                });
                if let Err(removing) = removed {
                    return Err(err.context(format!("and removing it failed: {removing:#}")));
                }
            }
            return Err(err);
        }
        Ok(())
    }

    /// Once the proxy sends every new request to the new containers: the `running` ones
    /// finish theirs and stop, the proxy goes back to the service's name (which now means the
    /// new ones alone) and the other services are brought up to date.
    fn drain(&self, proxy: &str, running: &[String]) -> anyhow::Result<()> {
        let service = &self.environment.service;
        // `docker stop` gives each the stop grace period compose set, in which app-web
        // finishes its requests (its --shutdown-grace-secs) and exits.
        step::run(&format!("old {service} drained and removed"), || {
            let ids = running.join(" ");
            self.remote.run(
                &format!("docker stop {ids} >/dev/null && docker rm {ids}"),
                b"",
            )
        })?;
        step::run(&format!("{proxy} proxying to {service}"), || {
            self.set_upstream(proxy, &[])
        })?;
        step::run("services up", || {
            self.remote.run(
                &format!(
                    "{} up -d --no-build --remove-orphans --scale {service}={}",
                    self.compose(),
                    running.len(),
                    service = quote(service)
                ),
                b"",
            )
        })?;
        let ids = self.containers(false)?;
        step::run(&format!("{service} healthy"), || self.wait_healthy(&ids))
    }

    /// Has the proxy (nginx/docker-entrypoint.sh in its image) send new requests to
    /// `addresses`, or with none to the service's name again, by a reload that lets its old
    /// workers finish.
    fn set_upstream(&self, proxy: &str, addresses: &[String]) -> anyhow::Result<String> {
        let addresses: Vec<String> = addresses
            .iter()
            .map(|address| quote(address).into_owned())
            .collect();
        self.remote.run(
            &format!(
                "{} exec -T {} sh /etc/app-nginx/docker-entrypoint.sh upstream {}",
                self.compose(),
                quote(proxy),
                addresses.join(" ")
            ),
            b"",
        )
    }

    /// The service's containers (full ids): all, or only those running.
    fn containers(&self, running: bool) -> anyhow::Result<Vec<String>> {
        let ids = self.remote.run(
            &format!(
                "{} ps -a -q {}",
                self.compose(),
                quote(&self.environment.service)
            ),
            b"",
        )?;
        let ids: Vec<String> = ids.split_whitespace().map(str::to_owned).collect();
        if let Some(id) = ids.iter().find(|id| !container_id(id)) {
            anyhow::bail!("compose ps named a container {id:?}, which is not a container id");
        }
        if !running || ids.is_empty() {
            return Ok(ids);
        }
        let states = self.remote.run(
            &format!(
                "docker inspect --format '{{{{.Id}}}} {{{{.State.Status}}}}' {}",
                ids.join(" ")
            ),
            b"",
        )?;
        Ok(states
            .lines()
            .filter_map(|line| line.strip_suffix(" running"))
            .map(str::to_owned)
            .collect())
    }

    /// The service's containers that `before` did not list.
    fn started_since(&self, before: &[String]) -> anyhow::Result<Vec<String>> {
        let started: Vec<String> = self
            .containers(false)?
            .into_iter()
            .filter(|id| !before.contains(id))
            .collect();
        anyhow::ensure!(
            !started.is_empty(),
            "compose started no new {} container",
            self.environment.service
        );
        Ok(started)
    }

    /// A container's address on the stack's network.
    fn address(&self, id: &str) -> anyhow::Result<std::net::Ipv4Addr> {
        let text = self.remote.run(
            &format!(
                "docker inspect --format '{{{{range .NetworkSettings.Networks}}}}{{{{.IPAddress}}}} {{{{end}}}}' {}",
                quote(id)
            ),
            b"",
        )?;
        text.split_whitespace()
            .find_map(|address| address.parse().ok())
            .with_context(|| format!("container {id} has no IPv4 address: {text:?}"))
    }

    /// `cargo xtask smoke` against `url`, trusting the environment's CA.
    fn smoke(&self, url: &str, certificate_wait_secs: u64) -> anyhow::Result<()> {
        let https = url.starts_with("https://");
        flags::Smoke {
            url: url.to_owned(),
            cacert: self
                .environment
                .smoke_cacert
                .as_ref()
                .filter(|_| https)
                .map(|file| self.base.join(file)),
            resolve: if https {
                self.smoke_resolve()?
            } else {
                Vec::new()
            },
            expect_version: None,
            expect_headers: false,
            certificate_wait_secs,
        }
        .run(self.sh)
    }

    /// Keeps the host's `.env` as it is before a deploy writes it (or notes there was none),
    /// so a deploy that stops before anything switched can put it back.
    fn save_env(&self) -> anyhow::Result<()> {
        let env_dir = quote(&self.environment.env_dir()?).into_owned();
        self.remote.run(
            &format!(
                "cd {} && mkdir -p .deploy && rm -f .deploy/env.before .deploy/env.before.none && \
                 if [ -e {env_dir}/.env ]; then cp -p {env_dir}/.env .deploy/env.before; else : > .deploy/env.before.none; fi",
                self.dir()
            ),
            b"",
        )?;
        Ok(())
    }

    /// Puts back the `.env` [`Self::save_env`] kept (or removes the one written where there
    /// was none), and builds the images it names (from the build cache), so that a later `up`
    /// on the host starts what ran before. Without a saved state it changes nothing.
    fn restore_env(&self) -> anyhow::Result<()> {
        let env_dir = quote(&self.environment.env_dir()?).into_owned();
        let restored = self.remote.run(
            &format!(
                "cd {} && if [ -e .deploy/env.before ]; then mv .deploy/env.before {env_dir}/.env && echo restored; \
                 elif [ -e .deploy/env.before.none ]; then rm -f {env_dir}/.env .deploy/env.before.none; fi",
                self.dir()
            ),
            b"",
        )?;
        if restored.trim() == "restored" {
            self.remote
                .run(&format!("{} build --quiet", self.compose()), b"")?;
        }
        Ok(())
    }

    /// Forgets the `.env` [`Self::save_env`] kept, once the new one serves.
    fn forget_env(&self) -> anyhow::Result<()> {
        self.remote.run(
            &format!(
                "rm -f {dir}/.deploy/env.before {dir}/.deploy/env.before.none",
                dir = self.dir()
            ),
            b"",
        )?;
        Ok(())
    }

    /// Fails when the host's engine holds stand-ins (or images built on them), which compose
    /// would run in place of the real images of the same names.
    fn refuse_stand_ins(&self) -> anyhow::Result<()> {
        let label = crate::docker::stand_ins::LABEL;
        let found = self.remote.run(
            &format!(
                "docker images --filter label={label} --format '{{{{.Repository}}}}:{{{{.Tag}}}}'"
            ),
            b"",
        )?;
        let images: Vec<&str> = found.split_whitespace().collect();
        anyhow::ensure!(
            images.is_empty(),
            "the engine on {} holds stand-ins built from Debian's packages under the official \
             images' names ({}), which the stack would run instead of the real ones: remove them \
             (`docker rmi $(docker images --quiet --filter label={label})`) and pull the real \
             images, or set allow_stand_ins = true if {} is a test host",
            self.environment.ssh,
            images.join(", "),
            self.name
        );
        Ok(())
    }

    /// The environment's service names, or which one could be taken for an option or is
    /// not a name compose gives a service.
    fn check_services(&self) -> anyhow::Result<()> {
        for (setting, service) in self.environment.named_services() {
            anyhow::ensure!(
                service_name(service),
                "{setting} of {} is {service:?}: a compose service's name (letters, digits, \
                 `_`, `.` and `-`, not first) from the compose files",
                self.name
            );
        }
        Ok(())
    }

    /// The environment's `smoke_resolve` entries, or which one is not `HOST:PORT:ADDRESS`.
    fn smoke_resolve(&self) -> anyhow::Result<Vec<crate::http::Resolve>> {
        self.environment
            .smoke_resolve
            .iter()
            .map(|entry| {
                entry
                    .parse()
                    .map_err(|err: String| anyhow::anyhow!("smoke_resolve of {}: {err}", self.name))
            })
            .collect()
    }

    /// Waits until every container in `ids` is healthy (or running, without a health
    /// check); one that turns unhealthy or exits fails it, with its last log lines.
    fn wait_healthy(&self, ids: &[String]) -> anyhow::Result<()> {
        anyhow::ensure!(
            !ids.is_empty(),
            "{} has no container on the host",
            self.environment.service
        );
        let script = format!(
            "docker inspect --format '{{{{.Id}}}} {{{{.State.Status}}}} {{{{.RestartCount}}}} {{{{if .State.Health}}}}{{{{.State.Health.Status}}}}{{{{else}}}}none{{{{end}}}}' {}",
            ids.join(" ")
        );
        let deadline = Instant::now() + Duration::from_secs(self.environment.health_timeout_secs);
        loop {
            let text = self.remote.run(&script, b"").unwrap_or_default();
            let states: Vec<Vec<&str>> = text
                .lines()
                .map(|line| line.split(' ').collect::<Vec<_>>())
                .filter(|fields| fields.len() == 4)
                .collect();
            let healthy = |fields: &Vec<&str>| {
                fields[3] == "healthy" || (fields[3] == "none" && fields[1] == "running")
            };
            if states.len() == ids.len() && states.iter().all(healthy) {
                return Ok(());
            }
            // A container that exited, is being restarted or was restarted is not one to
            // wait for: it says why in its log.
            if let Some(fields) = states.iter().find(|fields| {
                matches!(fields[1], "exited" | "dead" | "restarting")
                    || fields[2] != "0"
                    || fields[3] == "unhealthy"
            }) {
                let id = fields[0];
                let logs = self
                    .remote
                    .run(&format!("docker logs --tail 10 {id} 2>&1"), b"")
                    .unwrap_or_default();
                anyhow::bail!(
                    "{} ({}) is {}{}, restarted {} times; its last log lines:\n{}",
                    self.environment.service,
                    &id[..id.len().min(12)],
                    fields[1],
                    if fields[3] == "unhealthy" {
                        " and unhealthy"
                    } else {
                        ""
                    },
                    fields[2],
                    logs.trim_end()
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} was not healthy within {}s (last: {})",
                self.environment.service,
                self.environment.health_timeout_secs,
                text.trim()
            );
            std::thread::sleep(Duration::from_secs(1));
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
        // For the workflow's chat message: the tag (checked) and what became of it.
        let outcome = match &record.rollback_of {
            Some(undone) => format!("{} (a rollback of {undone})", record.outcome),
            None => record.outcome.clone(),
        };
        for (name, value) in [("tag", &record.tag), ("outcome", &outcome)] {
            if let Err(err) = crate::ci::github_output(name, value) {
                eprintln!("xtask: warning: {err:#}");
            }
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
        if self.dry_run && !self.rollback {
            let tag = self.tag.as_deref().unwrap_or("<tag>");
            eprintln!(
                "xtask: would deploy {}:{tag} to {} ({}:{}) in {}: upload {}, then {} with {}, {} and smoke-test {}",
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
                match &environment.proxy_service {
                    Some(proxy) => format!(
                        "start the new {service} beside the running one, wait for it to be healthy, smoke-test it, switch {proxy} to it and drain the old one",
                        service = environment.service
                    ),
                    None => format!("wait for {} to be healthy", environment.service),
                },
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
            backup: std::cell::RefCell::new(None),
            rollback_of: std::cell::RefCell::new(None),
            restored: std::cell::RefCell::new(None),
        };
        if self.history {
            for record in deploy.history()? {
                println!("{}", serde_json::to_string(&record)?);
            }
            return Ok(());
        }
        if self.rollback {
            let identity = match &self.identity {
                Some(file) if self.restore => Some(
                    std::fs::read(file)
                        .with_context(|| format!("read the identity {}", file.display()))?,
                ),
                _ => None,
            };
            return deploy.rollback(identity.as_deref(), self.dry_run);
        }
        let tag = self.tag.context(
            "name the image tag to deploy with --tag (or ask for --history or --rollback)",
        )?;
        let _lock = step::run("the host's deploy lock", || {
            deploy.remote.lock(&deploy.dir())
        })?;
        deploy.attempt(&tag)
    }
}

impl Deploy<'_> {
    /// Returns to the tag the last attempt replaced (or tried to), first restoring the backup
    /// it took when `identity` is given and the schema has moved since. With `dry_run` it only
    /// says what it would do.
    fn rollback(&self, identity: Option<&[u8]>, dry_run: bool) -> anyhow::Result<()> {
        let _lock = if dry_run {
            None
        } else {
            Some(step::run("the host's deploy lock", || {
                self.remote.lock(&self.dir())
            })?)
        };
        let history = self.history()?;
        let last = history
            .last()
            .context("the host records no deploy: there is nothing to roll back")?;
        let target = last.previous.clone().with_context(|| {
            format!(
                "the last deploy ({} {}, {}) replaced nothing: there is no earlier tag to return to",
                last.tag, last.outcome, last.time
            )
        })?;
        let mut restore = None;
        if identity.is_some() {
            let backup = last.backup.clone().with_context(|| {
                format!(
                    "the last deploy ({} {}) recorded no backup, so --restore has nothing to \
                     restore: roll back without it (the previous version runs on the expanded \
                     schema), or restore one by hand with `app-web backup restore`",
                    last.tag, last.outcome
                )
            })?;
            let manifest = step::run(&format!("read {backup}'s manifest"), || {
                self.backup_manifest(&backup)
            })?;
            let then = manifest["schema_version"].as_i64();
            let now = step::run("read the schema's migration", || self.schema_version())?;
            // Tables the backup does not have (made by the migrations since) would survive a
            // restore, which replaces only what the backup holds: they are dropped first.
            let backed_up: Vec<String> = manifest["tables"]
                .as_array()
                .map(|tables| {
                    tables
                        .iter()
                        .map(|table| {
                            format!(
                                "{}.{}",
                                table["schema"].as_str().unwrap_or_default(),
                                table["table"].as_str().unwrap_or_default()
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let extra: Vec<String> = self
                .tables()?
                .into_iter()
                .filter(|table| !backed_up.contains(table))
                .collect();
            if then == now && extra.is_empty() {
                eprintln!(
                    "xtask: the schema has not moved since {backup} (migration {}): nothing to restore",
                    now.map_or("none".into(), |version| version.to_string())
                );
            } else {
                eprintln!(
                    "xtask: restoring {backup} (taken {}, before deploying {}) replaces the database: \
                     every write since then is lost, and the schema goes from migration {} back to {}",
                    manifest["created_at"].as_str().unwrap_or("?"),
                    last.tag,
                    now.map_or("none".into(), |version| version.to_string()),
                    then.map_or("none".into(), |version| version.to_string())
                );
                if !extra.is_empty() {
                    eprintln!(
                        "xtask: the tables the backup does not have are dropped with their rows: {}",
                        extra.join(", ")
                    );
                }
                restore = Some((backup, extra));
            }
        }
        if dry_run {
            eprintln!(
                "xtask: would {}return {} to {target} (undoing {} {})",
                restore
                    .as_ref()
                    .map_or(String::new(), |(backup, _)| format!(
                        "restore {backup}, then "
                    )),
                self.name,
                last.tag,
                last.outcome
            );
            return Ok(());
        }
        if let (Some((backup, extra)), Some(identity)) = (&restore, identity) {
            step::run(&format!("restore {backup}"), || {
                self.drop_tables(extra)?;
                self.restore_backup(backup, identity)
            })?;
            self.restored.replace(Some(backup.clone()));
        }
        self.rollback_of.replace(Some(last.tag.clone()));
        self.attempt(&target)
    }

    /// The manifest of the backup `name`, as `app-web backup list --json` gives it.
    fn backup_manifest(&self, name: &str) -> anyhow::Result<serde_json::Value> {
        let service = self
            .environment
            .backup_service
            .as_ref()
            .context("the environment names no backup_service to restore with")?;
        let listed = self.remote.run(
            &format!(
                "{} run --rm -T --no-deps {} list --json",
                self.compose(),
                quote(service)
            ),
            b"",
        )?;
        let start = listed
            .lines()
            .position(|line| line.starts_with('['))
            .map(|index| listed.lines().skip(index).collect::<Vec<_>>().join("\n"))
            .with_context(|| format!("app-web backup list printed no list:\n{listed}"))?;
        let backups: Vec<serde_json::Value> =
            serde_json::from_str(&start).context("read app-web backup list's JSON")?;
        backups
            .into_iter()
            .find(|backup| backup["name"] == name)
            .with_context(|| {
                format!("the backup {name} is no longer on the host (pruned or deleted): restore it from off-site by hand")
            })
    }

    /// The newest migration applied to the app's database, as PostgreSQL says.
    fn schema_version(&self) -> anyhow::Result<Option<i64>> {
        let text = self.remote.run(
            &self.psql("SELECT max(version) FROM _sqlx_migrations WHERE success"),
            b"",
        )?;
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse()
            .map(Some)
            .with_context(|| format!("PostgreSQL gave {text:?} as the newest migration"))
    }

    /// The psql command that runs `sql` in the app's database as PostgreSQL's superuser.
    fn psql(&self, sql: &str) -> String {
        format!(
            "{} exec -T --user postgres postgres psql -v ON_ERROR_STOP=1 -d app -tAc {}",
            self.compose(),
            quote(sql)
        )
    }

    /// The app database's tables, `schema.table`, outside PostgreSQL's own schemas.
    fn tables(&self) -> anyhow::Result<Vec<String>> {
        let text = self.remote.run(
            &self.psql(
                "SELECT schemaname || '.' || tablename FROM pg_tables \
                 WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
            ),
            b"",
        )?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect())
    }

    /// Drops `tables` (`schema.table`, names PostgreSQL gave) with what depends on them.
    fn drop_tables(&self, tables: &[String]) -> anyhow::Result<()> {
        if tables.is_empty() {
            return Ok(());
        }
        let names = tables
            .iter()
            .map(|table| {
                let (schema, name) = table
                    .split_once('.')
                    .with_context(|| format!("{table:?} is not schema.table"))?;
                let ident = |part: &str| format!("\"{}\"", part.replace('"', "\"\""));
                Ok(format!("{}.{}", ident(schema), ident(name)))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        self.remote.run(
            &self.psql(&format!("DROP TABLE {} CASCADE", names.join(", "))),
            b"",
        )?;
        Ok(())
    }

    /// `app-web backup restore NAME --clean` into the app's database, in the backup service,
    /// with the identity on its stdin.
    fn restore_backup(&self, name: &str, identity: &[u8]) -> anyhow::Result<String> {
        let service = self
            .environment
            .backup_service
            .as_ref()
            .context("the environment names no backup_service to restore with")?;
        self.remote.run(
            &format!(
                "{} run --rm -T --no-deps -e APP_WEB_BACKUP_IDENTITY_FILE=/dev/stdin {} restore {} --target-database app --clean",
                self.compose(),
                quote(service),
                quote(name)
            ),
            identity,
        )
    }

    fn attempt(&self, tag: &str) -> anyhow::Result<()> {
        let previous = step::run("read the deployed tag", || self.previous_tag())?;
        // Settings that cannot start the stack stop the deploy before anything on the host
        // changes.
        step::run("check the settings", || {
            self.check_services()?;
            self.smoke_resolve()?;
            self.env_for(tag).map(drop)
        })?;
        if !self.environment.allow_stand_ins {
            step::run("no stand-in images on the host", || self.refuse_stand_ins())?;
        }
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
            backup: self.backup.borrow().clone(),
            rollback_of: self.rollback_of.borrow().clone(),
            restored: self.restored.borrow().clone(),
        };
        let failure = match self.roll_out(tag, previous.is_none()) {
            Ok(()) => {
                self.record(&record("deployed", None))?;
                self.forget_env()?;
                eprintln!(
                    "xtask: {}:{tag} deployed to {}",
                    self.environment.image, self.name
                );
                return Ok(());
            }
            Err(Failure::Kept(err)) => {
                // Nothing that serves changed: the settings go back to what runs.
                let failure = format!("{err:#}");
                let restored = step::run("put the settings back", || self.restore_env());
                let kept = previous.as_deref().map_or_else(
                    || "failed, nothing switched".to_owned(),
                    |previous| format!("failed, {previous} kept serving"),
                );
                let reason = match &restored {
                    Ok(()) => failure.clone(),
                    Err(err) => format!("{failure}; putting the settings back: {err:#}"),
                };
                self.record(&record(&kept, Some(reason.clone())))?;
                anyhow::bail!(
                    "deploying {tag} to {} failed before anything switched, and what ran before still serves: {reason}",
                    self.name
                );
            }
            Err(Failure::Changed(err)) => format!("{err:#}"),
        };
        let Some(previous_tag) = previous.clone() else {
            self.record(&record("failed", Some(failure.clone())))?;
            anyhow::bail!(
                "deploying {tag} to {} failed and there is no earlier deploy to go back to: {failure}",
                self.name
            );
        };
        eprintln!("xtask: deploying {tag} failed; putting {previous_tag} back: {failure}");
        match self.roll_out(&previous_tag, false) {
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
            Err(Failure::Kept(rollback) | Failure::Changed(rollback)) => {
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

/// How a roll-out that did not finish left the host.
enum Failure {
    /// Nothing that serves changed: the new version failed beside the running one (or before
    /// it started) and the running one still answers.
    Kept(anyhow::Error),
    /// Services were replaced or the proxy switched: the previous tag has to be put back.
    Changed(anyhow::Error),
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
            // An environment on Let's Encrypt's staging CA trusts its roots in the smoke test,
            // which no system store holds.
            let settings = environment.settings(&base).unwrap();
            if settings.contains("acme-staging") {
                let cacert = environment.smoke_cacert.as_ref().unwrap_or_else(|| {
                    panic!("{name} is on the staging CA and names no smoke_cacert")
                });
                let text = std::fs::read_to_string(base.join(cacert)).unwrap();
                assert!(text.contains("BEGIN CERTIFICATE"), "{name}");
            } else {
                assert!(
                    environment.smoke_cacert.is_none(),
                    "{name}: production trusts the system store"
                );
            }
        }
    }

    /// Each shipped environment's `.env`, as a deploy writes it with nothing host-local yet,
    /// is one docker-compose accepts for the whole stack; the only values left to the host are
    /// the placeholders docs/operations/deploy.md names.
    #[test]
    fn every_environment_gives_compose_all_it_requires() {
        let (environments, base) =
            load(&path::project_root().join("deploy/environments.toml")).unwrap();
        for (name, environment) in &environments {
            let settings = environment.settings(&base).unwrap();
            let text = merge_env(
                &settings,
                "",
                &environment.image_variable,
                &image_reference(&environment.image, "1.0.0").unwrap(),
            )
            .unwrap();
            assert_eq!(
                placeholders(&text),
                ["BACKUP_RECIPIENTS", "BACKUP_S3_ACCESS_KEY_ID"],
                "{name}: only these are the host's to set"
            );
            let dir = tempfile::tempdir().unwrap();
            let env_file = dir.path().join(".env");
            std::fs::write(&env_file, &text).unwrap();
            let mut command = std::process::Command::new("docker-compose");
            // Only the file's settings count, not this process's environment.
            command
                .current_dir(path::project_root().join("docker"))
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default());
            for file in &environment.compose_files {
                let file = file.strip_prefix("docker/").unwrap_or(file);
                command.args(["--file", file]);
            }
            let output = command
                .arg("--env-file")
                .arg(&env_file)
                .arg("config")
                .output()
                .expect("run docker-compose (`cargo xtask setup` installs it)");
            assert!(
                output.status.success(),
                "{name}: docker-compose refuses its .env:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let config = String::from_utf8_lossy(&output.stdout);
            assert!(
                config.contains("APP_WEB_BACKUP_S3_BUCKET: app-"),
                "{name}: backups go off-site"
            );
            // The services the deploy names are the stack's: a misspelt one would fail a
            // deploy after app-web is up, and roll a good version back.
            for (_, service) in environment.named_services() {
                assert!(
                    service_name(service) && config.contains(&format!("\n  {service}:\n")),
                    "{name}: {service} is not a service of the stack"
                );
            }
            assert!(!environment.allow_stand_ins, "{name} is a real host");
        }
    }

    #[test]
    fn service_names_cannot_be_options() {
        for name in ["nginx", "app-web", "redis_2", "a.b"] {
            assert!(service_name(name), "{name}");
        }
        for name in [
            "",
            "-sKILL",
            "--all",
            "nginx web",
            "nginx;reboot",
            "ünïcode",
        ] {
            assert!(!service_name(name), "{name}");
        }
    }

    #[test]
    fn host_files_and_secrets_are_never_uploaded() {
        let root = tempfile::tempdir().unwrap();
        for file in [
            "docker/compose.yaml",
            "docker/local.env",
            "docker/.env",
            "docker/secrets/postgres_password",
        ] {
            let path = root.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        let files = files_to_upload(root.path(), &[PathBuf::from("docker")]).unwrap();
        assert_eq!(files, [PathBuf::from("docker/compose.yaml")]);
    }

    #[test]
    fn host_local_settings_win_and_survive_and_placeholders_are_refused() {
        let settings = "# staging\nAPP_DOMAIN=a.example.org\nBACKUP_RECIPIENTS=age1REPLACE_WITH_KEYS\nAPP_WEB_IMAGE=old\n";
        let local = "BACKUP_RECIPIENTS=age1realkey\nEXTRA=kept\n";
        let text = env_text(settings, local, "APP_WEB_IMAGE", "r/app-web:2.0.0").unwrap();
        assert_eq!(
            text,
            "# staging\nAPP_DOMAIN=a.example.org\n# From the host's local.env, which deploys never write.\nBACKUP_RECIPIENTS=age1realkey\nEXTRA=kept\nAPP_WEB_IMAGE=r/app-web:2.0.0\n"
        );
        let err = env_text(settings, "", "APP_WEB_IMAGE", "r/app-web:2.0.0")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("BACKUP_RECIPIENTS still hold the shipped placeholder")
                && err.contains("local.env"),
            "{err}"
        );
        let err = env_text(settings, "APP_WEB_IMAGE=mine\n", "APP_WEB_IMAGE", "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("remove it from local.env"), "{err}");
    }

    #[test]
    fn a_tag_that_could_add_lines_to_env_is_refused_naming_the_rule() {
        for good in [
            "2.0.1",
            "1.4.2-beta.1",
            "3f2a9c1d0b7e-dirty",
            "latest",
            "_x",
        ] {
            assert_eq!(parse_tag(good).unwrap(), good);
        }
        for bad in [
            "1.0\nAPP_WEB_LOG=debug",
            "1.0 extra",
            "",
            ".hidden",
            "-flag",
            "a=b",
            "a;reboot",
            &"x".repeat(129),
            "sha256:abc",
        ] {
            let err = parse_tag(bad).unwrap_err().to_string();
            assert!(
                err.contains("is not an image tag or digest") && err.contains("1 to 128"),
                "{bad:?}: {err}"
            );
        }
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            image_reference("registry.example/app-web", &digest).unwrap(),
            format!("registry.example/app-web@{digest}")
        );
        assert_eq!(
            image_reference("registry.example/app-web", "1.2.3").unwrap(),
            "registry.example/app-web:1.2.3"
        );
        // The command line refuses it before anything else runs.
        use clap::Parser;
        let parsed = crate::flags::Xtask::try_parse_from([
            "cargo xtask",
            "deploy",
            "--env",
            "dev",
            "--tag",
            "1.0\nAPP_WEB_IMAGE=evil",
        ]);
        let err = parsed.unwrap_err().to_string();
        assert!(err.contains("is not an image tag or digest"), "{err}");
    }

    /// What the host's shell gets: words with spaces or quotes in single quotes.
    #[test]
    fn quoting_survives_the_host_shell() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
