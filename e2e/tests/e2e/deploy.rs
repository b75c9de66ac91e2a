//! `cargo xtask deploy` end to end on this machine: a real sshd (Debian's openssh-server) on a
//! 127.0.0.1 port with a throwaway host key and user key, in front of the real Docker engine.
//! The stack is reduced, since upstream images cannot be pulled here: the app-web image built
//! from a real dist on the debootstrap base, pushed with `cargo xtask docker push` to a real
//! registry on loopback (Debian's docker-registry) and pulled from there by the deploy, against
//! PostgreSQL and Redis on loopback (host networking, listening on 127.0.0.1 only), with a
//! one-shot migrate service, and the project's nginx (rendered from its template, on the host)
//! in front of app-web over TLS. The first deploy finds nginx on its self-signed certificate,
//! as a new host has it until certbot is done: the smoke test waits until the project's certbot
//! deploy hook hands nginx a certificate from the environment's own CA (one no system store
//! holds, like Let's Encrypt's staging CA), then passes. Settings in the host's `local.env`
//! reach `.env` and survive. Version B, whose health check fails, is rolled back to A
//! automatically; the history on the host shows both.

use e2e::tools as support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use local_servers::{DockerEngine, Nginx, Postgres, Redis, docker_client};
use support::docker::{Images, build_image, docker, make_base};
use support::{assert_success, dist_into, workspace_version, xtask};

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

/// Stops and removes the test's compose project however the test ends.
struct ComposeDown {
    project: String,
}

impl Drop for ComposeDown {
    fn drop(&mut self) {
        let listed = Command::new(docker_client())
            .args([
                "ps",
                "--all",
                "--quiet",
                "--filter",
                &format!("label=com.docker.compose.project={}", self.project),
            ])
            .output();
        if let Ok(listed) = listed {
            for id in String::from_utf8_lossy(&listed.stdout).split_whitespace() {
                let _ = docker(&["rm", "--force", id]);
            }
        }
    }
}

const COMPOSE: &str = r#"# The reduced stack of the deploy test: app-web and its migrations on the host's network
# (PostgreSQL and Redis run on loopback), listening on 127.0.0.1 only.
version: "2.4"
services:
  migrate:
    image: ${APP_WEB_IMAGE}
    network_mode: host
    read_only: true
    command: ["migrate"]
    environment:
      APP_WEB_DATABASE_URL: ${DATABASE_URL}
  app-web:
    image: ${APP_WEB_IMAGE}
    network_mode: host
    read_only: true
    restart: unless-stopped
    environment:
      APP_WEB_LISTEN: 127.0.0.1:${APP_PORT}
      APP_WEB_DATABASE_URL: ${DATABASE_URL}
      APP_WEB_REDIS_URL: ${REDIS_URL}
"#;

/// What `docker ps` with `extra` says of the compose project's app-web containers.
fn app_web_containers(project: &str, extra: &[&str]) -> String {
    let listed = Command::new(docker_client())
        .args(["ps", "--filter"])
        .arg(format!("label=com.docker.compose.project={project}"))
        .args(["--filter", "label=com.docker.compose.service=app-web"])
        .args(extra)
        .output()
        .expect("run docker ps");
    String::from_utf8_lossy(&listed.stdout).into_owned()
}

/// How long after app-web is healthy the test's "certbot" hands nginx the real certificate.
const CERTIFICATE_DELAY_SECS: u64 = 6;

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert_success(&output, &format!("openssl {}", args.join(" ")));
}

/// A CA of the test's own and a certificate from it for `name`, in `dir/issued`: the
/// environment's CA, which no system store holds (as Let's Encrypt's staging CA).
fn make_ca_and_certificate(dir: &Path, name: &str) {
    std::fs::create_dir_all(dir.join("issued")).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Deploy Test Staging Root",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            "issued/privkey.pem",
            "-out",
            "site.csr",
        ],
    );
    std::fs::write(dir.join("ext.cnf"), format!("subjectAltName=DNS:{name}\n")).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "site.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "issued/fullchain.pem",
        ],
    );
}

