//! The app-web image on a real Docker engine (started here when none runs): built by
//! `cargo xtask docker build` from a real dist folder on the Debian base that
//! `cargo xtask docker base` makes, then checked for its labels, user, health check, size and
//! bytes, and run by `cargo xtask docker smoke` against real PostgreSQL and Redis. Containers
//! publish their ports on 127.0.0.1 only.

use e2e::tools as support;

use std::path::Path;
use std::process::{Command, Output};

use local_servers::{DockerEngine, docker_client};
use serde_json::Value;
use support::docker::{BASE_IMAGE, Images, build_image, docker, docker_text, make_base};
use support::{assert_success, dist_into, project_root, workspace_version, xtask};

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn image_from_the_dist_archive_is_small_labelled_healthy_and_confined() {
    let dist = tempfile::tempdir().unwrap();
    let manifest = dist_into(dist.path());
    let engine = DockerEngine::ensure().unwrap();
    eprintln!("docker engine started here: {}", engine.started_here());
    make_base();

    let version = workspace_version();
    let commit = manifest["commit"].as_str().unwrap();
    let repository = format!("xtask-test/app-web-{}", std::process::id());
    let tag = format!("{repository}:{version}");
    let dirty = if commit.ends_with("-dirty") {
        "-dirty"
    } else {
        ""
    };
    let commit_tag = format!("{repository}:{}{dirty}", &commit[..12]);
    let _images = Images(vec![tag.clone(), commit_tag.clone()]);
    build_image(dist.path(), &repository);
    assert_eq!(
        docker_text(&["image", "inspect", "--format", "{{.Id}}", &tag]),
        docker_text(&["image", "inspect", "--format", "{{.Id}}", &commit_tag]),
        "the version and commit tags name one image"
    );

    let config: Value = serde_json::from_str(&docker_text(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config}}",
        &tag,
    ]))
    .unwrap();
    let labels = &config["Labels"];
    assert_eq!(labels["org.opencontainers.image.version"], version.as_str());
    assert_eq!(labels["org.opencontainers.image.revision"], commit);
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://github.com/app-project/app"
    );
    assert_eq!(labels["org.opencontainers.image.base.name"], BASE_IMAGE);
    let epoch = manifest["source_date_epoch"].as_u64().unwrap().to_string();
    let created = Command::new("date")
        .args([
            "--utc",
            "--date",
            &format!("@{epoch}"),
            "+%Y-%m-%dT%H:%M:%SZ",
        ])
        .output()
        .unwrap();
    assert_eq!(
        labels["org.opencontainers.image.created"],
        String::from_utf8(created.stdout).unwrap().trim(),
        "created is the source date"
    );
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(
        config["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "/usr/local/bin/app-web", "healthcheck"])
    );
    let size: u64 = docker_text(&["image", "inspect", "--format", "{{.Size}}", &tag])
        .parse()
        .unwrap();
    eprintln!("image size: {size} bytes");
    assert!(
        size < 35_000_000,
        "the image is {size} bytes, over the 35 MB aim"
    );

    // The binary in the image is the one released in the archive, byte for byte.
    let archive = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|artifact| artifact["kind"] == "server-archive")
        .unwrap();
    let unpacked = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(dist.path().join(archive["file"].as_str().unwrap()))
        .arg("-C")
        .arg(unpacked.path())
        .status()
        .unwrap();
    assert!(status.success());
    let top = archive["file"]
        .as_str()
        .unwrap()
        .trim_end_matches(".tar.gz");
    let container = docker_text(&["create", &tag]);
    let copied = unpacked.path().join("from-image");
    let copy = docker(&[
        "cp",
        &format!("{container}:/usr/local/bin/app-web"),
        copied.to_str().unwrap(),
    ]);
    let _ = docker(&["rm", &container]);
    assert_success(&copy, "docker cp");
    assert_eq!(
        sha256(&copied),
        sha256(&unpacked.path().join(top).join("app-web")),
        "the image holds the released binary"
    );

    let smoke = xtask(&["docker", "smoke", "--image", &tag]);
    assert_success(&smoke, "xtask docker smoke");
    let report = String::from_utf8_lossy(&smoke.stderr);
    eprintln!("{report}");
    for step in [
        "notes API: ok",
        "docker health check: ok",
        "non-root, read-only, no capabilities: ok",
        "graceful stop: ok",
    ] {
        assert!(
            report.contains(step),
            "smoke did not report {step:?}:\n{report}"
        );
    }
}

