//! `cargo xtask deploy` of the whole web stack, end to end on this machine: the unchanged
//! docker/compose.yaml (with the `metrics` profile: everything but Grafana, Loki and Alloy,
//! which Debian does not package) on the real Docker engine, its third-party images replaced by
//! the stand-ins `cargo xtask docker stand-ins` builds from Debian's packages, deployed over a
//! real sshd (Debian's openssh-server on 127.0.0.1 with throwaway keys). The app-web image is
//! built from a real dist, pushed with `cargo xtask docker push` to a registry on loopback
//! (Debian's docker-registry) and pulled from there by the deploy. Pebble issues the site's
//! certificate through the stack's own certbot service: the first deploy finds nginx on its
//! self-signed certificate and its smoke test waits for the real one.
//!
//! Then the stack is used from outside as the internet would: clients in two network namespaces
//! of the test's own, routed to nginx on the stack's network as Docker forwards internet
//! clients to its published ports, so nginx sees each with its own address (Docker's userland
//! proxy would show every loopback client as the network's gateway). Pebble runs in a third
//! namespace, which the stack's certbot reaches. A version whose app-web cannot start is rolled
//! back; the history on the host shows both.

use e2e::tools as support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use local_servers::{
    DockerEngine, KillOnDrop, Netns, Pebble, PebbleOptions, S3Server, docker_client,
};
use support::docker::{Images, build_image, docker, make_base};
use support::{assert_success, dist_into_with, workspace_version, xtask};

/// A daemon of the test's own, listening on 127.0.0.1:`port`, killed on drop.
struct Daemon {
    child: Child,
    port: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `command` with its output in `log` and waits until it accepts connections on
/// 127.0.0.1:`port`; the log is shown when it does not.
fn start_daemon(mut command: Command, port: u16, log: &Path, what: &str) -> Daemon {
    let child = command
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap_or_else(|err| panic!("start {what} (`cargo xtask setup` installs it): {err}"));
    let daemon = Daemon { child, port };
    local_servers::wait_for(
        Duration::from_secs(20),
        &format!("{what} to listen"),
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    )
    .unwrap_or_else(|err| {
        panic!(
            "{err}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    });
    daemon
}

fn free_port() -> u16 {
    local_servers::free_port().expect("a free port on 127.0.0.1")
}

/// Two free ports in a row on 127.0.0.1, as a range `FIRST-SECOND`.
fn free_port_range() -> String {
    for _ in 0..100 {
        let first = free_port();
        if first < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", first + 1)).is_ok() {
            return format!("{first}-{}", first + 1);
        }
    }
    panic!("no two free ports in a row on 127.0.0.1")
}

fn keygen(file: &Path) {
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(file)
        .output()
        .expect("run ssh-keygen (package openssh-client)");
    assert_success(&made, "ssh-keygen");
}

fn start_sshd(dir: &Path) -> Daemon {
    let sshd = Path::new("/usr/sbin/sshd");
    assert!(
        sshd.is_file(),
        "/usr/sbin/sshd is missing: `cargo xtask setup` installs openssh-server"
    );
    keygen(&dir.join("host_key"));
    keygen(&dir.join("id_ed25519"));
    std::fs::copy(dir.join("id_ed25519.pub"), dir.join("authorized_keys")).unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let port = free_port();
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\nPidFile {dir}/sshd.pid\nAuthorizedKeysFile {dir}/authorized_keys\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPrintMotd no\n",
            dir = dir.display()
        ),
    )
    .unwrap();
    let mut command = Command::new(sshd);
    command.args(["-D", "-e", "-f"]).arg(&config);
    let server = start_daemon(command, port, &dir.join("sshd.log"), "sshd");
    let host_key = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
    std::fs::write(
        dir.join("known_hosts"),
        format!("[127.0.0.1]:{port} {host_key}"),
    )
    .unwrap();
    server
}

/// A registry on 127.0.0.1, which the engine trusts over plain HTTP.
fn start_registry(dir: &Path) -> Daemon {
    let port = free_port();
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("registry").display()
        ),
    )
    .unwrap();
    let mut command = Command::new("docker-registry");
    command.arg("serve").arg(&config);
    start_daemon(
        command,
        port,
        &dir.join("registry.log"),
        "docker-registry (package docker-registry)",
    )
}

/// Stops the test's compose project and removes its containers, volumes and network however
/// the test ends.
struct ComposeDown {
    project: String,
    dir: std::path::PathBuf,
}

impl Drop for ComposeDown {
    fn drop(&mut self) {
        let _ = Command::new("docker-compose")
            .current_dir(&self.dir)
            .args([
                "--profile",
                "metrics",
                "down",
                "--volumes",
                "--remove-orphans",
                "--timeout",
                "5",
            ])
            .output();
        let listed = Command::new(docker_client())
            .args(["ps", "--all", "--quiet", "--filter"])
            .arg(format!("label=com.docker.compose.project={}", self.project))
            .output();
        if let Ok(listed) = listed {
            for id in String::from_utf8_lossy(&listed.stdout).split_whitespace() {
                let _ = docker(&["rm", "--force", "--volumes", id]);
            }
        }
        // What `down` leaves when it could not read the project (a broken .env): its volumes,
        // and its network, whose subnet would stop the next run.
        let label = format!("label=com.docker.compose.project={}", self.project);
        for kind in ["volume", "network"] {
            let listed = docker(&[kind, "ls", "--quiet", "--filter", &label]);
            for id in String::from_utf8_lossy(&listed.stdout).split_whitespace() {
                let _ = docker(&[kind, "rm", id]);
            }
        }
    }
}

/// The root mount made shared, as systemd makes it on every host Docker usually runs on (the
/// node exporter mounts the host's root with `rslave`, which Docker refuses on a root that is
/// neither shared nor a slave), and put back as it was found when the test ends. Only the root
/// mount itself changes, not those under it.
struct SharedRoot {
    /// The flag that puts it back, none when it was shared already.
    restore: Option<&'static str>,
}

impl SharedRoot {
    fn ensure() -> Self {
        let found = Command::new("findmnt")
            .args(["--noheadings", "--output", "PROPAGATION", "/"])
            .output()
            .expect("run findmnt (package util-linux)");
        assert_success(&found, "findmnt of /");
        let was = String::from_utf8_lossy(&found.stdout).trim().to_owned();
        let kinds: Vec<&str> = was.split(',').collect();
        if kinds.contains(&"shared") {
            return Self { restore: None };
        }
        // Propagation is one of private, slave (with or without shared) and unbindable.
        let restore = Some(if kinds.contains(&"unbindable") {
            "--make-unbindable"
        } else if kinds.contains(&"slave") {
            "--make-slave"
        } else {
            "--make-private"
        });
        let made = Command::new("mount")
            .args(["--make-shared", "/"])
            .output()
            .unwrap();
        assert_success(&made, "mount --make-shared /");
        Self { restore }
    }
}