/// The project's nginx for `name` in front of 127.0.0.1:`upstream`, on its self-signed
/// certificate (nginx/certificate-link.sh) as on a new host; `dir` holds its files.
fn start_nginx(dir: &Path, name: &str, upstream: u16) -> (Nginx, u16) {
    let nginx_dir = support::project_root().join("nginx");
    for sub in ["runtime", "acme", "certs", "conf"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let linked = Command::new("sh")
        .arg(nginx_dir.join("certificate-link.sh"))
        .arg("self-signed")
        .env("NGINX_CERT_DIR", dir.join("certs"))
        .env("NGINX_SERVER_NAME", name)
        .output()
        .unwrap();
    assert_success(&linked, "certificate-link.sh self-signed");
    let (http, https, status) = (free_port(), free_port(), free_port());
    let path = |sub: &str| dir.join(sub).display().to_string();
    let values = [
        ("NGINX_SERVER_NAME", name.to_owned()),
        ("NGINX_HTTP_LISTEN", format!("127.0.0.1:{http}")),
        ("NGINX_HTTPS_LISTEN", format!("127.0.0.1:{https}")),
        ("NGINX_STATUS_LISTEN", format!("127.0.0.1:{status}")),
        ("NGINX_HTTPS_ORIGIN", format!("https://{name}:{https}")),
        ("NGINX_UPSTREAM", format!("127.0.0.1:{upstream}")),
        ("NGINX_RATE_LIMIT", "20r/s".to_owned()),
        ("NGINX_RATE_BURST", "40".to_owned()),
        ("NGINX_CRASH_MAX_MIB", "8".to_owned()),
        ("NGINX_SYMBOLS_MAX_MIB", "1024".to_owned()),
        ("NGINX_CERTIFICATE", path("certs/current/fullchain.pem")),
        ("NGINX_CERTIFICATE_KEY", path("certs/current/privkey.pem")),
        ("NGINX_ACME_ROOT", path("acme")),
        ("NGINX_RUNTIME_DIR", path("runtime")),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect();
    local_servers::nginx::render(&nginx_dir, &dir.join("conf"), &values).unwrap();
    let nginx = Nginx::start(
        &dir.join("conf"),
        &dir.join("runtime"),
        std::net::SocketAddr::from(([127, 0, 0, 1], https)),
    )
    .expect("nginx accepts the project's configuration");
    (nginx, https)
}

#[test]
fn a_failing_version_is_rolled_back_and_the_history_shows_both() {
    let _engine = DockerEngine::ensure().unwrap();
    make_base();
    let work = tempfile::tempdir().unwrap();
    let dist = work.path().join("dist");
    dist_into(&dist);
    let repository = format!("xtask-test/app-web-deploy-{}", std::process::id());
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
    build_image(&dist, &repository);
    // Version B: the same binary with a health check that can never pass.
    let broken_dir = work.path().join("broken");
    std::fs::create_dir_all(&broken_dir).unwrap();
    std::fs::write(
        broken_dir.join("Dockerfile"),
        format!(
            "FROM {good}\nHEALTHCHECK --interval=1s --timeout=2s --start-period=1s --retries=2 CMD [\"/usr/local/bin/app-web\", \"--no-such-flag\"]\n"
        ),
    )
    .unwrap();
    let built = Command::new(docker_client())
        .args(["build", "--quiet", "--tag", &broken])
        .arg(&broken_dir)
        .output()
        .unwrap();
    assert_success(&built, "docker build of the broken version");

    // Version A goes through a registry: pushed, untagged here, pulled by the deploy.
    let registry = start_registry(work.path());
    let published = format!("127.0.0.1:{}/app-web", registry.port);
    let published_a = format!("{published}:{version}");
    let published_b = format!("{published}:broken");
    let _published_images = Images(vec![published_a.clone(), published_b.clone()]);
    assert_success(&docker(&["tag", &good, &published_a]), "docker tag");
    let github_output = work.path().join("github-output");
    std::fs::write(&github_output, "").unwrap();
    let pushed = Command::new(e2e::binary("xtask"))
        .args(["docker", "push", "--image", &published_a])
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
    assert_success(&docker(&["rmi", &published_a]), "docker rmi");
    assert_success(&docker(&["tag", &broken, &published_b]), "docker tag");

    let postgres = Postgres::start().expect("start PostgreSQL");
    let redis = Redis::start().expect("start Redis");
    let sshd = start_sshd(work.path());
    let app_port = free_port();
    // The site as its users reach it: nginx over TLS, on a self-signed certificate until the
    // "certbot" below hands it the real one.
    let site = "localhost";
    let edge = work.path().join("edge");
    make_ca_and_certificate(&edge, site);
    let (nginx, https_port) = start_nginx(&edge, site, app_port);
    let project = format!("deploytest{}", std::process::id());
    let _down = ComposeDown {
        project: project.clone(),
    };

    let stack = work.path().join("stack");
    std::fs::create_dir_all(&stack).unwrap();
    std::fs::write(stack.join("compose.yaml"), COMPOSE).unwrap();
    std::fs::write(
        work.path().join("test.env"),
        format!(
            "COMPOSE_PROJECT_NAME={project}\nDATABASE_URL={}\nREDIS_URL={}\nAPP_PORT={app_port}\n",
            postgres.url(),
            redis.url()
        ),
    )
    .unwrap();
    let remote = work.path().join("remote");
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
url = "https://{site}:{https_port}"
smoke_cacert = "edge/ca.pem"
certificate_timeout_secs = 240
compose = "docker-compose"
root = "stack"
files = ["compose.yaml"]
compose_files = ["compose.yaml"]
env_file = "test.env"
image = "{published}"
migrate_service = "migrate"
health_timeout_secs = 90
"#,
            port = sshd.port,
            remote = remote.display()
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

    // The host's own settings, which no deploy writes.
    std::fs::create_dir_all(&remote).unwrap();
    let local = "# set on the host by its operator\nHOST_ONLY_SETTING=kept\n";
    std::fs::write(remote.join("local.env"), local).unwrap();

    // certbot on a new host: once app-web is healthy (the deploy is about to smoke-test), it
    // gets the certificate some seconds later and its deploy hook hands it to nginx.
    let certbot = {
        let hook = support::project_root().join("nginx/certbot/deploy-hook.sh");
        let (lineage, cert_dir, pid_file) =
            (edge.join("issued"), edge.join("certs"), nginx.pid_file());
        let project = project.clone();
        std::thread::spawn(move || {
            local_servers::wait_for(Duration::from_secs(600), "app-web to be healthy", || {
                !app_web_containers(&project, &["--filter", "health=healthy", "--quiet"])
                    .trim()
                    .is_empty()
            })
            .unwrap();
            std::thread::sleep(Duration::from_secs(CERTIFICATE_DELAY_SECS));
            Command::new("sh")
                .arg(hook)
                .env("RENEWED_LINEAGE", lineage)
                .env("NGINX_CERT_DIR", cert_dir)
                .env("NGINX_PID_FILE", pid_file)
                .output()
                .unwrap()
        })
    };

    // Version A, the host's first deploy: deployed, healthy, and smoke-tested through nginx
    // once the real certificate is there.
    let first = deploy(&["--tag", &version]);
    let hooked = certbot.join().unwrap();
    assert_success(&hooked, "certbot's deploy hook");
    assert_success(&first, "deploy of version A");
    let report = String::from_utf8_lossy(&first.stderr);
    // The smoke test waited for the certificate rather than failing on the self-signed one.
    let waited: f64 = report
        .lines()
        .find_map(|line| line.strip_prefix("xtask: a trusted certificate: ok in "))
        .and_then(|took| took.strip_suffix('s'))
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or_else(|| panic!("no wait for the certificate in:\n{report}"));
    assert!(
        waited >= 2.0,
        "the certificate was trusted at once ({waited}s), so nothing waited:\n{report}"
    );
    for step in [
        "migrations: ok",
        "app-web healthy: ok",
        "TLS 1.2 or newer, certificate valid: ok",
        "security headers: ok",
        "API round trip: ok",
    ] {
        assert!(report.contains(step), "{step:?} missing:\n{report}");
    }
    assert!(
        remote.join("compose.yaml").is_file(),
        "the files were uploaded"
    );
    let written = std::fs::read_to_string(remote.join(".env")).unwrap();
    assert!(
        written.contains("HOST_ONLY_SETTING=kept")
            && written.contains(&format!("APP_WEB_IMAGE={published_a}")),
        "{written}"
    );
    assert_eq!(
        std::fs::read_to_string(remote.join("local.env")).unwrap(),
        local
    );

    // Version B: its health check fails, A is put back and answers again.
    let second = deploy(&["--tag", "broken"]);
    assert!(!second.status.success(), "the broken version deployed");
    let report = String::from_utf8_lossy(&second.stderr);
    assert!(
        report.contains(&format!("failed, and {version} is running again")),
        "{report}"
    );
    let (status, body) = {
        let output = Command::new("curl")
            .args([
                "--silent",
                "--noproxy",
                "*",
                "--write-out",
                "\n%{http_code}",
            ])
            .arg(format!("http://127.0.0.1:{app_port}/api/info"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", ""));
        (status.to_owned(), body.to_owned())
    };
    assert_eq!(status, "200", "{body}");
    let running = app_web_containers(&project, &["--format", "{{.Image}}"]);
    assert_eq!(running.trim(), published_a);
    assert_eq!(
        std::fs::read_to_string(remote.join("local.env")).unwrap(),
        local,
        "a deploy and its rollback leave the host's settings alone"
    );
    drop(nginx);

    // The history on the host: A deployed, B rolled back to A.
    let history = deploy(&["--history"]);
    assert_success(&history, "deploy --history");
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&history.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["tag"], version.as_str());
    assert_eq!(records[0]["outcome"], "deployed");
    assert_eq!(records[1]["tag"], "broken");
    assert_eq!(records[1]["previous"], version.as_str());
    assert_eq!(
        records[1]["outcome"],
        format!("rolled back to {version}").as_str()
    );
    assert!(
        records[1]["reason"].as_str().unwrap().contains("unhealthy"),
        "{}",
        records[1]
    );
}