/// `docker import` of the folder `root` as the image `tag`, with Dockerfile `changes`.
fn import_root(root: &Path, tag: &str, changes: &[&str]) {
    let tarball = root.with_extension("tar");
    let status = Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(root)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success(), "tar {}", root.display());
    let mut args = vec!["import"];
    for change in changes {
        args.extend(["--change", change]);
    }
    args.extend([tarball.to_str().unwrap(), tag]);
    docker_text(&args);
    std::fs::remove_file(&tarball).unwrap();
}

/// A C library that defines glibc symbol versions up to 2.17 only, built with gcc and imported
/// as the whole of an image.
fn import_old_glibc_base(tag: &str, folder: &Path) {
    let source = folder.join("libc.c");
    std::fs::write(
        &source,
        "int old_symbol(void) { return 0; }\nint newer_symbol(void) { return 1; }\n",
    )
    .unwrap();
    let script = folder.join("versions.map");
    std::fs::write(
        &script,
        "GLIBC_2.2.5 { global: old_symbol; local: *; };\nGLIBC_2.17 { global: newer_symbol; } GLIBC_2.2.5;\n",
    )
    .unwrap();
    let root = folder.join("root");
    let lib = root.join("lib/x86_64-linux-gnu");
    std::fs::create_dir_all(&lib).unwrap();
    let output = Command::new("gcc")
        .args(["-shared", "-fPIC", "-nostdlib", "-Wl,-soname,libc.so.6"])
        .arg(format!("-Wl,--version-script={}", script.display()))
        .arg("-o")
        .arg(lib.join("libc.so.6"))
        .arg(&source)
        .output()
        .expect("run gcc (package build-essential)");
    assert_success(&output, "gcc");
    import_root(&root, tag, &[]);
}

/// A dist folder whose server archive holds a real glibc-linked program in place of app-web.
fn write_dist_with(binary: &Path, dist: &Path) {
    let rustc = Command::new("rustc").arg("-vV").output().unwrap();
    let host = String::from_utf8(rustc.stdout)
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("host: ").map(str::to_owned))
        .unwrap();
    let version = workspace_version();
    let top = format!("app-web-{version}-{host}");
    let staging = dist.join("staging");
    std::fs::create_dir_all(staging.join(&top)).unwrap();
    std::fs::copy(binary, staging.join(&top).join("app-web")).unwrap();
    let file = format!("{top}.tar.gz");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&staging)
        .arg("-czf")
        .arg(dist.join(&file))
        .arg(&top)
        .status()
        .unwrap();
    assert!(status.success());
    let manifest = serde_json::json!({
        "generated_by": "cargo xtask dist",
        "format_version": 1,
        "product": "app",
        "version": version,
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "source_date_epoch": 1_700_000_000,
        "artifacts": [{
            "file": file,
            "kind": "server-archive",
            "target": host,
            "size": std::fs::metadata(dist.join(&file)).unwrap().len(),
            "sha256": sha256(&dist.join(&file)),
        }],
    });
    std::fs::write(dist.join("dist-manifest.json"), manifest.to_string()).unwrap();
    let sums = format!("{}  {file}\n", sha256(&dist.join(&file)));
    std::fs::write(dist.join("SHA256SUMS"), sums).unwrap();
}