impl Drop for SharedRoot {
    fn drop(&mut self) {
        if let Some(flag) = self.restore {
            let _ = Command::new("mount").args([flag, "/"]).output();
        }
    }
}

/// The password of the updater key the test makes.
const UPDATER_PASSWORD: &str = "updater-key-password-for-the-stack";

/// The site's name, and the stack's network (one no other stack on a test machine uses).
/// The migrate step of a version whose migration fails half-way: it moves the schema (a
/// table and a migration's row) and the data (every note gone), then fails.
const HALFWAY_MIGRATION: &str = r#"set -eu
[ "${1:-}" = migrate ] || { echo "this test version only migrates" >&2; exit 1; }
PGPASSWORD="$(cat /run/secrets/app_db_password)" psql -v ON_ERROR_STOP=1 -h postgres -U app -d app <<'SQL'
CREATE TABLE halfway (id int);
INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
    VALUES (99990101000001, 'halfway', true, '\x00'::bytea, 1);
DELETE FROM notes;
SQL
echo "the second migration fails" >&2
exit 1
"#;

const SITE: &str = "app.test";
const SUBNET: &str = "172.30.201.0/24";
const DYNAMIC_RANGE: &str = "172.30.201.128/25";
const NGINX_ADDRESS: &str = "172.30.201.10";

/// A client in a namespace of its own, speaking to the site through nginx on the stack's
/// network with curl, trusting `root`.
struct Client<'a> {
    netns: &'a Netns,
    root: &'a Path,
}

impl Client<'_> {
    /// curl in the client's namespace, giving up after `max_time` seconds, reaching the site
    /// at nginx's address and trusting `root`.
    fn curl(&self, max_time: &str) -> Command {
        let mut command = self.netns.command("curl");
        command
            .args(["--silent", "--noproxy", "*", "--max-time", max_time])
            .args(["--resolve", &format!("{SITE}:443:{NGINX_ADDRESS}")])
            .arg("--cacert")
            .arg(self.root);
        command
    }

    /// `method path` with an optional JSON body: the status (0 when nothing answered) and body.
    fn request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        self.request_with(method, path, body, &[])
    }

    /// [`Client::request`] with extra headers.
    fn request_with(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[&str],
    ) -> (u16, String) {
        let mut command = self.curl("10");
        for header in headers {
            command.args(["--header", header]);
        }
        command.args(["--request", method, "--write-out", "\n%{http_code}"]);
        if let Some(body) = body {
            command
                .args(["--header", "content-type: application/json"])
                .args(["--data-binary", body]);
        }
        let output = command
            .arg(format!("https://{SITE}{path}"))
            .output()
            .expect("run curl in the client's namespace");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (status.trim().parse().unwrap_or(0), body.to_owned())
    }

    /// The body of a GET of `path` once it answers 200, trying for `seconds`.
    fn wait_for_ok(&self, path: &str, seconds: u64, what: &str) -> String {
        local_servers::wait_for_value(Duration::from_secs(seconds), what, || {
            let (status, body) = self.request("GET", path, None);
            (status == 200).then_some(body)
        })
        .unwrap()
    }

    /// Asks for `path` `rate` times a second on kept-alive connections, as a browser would,
    /// until `asking` turns false: every status, 0 for a request nothing answered.
    fn watch(&self, path: &str, rate: u32, asking: &std::sync::atomic::AtomicBool) -> Vec<u16> {
        let url = format!("https://{SITE}{path}");
        let mut statuses = Vec::new();
        while asking.load(std::sync::atomic::Ordering::Relaxed) {
            // Two seconds of requests per curl, which reuses its connection between them.
            let count = rate as usize * 2;
            let mut command = self.curl("20");
            command
                .args(["--rate", &format!("{rate}/s")])
                .args(["--write-out", "%{http_code}\n"]);
            for _ in 0..count {
                command.args(["--output", "/dev/null", &url]);
            }
            let output = command
                .output()
                .expect("run curl in the client's namespace");
            let mut answered: Vec<u16> = String::from_utf8_lossy(&output.stdout)
                .lines()
                .map(|line| line.trim().parse().unwrap_or(0))
                .collect();
            answered.resize(count, 0);
            statuses.extend(answered);
        }
        statuses
    }

    /// The statuses of `count` GETs of `path` made one after another on one connection.
    fn burst(&self, path: &str, count: usize) -> Vec<u16> {
        let url = format!("https://{SITE}{path}");
        let mut command = self.curl("30");
        command.args(["--output", "/dev/null", "--write-out", "%{http_code}\n"]);
        for _ in 0..count {
            command.arg(&url);
        }
        let output = command
            .output()
            .expect("run curl in the client's namespace");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect()
    }
}

/// What `docker ps` says of the compose project's containers of `service`.
fn containers(project: &str, service: &str, extra: &[&str]) -> String {
    let listed = Command::new(docker_client())
        .args(["ps", "--filter"])
        .arg(format!("label=com.docker.compose.project={project}"))
        .arg("--filter")
        .arg(format!("label=com.docker.compose.service={service}"))
        .args(extra)
        .output()
        .expect("run docker ps");
    String::from_utf8_lossy(&listed.stdout).into_owned()
}

/// The sum of the memory the project's running containers use, in MiB.
fn stack_memory_mib(project: &str) -> f64 {
    let ids = Command::new(docker_client())
        .args(["ps", "--quiet", "--filter"])
        .arg(format!("label=com.docker.compose.project={project}"))
        .output()
        .unwrap();
    let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let mut args = vec!["stats", "--no-stream", "--format", "{{.MemUsage}}"];
    args.extend(ids.iter().map(String::as_str));
    let stats = docker(&args);
    String::from_utf8_lossy(&stats.stdout)
        .lines()
        .filter_map(|line| line.split('/').next())
        .map(|used| {
            let used = used.trim();
            let number: f64 = used
                .trim_end_matches(|c: char| c.is_ascii_alphabetic())
                .parse()
                .unwrap_or(0.0);
            match used.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.') {
                "GiB" => number * 1024.0,
                "KiB" | "kB" => number / 1024.0,
                "B" => number / (1024.0 * 1024.0),
                _ => number,
            }
        })
        .sum()
}

/// A webhook receiver for Alertmanager: every POST body, one per line, appended to a file.
const RECEIVER: &str = r#"
import http.server, sys
out, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        with open(out, "ab") as f:
            f.write(body + b"\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer((host, port), Receiver).serve_forever()
"#;

/// `docker-compose ARGS` in the host's deploy folder, as an operator runs it there.
fn compose_on_host(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("docker-compose")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run docker-compose (package docker-compose)")
}

/// The last lines a container wrote, both streams.
fn container_logs(name: &str) -> String {
    let output = docker(&["logs", "--tail", "40", name]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs app-desktop from the deb in `dist` in the client's namespace under Xvfb, takes a
/// minidump of it and uploads it through nginx as a crash report of `version`; the report's id.
fn upload_desktop_minidump(dist: &Path, work: &Path, client: &Client, version: &str) -> String {
    let deb = std::fs::read_dir(dist)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|extension| extension == "deb"))
        .expect("dist made a deb");
    let root = work.join("desktop-root");
    let unpacked = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&root)
        .output()
        .unwrap();
    assert_success(&unpacked, "dpkg-deb -x");
    let xvfb = local_servers::Xvfb::start().expect("start Xvfb");
    let mut app = e2e::DesktopRun::start_command(
        client.netns.command(root.join("usr/bin/app-desktop")),
        &xvfb,
        &work.join("desktop-home"),
        &[],
    );
    // Running with its window up: the main thread is in the app's event loop.
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        app.child.try_wait().unwrap().is_none(),
        "app-desktop ended early: {}",
        app.log()
    );
    let dump = e2e::minidump_of(&mut app.child);
    let dump_file = work.join("app-desktop.dmp");
    std::fs::write(&dump_file, dump).unwrap();
    let metadata = format!(
        r#"{{"report_id":"5a5a5a5a-1111-4222-8333-444455556666","product":"app-desktop","version":"{version}","channel":"stable","os":"linux","arch":"x86_64"}}"#
    );
    let output = client
        .curl("30")
        .args(["--write-out", "\n%{http_code}"])
        .args([
            "--form",
            &format!("metadata={metadata};type=application/json"),
        ])
        .arg("--form")
        .arg(format!(
            "minidump=@{};type=application/octet-stream",
            dump_file.display()
        ))
        .arg(format!("https://{SITE}/api/crashes"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", ""));
    assert_eq!(
        status.trim(),
        "201",
        "the crash upload through nginx: {body}"
    );
    let answer: serde_json::Value = serde_json::from_str(body).unwrap();
    answer["id"].as_str().unwrap().to_owned()
}

/// The certificate nginx serves for the site on 127.0.0.1:`port`, as PEM.
fn served_certificate_text(port: u16) -> String {
    let fetched = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{port} -servername {SITE} </dev/null 2>/dev/null | openssl x509"
        ))
        .output()
        .unwrap();
    assert_success(&fetched, "openssl s_client for the served certificate");
    String::from_utf8(fetched.stdout).unwrap()
}