#[test]
fn a_base_with_an_older_glibc_is_refused_before_building() {
    let work = tempfile::tempdir().unwrap();
    let dist = work.path().join("dist");
    std::fs::create_dir(&dist).unwrap();
    // `true` from the machine's coreutils needs the machine's glibc (2.34 or newer here).
    write_dist_with(Path::new("/usr/bin/true"), &dist);
    let _engine = DockerEngine::ensure().unwrap();
    let base = format!("xtask-test/old-glibc-{}:2.17", std::process::id());
    let _images = Images(vec![base.clone()]);
    import_old_glibc_base(&base, work.path());

    let refused = xtask(&[
        "docker",
        "build",
        "--dist",
        dist.to_str().unwrap(),
        "--base-image",
        &base,
        "--repository",
        "xtask-test/never-built",
    ]);
    assert!(
        !refused.status.success(),
        "an image was built on a too old glibc"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!(
            "but {base} has glibc 2.17; use a base image with glibc"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("app-web needs glibc 2.3"), "{stderr}");
}

/// A builder image like `rust:<channel>-bookworm`, which cannot be pulled here: Debian with
/// gcc from debootstrap, this machine's toolchain (the one rust-toolchain.toml pins, which the
/// tests run under) and its CA certificates, so cargo inside trusts what this machine trusts.
fn import_rust_builder(tag: &str) {
    if docker(&["image", "inspect", tag]).status.success() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    let output = Command::new("debootstrap")
        .args([
            "--variant=minbase",
            "--include=gcc,libc6-dev,ca-certificates",
            "bookworm",
        ])
        .arg(&root)
        .arg("http://deb.debian.org/debian")
        .output()
        .expect("run debootstrap");
    assert_success(&output, "debootstrap");
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .unwrap();
    let sysroot = String::from_utf8(sysroot.stdout).unwrap();
    let rust = root.join("usr/local/rust");
    std::fs::create_dir_all(&rust).unwrap();
    for folder in ["bin", "lib"] {
        let status = Command::new("cp")
            .arg("-a")
            .arg(Path::new(sysroot.trim()).join(folder))
            .arg(&rust)
            .status()
            .unwrap();
        assert!(status.success(), "copy the toolchain's {folder}");
    }
    std::fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        root.join("etc/ssl/certs/ca-certificates.crt"),
    )
    .unwrap();
    import_root(
        &root,
        tag,
        &[
            "ENV PATH=/usr/local/rust/bin:/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV CARGO_HOME=/usr/local/cargo",
        ],
    );
}

/// Copies the files git tracks into `destination`: a build context without target/.
fn copy_workspace(destination: &Path) {
    let listing = Command::new("git")
        .arg("-C")
        .arg(project_root())
        .args(["ls-files", "-z"])
        .output()
        .unwrap();
    for file in listing
        .stdout
        .split(|byte| *byte == 0)
        .filter(|name| !name.is_empty())
    {
        let file = std::str::from_utf8(file).unwrap();
        let source = project_root().join(file);
        if !source.is_file() {
            continue;
        }
        let target = destination.join(file);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&source, &target).unwrap();
    }
}