/// The files under `dir`, recursively, relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                found.push(relative.display().to_string());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn the_whole_stack_deploys_serves_clients_from_outside_and_rolls_back_a_broken_version() {
    let engine = DockerEngine::ensure().unwrap();
    eprintln!("docker engine started here: {}", engine.started_here());
    let _shared_root = SharedRoot::ensure();
    let work = tempfile::tempdir().unwrap();
    // The stand-ins wait mostly on Debian's mirrors and the release build on the processor:
    // both at once, the stand-ins stopped if the test ends first.
    make_base();
    let stand_ins_log = work.path().join("stand-ins.log");
    let mut stand_ins = KillOnDrop(
        support::xtask_command(&["docker", "stand-ins"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stand_ins_log).unwrap())
            .spawn()
            .expect("run xtask docker stand-ins"),
    );
    // A release signed with an updater key of the test's own, whose public half the deployed
    // update server is given. The key is not built into the app (only its crash reports are
    // used here), so the build is the one the other dist tests and CI's dist step share.
    let (updater_key, updater_secret) =
        e2e::updater_keys(&work.path().join("keys"), UPDATER_PASSWORD);
    let dist = work.path().join("dist");
    dist_into_with(
        &dist,
        &[
            (
                "TAURI_SIGNING_PRIVATE_KEY",
                updater_secret.to_str().unwrap(),
            ),
            ("TAURI_SIGNING_PRIVATE_KEY_PASSWORD", UPDATER_PASSWORD),
        ],
    );
    let id = std::process::id();
    let repository = format!("xtask-test/app-web-stack-{id}");
    let version = workspace_version();
    let good = format!("{repository}:{version}");
    let broken = format!("{repository}:broken");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dist.join("dist-manifest.json")).unwrap())
            .unwrap();
    // As `docker build` tags it: the short commit, with its `-dirty` mark when there is one.
    let commit = manifest["commit"].as_str().unwrap();
    let dirty = if commit.ends_with("-dirty") {
        "-dirty"
    } else {
        ""
    };
    let commit_tag = format!("{repository}:{}{dirty}", &commit[..12]);
    let _images = Images(vec![good.clone(), broken.clone(), commit_tag]);
    let built_stand_ins = stand_ins.0.wait().unwrap();
    let stand_ins_report = std::fs::read_to_string(&stand_ins_log).unwrap();
    assert!(
        built_stand_ins.success(),
        "xtask docker stand-ins failed:\n{stand_ins_report}"
    );
    eprint!("{stand_ins_report}");
    build_image(&dist, &repository);
    // The broken version: the same binary asked to serve with a command it does not have, so
    // its migrations run but app-web never starts.
    let broken_dir = work.path().join("broken");
    std::fs::create_dir_all(&broken_dir).unwrap();
    std::fs::write(
        broken_dir.join("Dockerfile"),
        format!("FROM {good}\nCMD [\"no-such-command\"]\n"),
    )
    .unwrap();
    let built = Command::new(docker_client())
        .args(["build", "--quiet", "--tag", &broken])
        .arg(&broken_dir)
        .output()
        .unwrap();
    assert_success(&built, "docker build of the broken version");

    // The good version goes through a registry: pushed, untagged here, pulled by the deploy.
    let registry = start_registry(work.path());
    let published = format!("127.0.0.1:{}/app-web", registry.port);
    let published_good = format!("{published}:{version}");
    let published_broken = format!("{published}:broken");
    let _published_images = Images(vec![published_good.clone(), published_broken.clone()]);
    assert_success(&docker(&["tag", &good, &published_good]), "docker tag");
    let github_output = work.path().join("github-output");
    std::fs::write(&github_output, "").unwrap();
    let pushed = Command::new(e2e::binary("xtask"))
        .args(["docker", "push", "--image", &published_good])
        .env("GITHUB_OUTPUT", &github_output)
        .output()
        .unwrap();
    assert_success(&pushed, "xtask docker push");
    let digest = String::from_utf8_lossy(&pushed.stdout).trim().to_owned();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert_eq!(
        std::fs::read_to_string(&github_output).unwrap(),
        format!("digest={digest}\n")
    );
    assert_success(&docker(&["rmi", &published_good]), "docker rmi");
    assert_success(&docker(&["tag", &broken, &published_broken]), "docker tag");

    // The outside world: a namespace for the servers the stack reaches out to, and two clients.
    let services = Netns::create("appsvc", 1, &[SUBNET]).expect("make the services' namespace");
    let first_client = Netns::create("appc1", 2, &[SUBNET]).expect("make a client namespace");
    let second_client = Netns::create("appc2", 3, &[SUBNET]).expect("make a client namespace");
    let pebble = Pebble::start_with(
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        &PebbleOptions {
            http_port: 80,
            validity_days: 45,
            netns: Some(&services),
            challenge_address: NGINX_ADDRESS.parse().unwrap(),
        },
    )
    .expect("start Pebble");
    let pebble_root = work.path().join("pebble-root.pem");
    pebble.write_root_certificate(&pebble_root).unwrap();
    let store = S3Server::start_in(Some(&services), &["stack-backups"]).expect("start s3s-fs");
    let alerts = work.path().join("alerts.jsonl");
    std::fs::write(&alerts, "").unwrap();
    let receiver_port = free_port();
    let _receiver = KillOnDrop(
        services
            .command("python3")
            .args(["-c", RECEIVER])
            .arg(&alerts)
            .args([&services.address.to_string(), &receiver_port.to_string()])
            .spawn()
            .expect("start the webhook receiver"),
    );
    local_servers::wait_for(Duration::from_secs(20), "the webhook receiver", || {
        std::net::TcpStream::connect((services.address, receiver_port)).is_ok()
    })
    .unwrap();

    let sshd = start_sshd(work.path());
    let remote = work.path().join("remote");
    let project = format!("stacktest{id}");
    let _down = ComposeDown {
        project: project.clone(),
        dir: remote.join("docker"),
    };
    // The host's own files, which no deploy writes: the secrets, certbot's trust in Pebble's
    // API and the settings that say so.
    let host_docker = remote.join("docker");
    std::fs::create_dir_all(&host_docker).unwrap();
    let secrets = xtask(&[
        "docker",
        "secrets",
        "--dir",
        host_docker.join("secrets").to_str().unwrap(),
    ]);
    assert_success(&secrets, "xtask docker secrets");
    let secret_dir = host_docker.join("secrets");
    std::fs::write(
        secret_dir.join("backup_s3_secret_key"),
        local_servers::s3::SECRET_KEY,
    )
    .unwrap();
    std::fs::write(
        secret_dir.join("alert_webhook_url"),
        format!("http://{}:{receiver_port}/alerts", services.address),
    )
    .unwrap();
    let admin_token = std::fs::read_to_string(secret_dir.join("admin_token"))
        .unwrap()
        .trim()
        .to_owned();
    std::fs::copy(pebble.api_certificate(), host_docker.join("acme-ca.pem")).unwrap();
    // The site's name is the test's own and no DNS knows it: the blackbox exporter, which
    // probes the site as the internet reaches it, is told its address as split-horizon DNS
    // would, so it asks no resolver outside the machine. An override of the host's own, named
    // in .env so that plain `docker-compose` there reads it too.
    std::fs::write(
        host_docker.join("site-address.yaml"),
        format!("services:\n  blackbox-exporter:\n    extra_hosts: [\"{SITE}:{NGINX_ADDRESS}\"]\n"),
    )
    .unwrap();
    let local = "# set on the host by its operator\nCERTBOT_CA_BUNDLE=./acme-ca.pem\nCOMPOSE_FILE=compose.yaml:site-address.yaml\nHOST_ONLY_SETTING=kept\n";
    std::fs::write(host_docker.join("local.env"), local).unwrap();
    let identity = work.path().join("backup-identity.txt");
    assert_success(
        &e2e::run_binary(&["backup", "keygen", "--out", identity.to_str().unwrap()]),
        "app-web backup keygen",
    );
    let recipient = std::fs::read_to_string(&identity)
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("# public key: ").map(str::to_owned))
        .expect("keygen names the public key");

    let (http_port, https_port) = (free_port(), free_port());
    let (app_ports, prometheus_port, alertmanager_port) =
        (free_port_range(), free_port(), free_port());
    std::fs::write(
        work.path().join("test.env"),
        format!(
            "COMPOSE_PROJECT_NAME={project}\n\
             COMPOSE_PROFILES=metrics\n\
             APP_DOMAIN={SITE}\n\
             CERTBOT_EMAIL=ops@{SITE}\n\
             CERTBOT_SERVER={directory}\n\
             NGINX_HTTP_PORT=127.0.0.1:{http_port}\n\
             NGINX_HTTPS_PORT=127.0.0.1:{https_port}\n\
             APP_NETWORK_SUBNET={SUBNET}\n\
             APP_NETWORK_DYNAMIC_RANGE={DYNAMIC_RANGE}\n\
             NGINX_ADDRESS={NGINX_ADDRESS}\n\
             APP_WEB_PORT={app_ports}\n\
             PROMETHEUS_PORT={prometheus_port}\n\
             ALERTMANAGER_PORT={alertmanager_port}\n\
             BACKUP_RECIPIENTS={recipient}\n\
             BACKUP_SCHEDULE=*/20 * * * * *\n\
             BACKUP_S3_BUCKET=stack-backups\n\
             BACKUP_S3_ENDPOINT={s3}\n\
             BACKUP_S3_ACCESS_KEY_ID={access_key}\n\
             BACKUP_S3_ALLOW_HTTP=true\n\
             UPDATER_PUBLIC_KEY={updater_key}\n",
            directory = pebble.directory(),
            s3 = store.endpoint(),
            access_key = local_servers::s3::ACCESS_KEY,
        ),
    )
    .unwrap();
    let config = work.path().join("environments.toml");
    std::fs::write(
        &config,
        format!(
            r#"[test]
ssh = "root@127.0.0.1"
ssh_port = {port}
ssh_key = "id_ed25519"
known_hosts = "known_hosts"
dir = "{remote}"
url = "https://{SITE}:{https_port}"
smoke_cacert = "pebble-root.pem"
smoke_resolve = ["{SITE}:{https_port}:127.0.0.1"]
certificate_timeout_secs = 300
compose = "docker-compose"
root = "{root}"
files = [".dockerignore", "docker", "nginx"]
compose_files = ["docker/compose.yaml", "docker/site-address.yaml"]
env_file = "test.env"
image = "{published}"
migrate_service = "migrate"
backup_service = "backup"
proxy_service = "nginx"
allow_stand_ins = true
health_timeout_secs = 120
"#,
            port = sshd.port,
            remote = remote.display(),
            root = support::project_root().display(),
        ),
    )
    .unwrap();
    let deploy = |extra: &[&str]| {
        let mut args = vec![
            "deploy",
            "--env",
            "test",
            "--config",
            config.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        xtask(&args)
    };

    // The host's first deploy: built, migrated, healthy, and smoke-tested through nginx once
    // certbot has the certificate from Pebble.
    let started = std::time::Instant::now();
    let first = deploy(&["--tag", &version]);
    let took = started.elapsed();
    let report = String::from_utf8_lossy(&first.stderr).into_owned();
    assert!(
        first.status.success(),
        "the first deploy failed:\n{report}\ncertbot:\n{}\nPebble:\n{}",
        String::from_utf8_lossy(
            &docker(&["logs", "--tail", "40", &format!("{project}_certbot_1")]).stderr
        ),
        pebble.log()
    );
    eprintln!(
        "figure: deploy to the first passing smoke test {:.0} s",
        took.as_secs_f64()
    );
    let waited: f64 = report
        .lines()
        .find_map(|line| line.strip_prefix("xtask: a trusted certificate: ok in "))
        .and_then(|took| took.strip_suffix('s'))
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or_else(|| panic!("no wait for the certificate in:\n{report}"));
    eprintln!("the smoke test waited {waited:.1} s for certbot's certificate");
    for step in [
        "build images: ok",
        "migrations: ok",
        "app-web healthy: ok",
        "nginx proxying to app-web: ok",
        "TLS 1.2 or newer, certificate valid: ok",
        "security headers: ok",
        "API round trip: ok",
    ] {
        assert!(report.contains(step), "{step:?} missing:\n{report}");
    }
    let written = std::fs::read_to_string(host_docker.join(".env")).unwrap();
    assert!(
        written.contains("HOST_ONLY_SETTING=kept")
            && written.contains(&format!("APP_WEB_IMAGE={published_good}")),
        "{written}"
    );

    // Every service of the metrics profile runs; those Debian cannot provide are named.
    for service in [
        "postgres",
        "redis",
        "app-web",
        "nginx",
        "backup",
        "certbot",
        "prometheus",
        "alertmanager",
        "postgres-exporter",
        "redis-exporter",
        "nginx-exporter",
        "node-exporter",
        "blackbox-exporter",
    ] {
        assert!(
            !containers(&project, service, &["--quiet"])
                .trim()
                .is_empty(),
            "{service} is not running"
        );
    }
    eprintln!("not run here (Debian does not package them): grafana, loki, alloy");
    eprintln!(
        "figure: the stack's memory right after the first deploy {:.0} MiB",
        stack_memory_mib(&project)
    );

    // Two clients from two addresses: the notes API round trip through nginx, then one of
    // them busy enough to be limited while the other is still served.
    let one = Client {
        netns: &first_client,
        root: &pebble_root,
    };
    let two = Client {
        netns: &second_client,
        root: &pebble_root,
    };
    let (status, body) = one.request(
        "POST",
        "/api/notes",
        Some(r#"{"title":"written before the redeploy","body":"through nginx"}"#),
    );
    assert_eq!(status, 201, "{body}");
    let note: serde_json::Value = serde_json::from_str(&body).unwrap();
    let note_path = format!("/api/notes/{}", note["id"].as_str().unwrap());
    let (status, body) = two.request("GET", &note_path, None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("written before the redeploy"), "{body}");
    // The UI in a browser, from the first client: app.js runs to the end under the shipped
    // Content-Security-Policy without a single report.
    let served_certificate = work.path().join("served.pem");
    std::fs::write(&served_certificate, served_certificate_text(https_port)).unwrap();
    let page = e2e::chromium::visit(
        first_client.command("chromium"),
        &format!("https://{SITE}/"),
        SITE,
        NGINX_ADDRESS,
        &e2e::chromium::spki_hash(&served_certificate),
    );
    assert!(
        page.dom.contains(&format!("<title>App {version}</title>")),
        "app.js set the title from /api/info:\n{}\n{}",
        page.dom,
        page.log
    );
    assert_eq!(
        page.csp_reports(),
        Vec::<&str>::new(),
        "the UI loads without a CSP report"
    );

    // The release published to the deployed server by `cargo xtask release publish`, run
    // from the first client as CI runs it against a server on the internet, then checked for
    // and halted through nginx.
    first_client
        .set_hosts(&format!("127.0.0.1 localhost\n{NGINX_ADDRESS} {SITE}\n"))
        .unwrap();
    let published_release = first_client
        .command(e2e::binary("xtask"))
        .args(["release", "publish", "--server", &format!("https://{SITE}")])
        .args([
            "--download-url",
            &format!("https://downloads.{SITE}/{version}/"),
        ])
        .arg("--token-file")
        .arg(secret_dir.join("admin_token"))
        .args(["--updater-pubkey", &updater_key])
        .arg("--out")
        .arg(work.path().join("release"))
        .arg(&dist)
        .env("SSL_CERT_FILE", &pebble_root)
        .env_remove("GITHUB_REPOSITORY")
        .env_remove("GITHUB_TOKEN")
        .output()
        .unwrap();
    assert_success(
        &published_release,
        "cargo xtask release publish to the stack",
    );
    let check_path = |current: &str| {
        format!(
            "/api/updates/stable/linux/x86_64/{current}?bundle_type=deb&install_id=0f0f0f0f-1111-4222-8333-444455556666"
        )
    };
    let (status, body) = two.request("GET", &check_path("0.0.1"), None);
    assert_eq!(status, 200, "the update check through nginx: {body}");
    let offer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(offer["version"], version.as_str(), "{offer}");
    let (status, body) = one.request_with(
        "PATCH",
        &format!("/api/admin/releases/{version}"),
        Some(r#"{"halted":true}"#),
        &[&format!("authorization: Bearer {admin_token}")],
    );
    assert_eq!(status, 200, "the halt through nginx: {body}");
    let (status, body) = two.request("GET", &check_path("0.0.2"), None);
    assert_eq!(status, 204, "a check after the halt: {body}");
    // An answer nginx kept before the halt lasts its max-age (60 s) at most: one check a
    // second waits for it to turn 204 while the next checks run.
    let report_id = std::thread::scope(|scope| {
        let halt_waiter = scope.spawn(|| {
            let halted_at = std::time::Instant::now();
            while two.request("GET", &check_path("0.0.1"), None).0 != 204 {
                assert!(
                    halted_at.elapsed() < Duration::from_secs(90),
                    "nginx kept answering the halted release's check for 90 s"
                );
                std::thread::sleep(Duration::from_secs(1));
            }
            halted_at.elapsed()
        });

        // A crash report of the released desktop app: a real minidump of app-desktop from the
        // published deb, running under Xvfb in the first client's namespace (it can reach only
        // the stack), uploaded through nginx and symbolicated with the symbols the publish sent.
        let report_id = upload_desktop_minidump(&dist, work.path(), &one, &version);
        let report = local_servers::wait_for_value(
            Duration::from_secs(120),
            "the crash report to be symbolicated",
            || {
                let (status, body) = one.request_with(
                    "GET",
                    &format!("/api/admin/crashes/reports/{report_id}"),
                    None,
                    &[&format!("authorization: Bearer {admin_token}")],
                );
                let report: serde_json::Value = serde_json::from_str(&body).ok()?;
                (status == 200
                    && report["stack"]
                        .as_array()
                        .is_some_and(|frames| !frames.is_empty()))
                .then_some(report)
            },
        )
        .unwrap();
        // The frames in app-desktop's own code are named from its symbols; only the system
        // libraries, whose symbols nobody uploaded, are left as offsets.
        let named: Vec<&str> = report["stack"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|frame| frame["module"] == "app-desktop")
            .filter_map(|frame| frame["function"].as_str())
            .collect();
        assert!(
            !named.is_empty(),
            "no frame of app-desktop is named from its symbols: {report}"
        );
        let missing = report["missing_modules"].to_string();
        assert!(
            !missing.contains("app-desktop"),
            "app-desktop's symbols were not found: {report}"
        );
        eprintln!(
            "the crash report names app-desktop's frames, e.g. {:?}",
            named.first()
        );

        let statuses = one.burst("/api/info", 120);
        let limited = statuses.iter().filter(|status| **status == 429).count();
        assert!(
            limited > 0 && statuses.contains(&200),
            "the busy client was never limited: {statuses:?}"
        );
        let (status, _) = two.request("GET", "/api/info", None);
        assert_eq!(status, 200, "the other client shares the busy one's limit");
        eprintln!("rate limits: the busy client got {limited} of 120 answered 429; the other 200");

        // Analytics: the same batch from each client, with the same user agent, is two users (the
        // browser's visit above counted a web user of its own).
        for (client, session) in [
            (&one, "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"),
            (&two, "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0"),
        ] {
            let batch = format!(
                r#"{{"app":"app-desktop","session_id":"{session}","app_version":"1.0.0","os":"linux","locale":"en","events":[{{"name":"app_started"}}]}}"#
            );
            let (status, body) = client.request("POST", "/api/events", Some(&batch));
            assert_eq!(status, 202, "{body}");
        }
        let (status, body) = one.request_with(
            "GET",
            "/api/admin/analytics/daily?days=1",
            None,
            &[&format!("authorization: Bearer {admin_token}")],
        );
        assert_eq!(status, 200, "{body}");
        let daily: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        let users: i64 = daily
            .iter()
            .filter(|row| row["app"] == "app-desktop" && row["name"] == "app_started")
            .filter_map(|row| row["users"].as_i64())
            .sum();
        assert_eq!(users, 2, "two clients are two users: {body}");

        // Prometheus scrapes every target it is given.
        let targets = local_servers::wait_for_value(
            Duration::from_secs(120),
            "Prometheus to find every target up",
            || {
                let (status, body) = e2e::http_get(&format!(
                    "http://127.0.0.1:{prometheus_port}/api/v1/targets?state=active"
                ));
                let answer: serde_json::Value = serde_json::from_str(&body).ok()?;
                let targets = answer["data"]["activeTargets"].as_array()?.clone();
                (status == 200
                    && !targets.is_empty()
                    && targets.iter().all(|target| target["health"] == "up"))
                .then_some(targets)
            },
        )
        .unwrap_or_else(|err| {
            let (_, body) = e2e::http_get(&format!(
                "http://127.0.0.1:{prometheus_port}/api/v1/targets?state=active"
            ));
            panic!("{err}: {body}")
        });
        let jobs: Vec<&str> = targets
            .iter()
            .filter_map(|target| target["labels"]["job"].as_str())
            .collect();
        eprintln!("Prometheus: {} targets up: {jobs:?}", targets.len());
        eprintln!(
            "figure: the stack's memory when idle after the traffic above {:.0} MiB",
            stack_memory_mib(&project)
        );
        let halt_delay = halt_waiter.join().unwrap();
        eprintln!(
            "figure: the halt reached a check nginx had kept after {:.0} s",
            halt_delay.as_secs_f64()
        );
        report_id
    });

    // An induced fault: app-web stopped. Its alert goes from Prometheus through Alertmanager
    // to the webhook; meanwhile the backup service keeps to its schedule, off-site included.
    let app_web = containers(&project, "app-web", &["--quiet"])
        .trim()
        .to_owned();
    let stopped_at = std::time::Instant::now();
    assert_success(&docker(&["stop", &app_web]), "docker stop app-web");
    let remote_backups = local_servers::wait_for_value(
        Duration::from_secs(120),
        "a scheduled backup in the S3 store",
        || {
            let files = files_under(&store.object_path("stack-backups", ""));
            files
                .iter()
                .any(|file| file.ends_with(".json"))
                .then_some(files)
        },
    )
    .unwrap_or_else(|err| {
        panic!(
            "{err}\nbackup:\n{}\ns3s-fs:\n{}",
            container_logs(&format!("{project}_backup_1")),
            store.log()
        )
    });
    eprintln!("the S3 store holds {remote_backups:?}");
    let readable = work.path().join("verify");
    std::fs::create_dir_all(&readable).unwrap();
    std::fs::copy(&identity, readable.join("identity.txt")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&readable, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        readable.join("identity.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let verified = compose_on_host(
        &host_docker,
        &[
            "run",
            "--rm",
            "--no-deps",
            "--volume",
            &format!("{}:/run/identity:ro", readable.display()),
            "-e",
            "APP_WEB_BACKUP_IDENTITY_FILE=/run/identity/identity.txt",
            "backup",
            "verify",
            "latest",
        ],
    );
    assert_success(&verified, "app-web backup verify in the backup service");
    eprintln!(
        "backup verify: {}",
        String::from_utf8_lossy(&verified.stdout).trim()
    );
    let fired = local_servers::wait_for_value(
        Duration::from_secs(300),
        "TargetDown for app-web at the webhook",
        || {
            let text = std::fs::read_to_string(&alerts).ok()?;
            text.lines()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .find(|notice| {
                    notice["status"] == "firing"
                        && notice["alerts"].as_array().is_some_and(|alerts| {
                            alerts.iter().any(|alert| {
                                alert["labels"]["alertname"] == "TargetDown"
                                    && alert["labels"]["job"] == "app-web"
                            })
                        })
                })
        },
    )
    .unwrap_or_else(|err| {
        panic!(
            "{err}; received: {}",
            std::fs::read_to_string(&alerts).unwrap_or_default()
        )
    });
    eprintln!(
        "figure: app-web stopped to TargetDown at the webhook {:.0} s ({} alerts in the notice)",
        stopped_at.elapsed().as_secs_f64(),
        fired["alerts"].as_array().map_or(0, Vec::len)
    );
    assert_success(&docker(&["start", &app_web]), "docker start app-web");
    local_servers::wait_for(Duration::from_secs(60), "app-web again", || {
        one.request("GET", "/api/info", None).0 == 200
    })
    .unwrap();

    // `docker-compose down` and `up` again: the note, the backups and the certificate remain.
    let down = compose_on_host(&host_docker, &["down", "--timeout", "30"]);
    assert_success(&down, "docker-compose down");
    let up = compose_on_host(&host_docker, &["up", "--detach", "--no-build"]);
    assert_success(&up, "docker-compose up");
    let again = two.wait_for_ok(&note_path, 180, "the note through nginx after down and up");
    assert!(again.contains("written before the redeploy"), "{again}");
    let (status, body) = one.request_with(
        "GET",
        &format!("/api/admin/crashes/reports/{report_id}"),
        None,
        &[&format!("authorization: Bearer {admin_token}")],
    );
    assert_eq!(
        status, 200,
        "the crash report went with down and up: {body}"
    );
    assert_eq!(
        served_certificate_text(https_port),
        std::fs::read_to_string(&served_certificate).unwrap(),
        "nginx serves the same certificate after down and up"
    );
    let listed = compose_on_host(
        &host_docker,
        &["run", "--rm", "--no-deps", "backup", "list", "--json"],
    );
    assert_success(&listed, "app-web backup list");
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains(".json")
            || String::from_utf8_lossy(&listed.stdout).contains("\"name\""),
        "the backups went with down and up: {}",
        String::from_utf8_lossy(&listed.stdout)
    );

    // A second deploy, of a new tag, and then a broken one, while both clients keep asking
    // through nginx: the new version starts beside the running one, nginx switches to it and
    // the old one drains, so no request fails; the broken version never starts, nothing
    // switches and the running one answers throughout.
    let next = "next";
    let published_next = format!("{published}:{next}");
    let _next_image = Images(vec![published_next.clone()]);
    assert_success(&docker(&["tag", &good, &published_next]), "docker tag");
    let under_load = |tag: &str| {
        let asking = std::sync::atomic::AtomicBool::new(true);
        std::thread::scope(|scope| {
            let watchers = [
                scope.spawn(|| one.watch(&note_path, 8, &asking)),
                scope.spawn(|| two.watch("/api/info", 15, &asking)),
            ];
            let outcome = deploy(&["--tag", tag]);
            asking.store(false, std::sync::atomic::Ordering::Relaxed);
            let statuses: Vec<u16> = watchers
                .into_iter()
                .flat_map(|watcher| watcher.join().unwrap())
                .collect();
            (outcome, statuses)
        })
    };
    let count_failed = |statuses: &[u16]| statuses.iter().filter(|status| **status != 200).count();
    let (second, statuses) = under_load(next);
    assert_success(&second, "the deploy of a new tag");
    let second_report = String::from_utf8_lossy(&second.stderr).into_owned();
    let report = &second_report;
    for step in [
        "new app-web beside the running one: ok",
        "new app-web healthy: ok",
        "smoke test of the new app-web on",
        "nginx switched to the new app-web: ok",
        "old app-web drained and removed: ok",
        "nginx proxying to app-web: ok",
    ] {
        assert!(report.contains(step), "{step:?} missing:\n{report}");
    }
    eprintln!(
        "figure: during the deploy of a new tag {} requests through nginx, {} failed",
        statuses.len(),
        count_failed(&statuses)
    );
    assert_eq!(
        count_failed(&statuses),
        0,
        "requests failed during the deploy of a new tag: {statuses:?}\n{report}"
    );
    let (status, body) = two.request("GET", &note_path, None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("written before the redeploy"), "{body}");
    assert_eq!(
        containers(&project, "app-web", &["--format", "{{.Image}}"]).trim(),
        published_next,
        "one app-web runs, the new one"
    );

    let (third, statuses) = under_load("broken");
    assert!(!third.status.success(), "the broken version deployed");
    let third_report = String::from_utf8_lossy(&third.stderr).into_owned();
    let report = &third_report;
    assert!(
        report.contains("failed before anything switched") && report.contains("no-such-command"),
        "{report}"
    );
    eprintln!(
        "figure: during the broken deploy {} requests through nginx, {} failed",
        statuses.len(),
        count_failed(&statuses)
    );
    assert_eq!(
        count_failed(&statuses),
        0,
        "requests failed during the broken deploy: {statuses:?}\n{report}"
    );
    let running = containers(&project, "app-web", &["--format", "{{.Image}}"]);
    assert_eq!(
        running.trim(),
        published_next,
        "the broken app-web was removed"
    );
    let written = std::fs::read_to_string(host_docker.join(".env")).unwrap();
    assert!(
        written.contains(&format!("APP_WEB_IMAGE={published_next}")),
        "the settings name the tag that runs again: {written}"
    );
    assert_eq!(
        std::fs::read_to_string(host_docker.join("local.env")).unwrap(),
        local,
        "deploys and a failed one leave the host's settings alone"
    );

    // The history on the host: two tags deployed, the broken one kept from serving and why.
    let history = deploy(&["--history"]);
    assert_success(&history, "deploy --history");
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&history.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len(), 3, "{records:?}");
    assert_eq!(records[0]["tag"], version.as_str());
    assert_eq!(records[0]["outcome"], "deployed");
    assert_eq!(records[1]["tag"], next);
    assert_eq!(records[1]["outcome"], "deployed");
    assert_eq!(records[2]["tag"], "broken");
    assert_eq!(records[2]["previous"], next);
    assert_eq!(
        records[2]["outcome"],
        format!("failed, {next} kept serving").as_str()
    );
    // Each deploy but the host's first took a backup before migrating and names it, under a
    // prefix of its own that the schedule's prune (every 20 s here) leaves alone.
    assert!(records[0].get("backup").is_none(), "{}", records[0]);
    for (record, report) in records[1..].iter().zip([&second_report, &third_report]) {
        let backup = record["backup"].as_str().unwrap_or_default();
        assert!(
            backup.starts_with("predeploy-")
                && report.contains(&format!(
                    "xtask: backup {backup} taken before the migrations"
                )),
            "{record}\n{report}"
        );
    }
    assert!(
        records[2]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("no-such-command")),
        "{}",
        records[2]
    );

    // A version whose migration fails half-way: it drops the notes and moves the schema,
    // then fails. Nothing switches; `--rollback --restore` puts the backup the deploy took
    // before its migrations back and returns to the tag it tried to replace.
    let halfway_dir = work.path().join("halfway");
    std::fs::create_dir_all(&halfway_dir).unwrap();
    std::fs::write(halfway_dir.join("halfway.sh"), HALFWAY_MIGRATION).unwrap();
    std::fs::write(
        halfway_dir.join("Dockerfile"),
        format!(
            "FROM postgres:15.13-bookworm\nCOPY --from={good} /usr/local/bin/app-web /usr/local/bin/app-web\nCOPY halfway.sh /usr/local/bin/halfway.sh\nENTRYPOINT [\"sh\", \"/usr/local/bin/halfway.sh\"]\n"
        ),
    )
    .unwrap();
    let published_halfway = format!("{published}:halfway");
    let _halfway_image = Images(vec![published_halfway.clone()]);
    let built = Command::new(docker_client())
        .args(["build", "--quiet", "--tag", &published_halfway])
        .arg(&halfway_dir)
        .output()
        .unwrap();
    assert_success(&built, "docker build of the half-way migration");
    let fourth = deploy(&["--tag", "halfway"]);
    let report = String::from_utf8_lossy(&fourth.stderr).into_owned();
    assert!(
        !fourth.status.success()
            && report.contains("migrations: FAILED")
            && report.contains("the second migration fails"),
        "{report}"
    );
    // Asked of PostgreSQL, not through app-web, whose cache keeps an answer for 30 s.
    let notes_in_database = || {
        let counted = compose_on_host(
            &host_docker,
            &[
                "exec",
                "-T",
                "--user",
                "postgres",
                "postgres",
                "psql",
                "-d",
                "app",
                "-tAc",
                "SELECT count(*) FROM notes",
            ],
        );
        assert_success(&counted, "psql in the postgres service");
        String::from_utf8_lossy(&counted.stdout)
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(
        notes_in_database(),
        0,
        "the half-way migration dropped the notes"
    );
    let identity_arg = identity.to_str().unwrap();
    let plan = deploy(&[
        "--rollback",
        "--restore",
        "--identity",
        identity_arg,
        "--dry-run",
    ]);
    let planned = String::from_utf8_lossy(&plan.stderr).into_owned();
    assert!(
        plan.status.success()
            && planned.contains("every write since then is lost")
            && planned.contains("would restore predeploy-")
            && planned.contains("dropped with their rows: public.halfway")
            && planned.contains(&format!("then return test to {next}")),
        "{planned}"
    );
    assert_eq!(notes_in_database(), 0, "the dry run changed nothing");
    let back = deploy(&["--rollback", "--restore", "--identity", identity_arg]);
    assert_success(&back, "deploy --rollback --restore");
    assert!(
        notes_in_database() > 0,
        "the restore brought the notes back"
    );
    let again = two.wait_for_ok(&note_path, 60, "the note after the restore");
    assert!(again.contains("written before the redeploy"), "{again}");
    // The database equals the backup: a backup taken now has the same tables, row counts
    // and checksums in its manifest as the one restored.
    let history = deploy(&["--history"]);
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&history.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len(), 5, "{records:?}");
    assert_eq!(records[3]["tag"], "halfway");
    assert_eq!(
        records[3]["outcome"],
        format!("failed, {next} kept serving").as_str()
    );
    let restored = records[3]["backup"].as_str().unwrap().to_owned();
    assert_eq!(records[4]["tag"], next);
    assert_eq!(records[4]["outcome"], "deployed");
    assert_eq!(records[4]["rollback_of"], "halfway");
    assert_eq!(records[4]["restored"], restored.as_str());
    let now = compose_on_host(
        &host_docker,
        &[
            "run",
            "--rm",
            "-T",
            "--no-deps",
            "-e",
            "APP_WEB_BACKUP_PREFIX=check",
            "backup",
            "run",
        ],
    );
    assert_success(&now, "app-web backup run after the restore");
    let listed = compose_on_host(
        &host_docker,
        &["run", "--rm", "--no-deps", "backup", "list", "--json"],
    );
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let backups: Vec<serde_json::Value> = serde_json::from_str(&listed)
        .unwrap_or_else(|err| panic!("backup list --json: {err}:\n{listed}"));
    let tables = |prefix: &str| {
        backups
            .iter()
            .find(|backup| backup["name"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("no backup {prefix}: {backups:?}"))["tables"]
            .clone()
    };
    assert_eq!(
        tables("check-"),
        tables(&restored),
        "the restored database differs from the backup"
    );
    eprintln!(
        "figure: after --rollback --restore, {} tables match {restored} row for row",
        tables("check-").as_array().map_or(0, Vec::len)
    );

    // One deploy at a time per host: while another holds the host's deploy lock, a deploy
    // stops at once and says so.
    let lock = remote.join(".deploy/lock");
    let _holder = KillOnDrop(
        Command::new("flock")
            .arg("--no-fork")
            .arg(&lock)
            .args(["sleep", "300"])
            .spawn()
            .expect("run flock"),
    );
    local_servers::wait_for(Duration::from_secs(10), "the lock to be held", || {
        !Command::new("flock")
            .args(["--nonblock"])
            .arg(&lock)
            .arg("true")
            .status()
            .unwrap()
            .success()
    })
    .unwrap();
    let locked_out = deploy(&["--tag", next]);
    let report = String::from_utf8_lossy(&locked_out.stderr);
    assert!(
        !locked_out.status.success() && report.contains("another deploy holds the lock"),
        "{report}"
    );
    drop(_holder);

    // An environment that is not marked as a test host refuses an engine holding stand-ins,
    // before anything on the host changes.
    let real_host = work.path().join("real-host.toml");
    std::fs::write(
        &real_host,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("allow_stand_ins = true\n", ""),
    )
    .unwrap();
    let refused = xtask(&[
        "deploy",
        "--env",
        "test",
        "--config",
        real_host.to_str().unwrap(),
        "--tag",
        &version,
    ]);
    let report = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && report.contains("allow_stand_ins"),
        "{report}"
    );
    assert_eq!(
        containers(&project, "app-web", &["--format", "{{.Image}}"]).trim(),
        published_next,
        "the refused deploy changed nothing"
    );
}