/// `docker build` of docker/app-web.source.Dockerfile with BuildKit. Debian's docker client is
/// used: it has BuildKit built in, where a newer client on PATH may lack the buildx plugin.
fn source_build(context: &Path, rust_image: &str, tag: &str) -> String {
    let output = Command::new("/usr/bin/docker")
        .env("DOCKER_BUILDKIT", "1")
        .args([
            "build",
            "--progress=plain",
            "--file",
            "docker/app-web.source.Dockerfile",
        ])
        .args(["--build-arg", &format!("RUST_IMAGE={rust_image}")])
        .args(["--build-arg", &format!("BASE_IMAGE={BASE_IMAGE}")])
        .args(["--tag", tag])
        .arg(".")
        .current_dir(context)
        .output()
        .expect("run docker build");
    assert_success(&output, "docker build of the source Dockerfile");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn compiled_crates(build_log: &str) -> Vec<String> {
    build_log
        .lines()
        .filter_map(|line| line.split("Compiling ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_source_build_recompiles_only_app_web_after_a_source_change() {
    let _engine = DockerEngine::ensure().unwrap();
    make_base();
    let channel = std::fs::read_to_string(project_root().join("rust-toolchain.toml")).unwrap();
    let channel: toml::Table = toml::from_str(&channel).unwrap();
    let rust_image = format!(
        "xtask-test/rust:{}-bookworm",
        channel["toolchain"]["channel"].as_str().unwrap()
    );
    import_rust_builder(&rust_image);
    let context = tempfile::tempdir().unwrap();
    copy_workspace(context.path());
    let tag = format!("xtask-test/app-web-source-{}:1", std::process::id());
    let _images = Images(vec![tag.clone()]);

    let first = source_build(context.path(), &rust_image, &tag);
    eprintln!(
        "first build compiled {} crates",
        compiled_crates(&first).len()
    );

    let changed = context.path().join("app-web/src/healthcheck.rs");
    let mut source = std::fs::read_to_string(&changed).unwrap();
    // Unique per run: the engine keeps BuildKit's layer cache between runs, and a change seen
    // before would be served from it without compiling anything.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    source.push_str(&format!("\n// A change to the source only ({nonce}).\n"));
    std::fs::write(&changed, source).unwrap();
    let second = source_build(context.path(), &rust_image, &tag);
    // The workspace's own crates app-web depends on may compile again too: the copied files
    // are new to cargo whenever the cache mount holds an earlier run's build. No dependency
    // from crates.io may.
    let compiled = compiled_crates(&second);
    assert!(
        compiled.contains(&"app-web".to_owned())
            && compiled
                .iter()
                .all(|name| ["app-web", "crash-upload"].contains(&name.as_str())),
        "after a source change only the workspace's crates should compile again, not {compiled:?}:\n{second}"
    );

    let version = docker_text(&["run", "--rm", &tag, "--version"]);
    assert_eq!(version, format!("app-web {}", workspace_version()));
    let user = docker_text(&["image", "inspect", "--format", "{{.Config.User}}", &tag]);
    assert_eq!(user, "65532:65532");
}

/// The compose stack's nginx image, built from docker/nginx.Dockerfile on a Debian base made
/// here: Debian 12's nginx in it accepts the project's configuration, rendered by the image's
/// own entrypoint, and serves it with the security headers over HTTP/2 while confined as
/// compose confines it. Ports are published on 127.0.0.1 only.
#[test]
fn the_nginx_image_serves_the_project_configuration_on_debians_nginx() {
    let _engine = DockerEngine::ensure().unwrap();
    let base = "app-base/debian:bookworm-minbase";
    assert_success(
        &xtask(&["docker", "base", "--with-apt", "--tag", base]),
        "xtask docker base --with-apt",
    );
    let tag = format!("xtask-test/nginx-{}:1", std::process::id());
    let _images = Images(vec![tag.clone()]);
    let built = Command::new(docker_client())
        .current_dir(project_root())
        .args(["build", "--file", "docker/nginx.Dockerfile"])
        .args([
            "--build-arg",
            &format!("BASE_IMAGE={base}"),
            "--tag",
            &tag,
            ".",
        ])
        .output()
        .unwrap();
    assert_success(&built, "docker build of docker/nginx.Dockerfile");

    let settings = [
        "NGINX_SERVER_NAME=app.test",
        "NGINX_HTTP_LISTEN=80",
        "NGINX_HTTPS_LISTEN=443",
        "NGINX_STATUS_LISTEN=8081",
        "NGINX_HTTPS_ORIGIN=https://app.test",
        // Nothing listens there: app-web's absence shows as 502.
        "NGINX_UPSTREAM=127.0.0.1:9",
        "NGINX_RATE_LIMIT=20r/s",
        "NGINX_RATE_BURST=40",
        "NGINX_CRASH_MAX_MIB=8",
        "NGINX_SYMBOLS_MAX_MIB=1024",
        "NGINX_CERT_DIR=/etc/nginx/certs",
        "NGINX_CERTIFICATE=/etc/nginx/certs/current/fullchain.pem",
        "NGINX_CERTIFICATE_KEY=/etc/nginx/certs/current/privkey.pem",
        "NGINX_ACME_ROOT=/var/www/acme",
        "NGINX_RUNTIME_DIR=/run/nginx",
    ];
    let mut args = vec![
        "run",
        "--detach",
        "--read-only",
        "--cap-drop=ALL",
        "--cap-add=CHOWN",
        "--cap-add=SETUID",
        "--cap-add=SETGID",
        "--security-opt=no-new-privileges",
        "--tmpfs=/var/log/nginx",
        "--tmpfs=/run/nginx",
        "--tmpfs=/etc/nginx/certs",
        "--publish=127.0.0.1::80",
        "--publish=127.0.0.1::443",
    ];
    for setting in &settings {
        args.extend(["--env", setting]);
    }
    args.push(&tag);
    let container = docker_text(&args);
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = docker(&["rm", "--force", &self.0]);
        }
    }
    let _remove = Remove(container.clone());
    let port = |inside: &str| {
        docker_text(&["port", &container, inside])
            .lines()
            .find_map(|line| line.strip_prefix("127.0.0.1:").map(str::to_owned))
            .unwrap_or_else(|| panic!("{inside} is not published on 127.0.0.1"))
    };
    let (http, https) = (port("80/tcp"), port("443/tcp"));
    let curl = |url: &str| {
        Command::new("curl")
            .args([
                "--silent",
                "--insecure",
                "--max-time",
                "5",
                "--output",
                "/dev/null",
            ])
            .args([
                "--dump-header",
                "-",
                "--write-out",
                "%{http_code} %{http_version}",
            ])
            .args(["--resolve", &format!("app.test:{https}:127.0.0.1")])
            .args(["--resolve", &format!("app.test:{http}:127.0.0.1")])
            .arg(url)
            .output()
            .unwrap()
    };
    let mut answer = String::new();
    let answered = local_servers::wait_for(
        std::time::Duration::from_secs(20),
        "nginx in the image to answer",
        || {
            let output = curl(&format!("https://app.test:{https}/healthz"));
            answer = String::from_utf8_lossy(&output.stdout).into_owned();
            answer.ends_with("502 2")
        },
    );
    assert!(
        answered.is_ok(),
        "nginx in the image did not answer: {answer}\n{}",
        docker_text(&["logs", &container])
    );
    for header in local_servers::nginx::security_headers() {
        assert!(
            answer
                .to_ascii_lowercase()
                .contains(&format!("{}:", header.name)),
            "{} missing:\n{answer}",
            header.name
        );
    }
    let redirect = curl(&format!("http://app.test:{http}/x"));
    assert!(
        String::from_utf8_lossy(&redirect.stdout).ends_with("308 1.1"),
        "{}",
        String::from_utf8_lossy(&redirect.stdout)
    );

    // The image's nginx is the machine's, the one every other test runs.
    let in_image = docker(&["exec", &container, "nginx", "-v"]);
    let here = Command::new("nginx").arg("-v").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&in_image.stderr),
        String::from_utf8_lossy(&here.stderr)
    );

    // The master runs as root to read the keys; its workers as www-data.
    let master = docker_text(&["inspect", "--format", "{{.State.Pid}}", &container]);
    let children =
        std::fs::read_to_string(format!("/proc/{master}/task/{master}/children")).unwrap();
    let workers: Vec<&str> = children.split_whitespace().collect();
    assert!(!workers.is_empty(), "nginx has no workers");
    for worker in workers {
        let status = std::fs::read_to_string(format!("/proc/{worker}/status")).unwrap();
        let uid = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(uid, "33", "worker {worker} runs as {uid}, not www-data");
    }
}

/// The `backup` service's image, built from docker/backup.Dockerfile on a stand-in for the
/// PostgreSQL image (Debian 12 with postgresql-client-15 and the official image's postgres
/// user) and the app-web image `cargo xtask docker build` makes: confined as compose confines
/// it, it backs up a real PostgreSQL reached through its unix socket, lists the backup and
/// passes a restore drill with its own pg_dump and pg_restore.
#[test]
fn the_backup_image_backs_up_and_verifies_with_its_own_postgres_client() {
    let dist = tempfile::tempdir().unwrap();
    dist_into(dist.path());
    let _engine = DockerEngine::ensure().unwrap();
    make_base();
    let apt_base = "app-base/debian:bookworm-minbase";
    assert_success(
        &xtask(&["docker", "base", "--with-apt", "--tag", apt_base]),
        "xtask docker base --with-apt",
    );
    let id = std::process::id();
    let repository = format!("xtask-test/app-web-for-backup-{id}");
    let app_web = format!("{repository}:{}", workspace_version());
    let client = format!("xtask-test/postgres-client-{id}:15");
    let backup = format!("xtask-test/backup-{id}:1");
    let mut images = Images(vec![app_web.clone(), client.clone(), backup.clone()]);
    build_image(dist.path(), &repository);
    // Both tags build made (version and commit) go when the test ends.
    let tags = docker_text(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        &repository,
    ]);
    images.0.extend(tags.lines().map(str::to_owned));

    let stand_in = tempfile::tempdir().unwrap();
    std::fs::write(
        stand_in.path().join("Dockerfile"),
        format!(
            "FROM {apt_base}\n\
             RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client-15 \\\n\
             \x20   && rm -rf /var/lib/apt/lists/* \\\n\
             \x20   && groupadd --gid 999 postgres \\\n\
             \x20   && useradd --uid 999 --gid 999 --home-dir /var/lib/postgresql postgres\n\
             ENV PATH=/usr/lib/postgresql/15/bin:$PATH\n"
        ),
    )
    .unwrap();
    let output = Command::new(docker_client())
        .args(["build", "--tag", &client])
        .arg(stand_in.path())
        .output()
        .unwrap();
    assert_success(&output, "docker build of the PostgreSQL client stand-in");
    let output = Command::new(docker_client())
        .current_dir(project_root())
        .args(["build", "--file", "docker/backup.Dockerfile"])
        .args(["--build-arg", &format!("POSTGRES_IMAGE={client}")])
        .args(["--build-arg", &format!("APP_WEB_IMAGE={app_web}")])
        .args(["--tag", &backup, "docker"])
        .output()
        .unwrap();
    assert_success(&output, "docker build of docker/backup.Dockerfile");
    let config: Value = serde_json::from_str(&docker_text(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config}}",
        &backup,
    ]))
    .unwrap();
    assert_eq!(config["User"], "postgres");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/app-web", "backup"])
    );

    let postgres = local_servers::Postgres::start().unwrap();
    postgres
        .psql(
            "CREATE TABLE notes (id int PRIMARY KEY, title text); \
             INSERT INTO notes SELECT i, 'ü ' || i FROM generate_series(1, 1000) i",
        )
        .unwrap();
    let folder = tempfile::tempdir().unwrap();
    let status = Command::new("chown")
        .args(["999:999"])
        .arg(folder.path())
        .status()
        .unwrap();
    assert!(status.success());
    let run = |args: &[&str]| -> Output {
        let mut command = Command::new(docker_client());
        command.args([
            "run",
            "--rm",
            "--read-only",
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            "--network=none",
        ]);
        command
            .arg(format!(
                "--volume={}:/run/postgresql:ro",
                postgres.socket_dir().display()
            ))
            .arg(format!("--volume={}:/backups", folder.path().display()))
            .arg(format!(
                "--env=APP_WEB_DATABASE_URL=postgres://postgres@localhost:{}/postgres?host=/run/postgresql",
                postgres.port
            ))
            .arg("--env=APP_WEB_BACKUP_IDENTITY_FILE=/backups/identity.txt")
            .arg("--env=APP_WEB_BACKUP_RECIPIENTS_FILE=/backups/recipients.txt")
            .arg(&backup)
            .args(args);
        command.output().unwrap()
    };
    let keygen = run(&["keygen", "--out", "/backups/identity.txt"]);
    assert_success(&keygen, "backup keygen in the image");
    std::fs::write(folder.path().join("recipients.txt"), &keygen.stdout).unwrap();
    assert_success(&run(&["run"]), "backup run in the image");
    let listed = run(&["list", "--json"]);
    assert_success(&listed, "backup list in the image");
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let tables = &listed[0]["tables"];
    assert_eq!(tables[0]["table"], "notes");
    assert_eq!(tables[0]["rows"], 1000);
    assert!(
        listed[0]["postgres"]["pg_dump"]
            .as_str()
            .unwrap()
            .contains("15."),
        "{listed}"
    );
    let verify = run(&["verify"]);
    assert_success(&verify, "backup verify in the image");
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains("every count and checksum matches"),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
