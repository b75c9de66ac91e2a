//! The command line of `cargo xtask`: one subcommand per task, each documented for `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Build, check, test and package the workspace.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about, long_about = None)]
pub struct Xtask {
    /// Print every external command before it runs
    #[arg(long, short, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Setup(Setup),
    Lint(Lint),
    Test(Test),
    Ci(Ci),
    Dist(Dist),
    Verify(Verify),
    Bench(Bench),
    Docker(Docker),
    Nginx(Nginx),
    Dashboards(Dashboards),
    Sign(Sign),
    UpdaterManifest(UpdaterManifest),
    Bundle(Bundle),
    Changelog(Changelog),
    Release(Release),
    Icons(Icons),
    // Internal: the bundling step that `dist` and `bundle` run in an xtask of their own.
    #[command(hide = true)]
    BundleDesktop(BundleDesktop),
    Symbols(Symbols),
    Fuzz(Fuzz),
    Smoke(Smoke),
    Deploy(Deploy),
    Notify(Notify),
}

/// Install the system packages the workspace needs (apt on Debian/Ubuntu), or print the
/// command that would
#[derive(Debug, Args)]
pub struct Setup {
    /// Only report what is missing; install nothing and exit non-zero if anything is
    #[arg(long)]
    pub check: bool,
}

/// Check formatting, run clippy with warnings as errors, and run the tidy tests
#[derive(Debug, Args)]
pub struct Lint {}

/// Run every test in the workspace (cargo-nextest when installed, else cargo test)
#[derive(Debug, Args)]
pub struct Test {}

/// What CI runs: a free disk space check, setup, lint, test, the fuzz target for a minute, then
/// a dist build into a temporary folder that is verified
#[derive(Debug, Args)]
pub struct Ci {
    /// Report missing system packages instead of installing them
    #[arg(long)]
    pub no_install: bool,
}

/// Build app-web and app-desktop in release mode and write the release artifacts, their
/// SHA256SUMS and dist-manifest.json
#[derive(Debug, Args)]
pub struct Dist {
    /// Target triple to build for [default: the host's]
    #[arg(long, value_name = "TRIPLE")]
    pub target: Option<String>,

    /// Folder to write the artifacts to [default: target/dist]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Report missing system packages instead of installing them
    #[arg(long)]
    pub no_install: bool,

    #[command(flatten)]
    pub publishing: PublishingArgs,
}

/// How strictly `dist` and `bundle` sign, and the static update manifest's fragment a signed
/// build can write beside its bundles.
#[derive(Debug, Args, Default)]
pub struct PublishingArgs {
    /// Fail when a signing key is missing instead of leaving files unsigned (implied on a tag
    /// build in GitHub Actions)
    #[arg(long)]
    pub release: bool,

    /// Also write latest-<target>.json, this build's part of the static update manifest, with
    /// the bundles downloadable under URL (needs the updater key)
    #[arg(long, value_name = "URL")]
    pub download_url: Option<String>,

    /// The release notes for that manifest
    #[arg(long, value_name = "FILE", requires = "download_url")]
    pub notes_file: Option<PathBuf>,
}

/// Re-check a dist folder: every artifact in dist-manifest.json exists with its size and
/// sha256, and SHA256SUMS agrees with the manifest
#[derive(Debug, Args)]
pub struct Verify {
    /// The dist folder to check [default: target/dist]
    #[arg(value_name = "DIR")]
    pub dist: Option<PathBuf>,

    /// Also check every desktop bundle's updater signature with this public key (base64, as
    /// `cargo xtask sign keygen` wrote it)
    #[arg(long, env = "TAURI_SIGNING_PUBLIC_KEY", value_name = "KEY")]
    pub updater_pubkey: Option<String>,

    /// Also check the GnuPG signatures (SHA256SUMS.asc, each deb's and rpm's .asc, each rpm's
    /// own signature) with this armoured public key, or a file holding it
    #[arg(long, env = "APP_GPG_PUBLIC_KEY", value_name = "KEY|FILE")]
    pub gpg_pubkey: Option<String>,
}

/// Run a benchmark: figures and the ratio to a baseline measured in the same run
#[derive(Debug, Args)]
pub struct Bench {
    #[command(subcommand)]
    pub subject: BenchSubject,

    /// Also write the figures into docs/benchmarks.md, replacing this benchmark's section, dated
    #[arg(long, global = true)]
    pub record: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchSubject {
    /// Requests/s and p99 of GET /api/notes on real PostgreSQL and Redis (wrk on loopback),
    /// with the Redis cache and without it
    Web {
        /// Seconds of load per configuration
        #[arg(long, default_value_t = 10)]
        duration_secs: u64,
        /// Connections wrk keeps open
        #[arg(long, default_value_t = 32)]
        connections: u32,
        /// Notes stored before the load starts
        #[arg(long, default_value_t = 1000)]
        notes: u32,
    },
    /// Requests/s and p99 through the project's nginx over TLS to app-web's GET /api/info,
    /// against the same nginx serving a static file with the same bytes
    Proxy {
        /// Seconds of load per configuration
        #[arg(long, default_value_t = 10)]
        duration_secs: u64,
        /// Connections wrk keeps open
        #[arg(long, default_value_t = 32)]
        connections: u32,
    },
    /// Update checks per second and p99 through the project's nginx over TLS to app-web on
    /// PostgreSQL, against the same nginx serving a static latest.json
    Updates {
        /// Seconds of load per configuration
        #[arg(long, default_value_t = 10)]
        duration_secs: u64,
        /// Connections wrk keeps open
        #[arg(long, default_value_t = 32)]
        connections: u32,
        /// Releases published before the load starts
        #[arg(long, default_value_t = 50)]
        releases: u32,
    },
    /// Analytics events per second stored through POST /api/events against a plain COPY of
    /// the same rows; symbolication time of an app-desktop minidump with a cold and a warm
    /// symbol cache
    Ingest {
        /// Seconds of load
        #[arg(long, default_value_t = 10)]
        duration_secs: u64,
        /// Connections wrk keeps open
        #[arg(long, default_value_t = 32)]
        connections: u32,
        /// Events per batch
        #[arg(long, default_value_t = 100)]
        batch: usize,
    },
    /// Backup and restore times and sizes of `app-web backup` (pg_dump, zstd, age) on a
    /// generated database, against plain `pg_dump -Fc` to a file and `pg_restore` from it
    Backup {
        /// Size of the generated database in MiB
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
    },
}

/// Build the app-web image from a dist folder and check it on a real Docker engine
#[derive(Debug, Args)]
pub struct Docker {
    #[command(subcommand)]
    pub command: DockerCommand,
}

#[derive(Debug, Subcommand)]
pub enum DockerCommand {
    /// Push an image to its registry and print its digest (also to GITHUB_OUTPUT as `digest`
    /// when set, for the build provenance attestation)
    Push {
        /// The image, e.g. ghcr.io/app-project/app-web:1.2.3
        #[arg(long)]
        image: String,
    },
    /// Make a Debian base image with debootstrap and `docker import` it, for machines that
    /// cannot pull one; pass it to `build --base-image`
    Base {
        /// Name to import the image as [default: app-base/debian-cc:bookworm, or
        /// app-base/debian:bookworm-minbase with --with-apt]
        #[arg(long)]
        tag: Option<String>,
        /// Keep the whole minbase system, with a shell and apt, in place of debian:<suite>-slim
        /// for Dockerfiles that install packages (docker/nginx.Dockerfile)
        #[arg(long)]
        with_apt: bool,
        /// Debian release to bootstrap
        #[arg(long, default_value = "bookworm")]
        suite: String,
        /// Debian mirror to bootstrap from
        #[arg(long, default_value = "http://deb.debian.org/debian")]
        mirror: String,
        /// Rebuild even when the image already exists
        #[arg(long)]
        force: bool,
    },
    /// Build the runtime image (docker/app-web.Dockerfile) around the app-web binary of a dist
    /// folder, tagged with the version and the commit
    Build {
        /// The dist folder whose server archive to use [default: target/dist]
        #[arg(long, value_name = "DIR")]
        dist: Option<PathBuf>,
        /// Base image; it must already be on the engine
        #[arg(long, value_name = "IMAGE", default_value = crate::docker::DEFAULT_BASE_IMAGE)]
        base_image: String,
        /// Repository part of the tags
        #[arg(long, default_value = crate::docker::REPOSITORY)]
        repository: String,
    },
    /// Write random passwords for the compose stack into docker/secrets, keeping those that
    /// exist
    Secrets {
        /// Folder to write them to [default: docker/secrets]
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Replace existing secrets too (the stack's volumes keep the old passwords: change
        /// them in PostgreSQL first)
        #[arg(long)]
        force: bool,
        /// Print what would be written and write nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Build images from Debian's packages in place of the third-party images compose.yaml pins
    /// (PostgreSQL, Redis, Prometheus, Alertmanager, the exporters, certbot, nginx's Debian
    /// base), tagged as compose pins them, for machines that cannot pull images
    StandIns {
        /// The Debian base to build on; the default is made when missing
        #[arg(
            long,
            value_name = "IMAGE",
            default_value = "app-base/debian:bookworm-minbase"
        )]
        base_image: String,
        /// Build only these (postgres, redis, prometheus, alertmanager, postgres-exporter,
        /// redis-exporter, nginx-exporter, node-exporter, blackbox-exporter, certbot, debian)
        #[arg(long, value_name = "NAME")]
        only: Vec<String>,
        /// Print what would be built and build nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Run an image against real PostgreSQL and Redis: migrations, readiness, the notes API,
    /// the health check, a non-root user and a read-only root filesystem
    Smoke {
        /// Image to check [default: app-web:<version>]
        #[arg(long, value_name = "IMAGE")]
        image: Option<String>,
    },
}

/// Render the nginx configuration (nginx/nginx.conf.template and its snippets) for a host
#[derive(Debug, Args)]
pub struct Nginx {
    #[command(subcommand)]
    pub command: NginxCommand,
}

#[derive(Debug, Subcommand)]
pub enum NginxCommand {
    /// Fill in the template's settings and write nginx.conf and snippets/ to a folder; with
    /// --check, also have nginx test the result
    Render(Box<NginxSettings>),
}

/// The settings of nginx/nginx.conf.template; each is also read from its environment variable.
#[derive(Debug, Args)]
pub struct NginxSettings {
    /// Folder to write nginx.conf and snippets/ to (replaced whole)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Have `nginx -t` check the rendered configuration
    #[arg(long)]
    pub check: bool,
    /// The site's host name
    #[arg(long, env = "NGINX_SERVER_NAME")]
    pub server_name: String,
    /// Where plain HTTP listens (ACME challenges and redirects)
    #[arg(long, env = "NGINX_HTTP_LISTEN", default_value = "80")]
    pub http_listen: String,
    /// Where HTTPS listens
    #[arg(long, env = "NGINX_HTTPS_LISTEN", default_value = "443")]
    pub https_listen: String,
    /// Where stub_status answers (for nginx-exporter; keep it unpublished)
    #[arg(long, env = "NGINX_STATUS_LISTEN", default_value = "127.0.0.1:8081")]
    pub status_listen: String,
    /// Where plain HTTP redirects to [default: https://<server name>]
    #[arg(long, env = "NGINX_HTTPS_ORIGIN")]
    pub https_origin: Option<String>,
    /// app-web's address
    #[arg(long, env = "NGINX_UPSTREAM", default_value = "127.0.0.1:8080")]
    pub upstream: String,
    /// Steady request rate per client address, in nginx's syntax
    #[arg(long, env = "NGINX_RATE_LIMIT", default_value = crate::nginx::RATE_LIMIT)]
    pub rate_limit: String,
    /// Requests a client may send at once beyond that rate
    #[arg(long, env = "NGINX_RATE_BURST", default_value = crate::nginx::RATE_BURST)]
    pub rate_burst: String,
    /// The largest crash upload in MiB: app-web's APP_WEB_CRASH_MAX_MIB
    #[arg(long, env = "NGINX_CRASH_MAX_MIB", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
    pub crash_max_mib: u64,
    /// The largest symbol file in MiB: app-web's APP_WEB_SYMBOLS_MAX_MIB
    #[arg(long, env = "NGINX_SYMBOLS_MAX_MIB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub symbols_max_mib: u64,
    /// Certificate chain (PEM) [default: Let's Encrypt's live folder for the server name]
    #[arg(long, env = "NGINX_CERTIFICATE")]
    pub certificate: Option<String>,
    /// The certificate's private key [default: beside the default certificate]
    #[arg(long, env = "NGINX_CERTIFICATE_KEY")]
    pub certificate_key: Option<String>,
    /// Webroot certbot writes HTTP-01 challenges into
    #[arg(long, env = "NGINX_ACME_ROOT", default_value = "/var/www/acme")]
    pub acme_root: String,
    /// Writable folder for the pid file and request buffers
    #[arg(long, env = "NGINX_RUNTIME_DIR", default_value = "/run/nginx")]
    pub runtime_dir: String,
}

/// Sign the desktop bundles of a dist folder for the updater (`<bundle>.sig`), with the key in
/// TAURI_SIGNING_PRIVATE_KEY (and _PASSWORD), and SHA256SUMS and the Linux packages with
/// GnuPG (`.asc`), with the key in APP_GPG_PRIVATE_KEY (and APP_GPG_PASSPHRASE); or make an
/// updater key pair with `keygen`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Sign {
    #[command(subcommand)]
    pub command: Option<SignCommand>,

    /// The dist folder whose bundles to sign [default: target/dist]
    #[arg(long, value_name = "DIR")]
    pub dist: Option<PathBuf>,

    /// Fail when the key is missing instead of leaving the bundles unsigned (implied on a tag
    /// build in GitHub Actions)
    #[arg(long)]
    pub release: bool,
}

#[derive(Debug, Subcommand)]
pub enum SignCommand {
    Keygen(SignKeygen),
}

/// Make an updater key pair: updater.key (secret, mode 0600; its password from
/// TAURI_SIGNING_PRIVATE_KEY_PASSWORD) and updater.key.pub
#[derive(Debug, Args)]
pub struct SignKeygen {
    /// Folder to write the two files to
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Replace an existing key
    #[arg(long)]
    pub force: bool,
}

/// The static update manifests (latest.json) for a plain file server: a fragment per build
/// job, merged into one per channel
#[derive(Debug, Args)]
pub struct UpdaterManifest {
    #[command(subcommand)]
    pub command: UpdaterManifestCommand,
}

#[derive(Debug, Subcommand)]
pub enum UpdaterManifestCommand {
    Fragment(UpdaterFragment),
    Merge(UpdaterMerge),
}

/// Write latest-<target>.json into a signed dist folder: its bundles' platform keys, download
/// URLs and signatures
#[derive(Debug, Args)]
pub struct UpdaterFragment {
    /// The dist folder [default: target/dist]
    #[arg(long, value_name = "DIR")]
    pub dist: Option<PathBuf>,

    /// Where the bundles will be downloaded from, e.g. the release's download URL
    #[arg(long, value_name = "URL")]
    pub base_url: String,

    /// A file with the release notes
    #[arg(long, value_name = "FILE")]
    pub notes_file: Option<PathBuf>,
}

/// Merge the fragments of every build job into <out>/<channel>/latest.json (a stable release
/// also into beta's when newer)
#[derive(Debug, Args)]
pub struct UpdaterMerge {
    /// The fragments
    #[arg(required = true, value_name = "FRAGMENT")]
    pub fragments: Vec<PathBuf>,

    /// The release's channel: stable or beta
    #[arg(long, default_value = "stable")]
    pub channel: String,

    /// Folder that holds the channels' folders
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Write the Grafana dashboards in docker/grafana/dashboards from their definitions in
/// xtask/src/dashboards.rs
#[derive(Debug, Args)]
pub struct Dashboards {
    /// Write nothing; fail if a committed dashboard differs from its definition
    #[arg(long)]
    pub check: bool,
}

/// Build app-desktop in release mode and bundle it for one target into a folder of its own, with
/// SHA256SUMS, dist-manifest.json and, when TAURI_SIGNING_PRIVATE_KEY is set, updater signatures
/// (`dist` makes the same bundles beside the server archive)
#[derive(Debug, Args)]
pub struct Bundle {
    /// Target triple to build for [default: the host's]
    #[arg(long, value_name = "TRIPLE")]
    pub target: Option<String>,

    /// Bundle kinds to make [default: every kind the target makes]
    #[arg(long, value_enum)]
    pub kind: Vec<crate::artifacts::targets::ArtifactKind>,

    /// JSON merged into tauri.conf.json for this build, inline or in a file, as `tauri build
    /// --config` does: e.g. the `version`, or the updater's `endpoints`. The updater's public key
    /// comes from TAURI_SIGNING_PUBLIC_KEY
    #[arg(long, value_name = "JSON|FILE")]
    pub config: Option<String>,

    /// Folder to write the bundles to [default: target/bundle-dist]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Cargo features of app-desktop to build with, e.g. `test-hooks` for the crash report
    /// tests (never for a release)
    #[arg(long, value_name = "FEATURES")]
    pub features: Option<String>,

    #[command(flatten)]
    pub publishing: PublishingArgs,
}

/// Preview the unreleased part of CHANGELOG.md (commits since the last v* tag, grouped by
/// cliff.toml) and the version `release prepare --bump auto` would make
#[derive(Debug, Args)]
pub struct Changelog {
    /// Run in this repository instead of this workspace's
    #[arg(short = 'C', long, value_name = "DIR")]
    pub directory: Option<PathBuf>,
}

/// Make releases: `prepare` bumps the version, writes the changelog, commits and tags
#[derive(Debug, Args)]
pub struct Release {
    #[command(subcommand)]
    pub command: ReleaseCommand,
}

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    Prepare(ReleasePrepare),
    Publish(ReleasePublish),
    Notes(ReleaseNotes),
}

/// The release notes of a tag: its changelog section, which `release prepare` put in the
/// annotated tag. Refuses a tag that does not match the workspace version (what the release
/// workflow's plan job checks)
#[derive(Debug, Args)]
pub struct ReleaseNotes {
    /// The tag [default: GITHUB_REF_NAME, else v<workspace version>]
    #[arg(long)]
    pub tag: Option<String>,

    /// Write the notes to this file instead of standard output
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Run in this repository instead of this workspace's
    #[arg(short = 'C', long, value_name = "DIR")]
    pub directory: Option<PathBuf>,
}

/// Check the dist folders of a release (one per build job) and publish it: every checksum and
/// updater signature checked, the assets gathered (one manifest, one signed SHA256SUMS,
/// latest.json per channel), the Breakpad symbols uploaded to app-web's symbol store, the
/// release published to the update server, and in GitHub Actions the GitHub release made with
/// every asset. Running it again after a partial failure finishes the job without duplicating
/// anything
#[derive(Debug, Args)]
pub struct ReleasePublish {
    /// The dist folders of the release's build jobs
    #[arg(required = true)]
    pub dist: Vec<PathBuf>,

    /// app-web's base URL, e.g. https://app.example.org
    #[arg(long, env = "APP_SERVER_URL")]
    pub server: String,

    /// File holding the admin API's bearer token [default: APP_ADMIN_TOKEN from the
    /// environment]
    #[arg(long)]
    pub token_file: Option<PathBuf>,

    /// Where the bundles are downloaded from (a file's URL is this plus its name)
    #[arg(long)]
    pub download_url: String,

    /// Release channel: auto puts a pre-release (vX.Y.Z-beta.N) on beta and any other version
    /// on stable
    #[arg(long, default_value = "auto", value_parser = ["auto", "stable", "beta"])]
    pub channel: String,

    /// Release notes shown by the app's update offer [default: none]
    #[arg(long, value_name = "FILE")]
    pub notes_file: Option<PathBuf>,

    /// Share of installs offered the release at first, a staged rollout below 100 (raise it
    /// later through the admin API); the release workflow takes it from the repository
    /// variable RELEASE_ROLLOUT_PERCENT
    #[arg(
        long,
        env = "APP_ROLLOUT_PERCENT",
        default_value_t = 100,
        value_parser = clap::value_parser!(u8).range(0..=100)
    )]
    pub rollout_percent: u8,

    /// The updater's public key, to check every bundle's signature before publishing
    #[arg(long, env = "TAURI_SIGNING_PUBLIC_KEY", hide_env_values = true)]
    pub updater_pubkey: Option<String>,

    /// GnuPG public key (armoured text or a path), to check SHA256SUMS.asc and the packages'
    /// signatures too
    #[arg(long, env = "APP_GPG_PUBLIC_KEY", hide_env_values = true)]
    pub gpg_pubkey: Option<String>,

    /// Folder the release's assets are gathered in [default: target/release-<version>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// The GitHub repository (owner/name) to make the release in, with GITHUB_TOKEN
    /// [default: GITHUB_REPOSITORY, set in GitHub Actions; none elsewhere]
    #[arg(long, value_name = "OWNER/NAME")]
    pub github_repo: Option<String>,

    /// Check everything and print what would be uploaded and published; send nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Bump the version (Cargo.toml, Cargo.lock) from the conventional commits since the last tag
/// or as given, regenerate CHANGELOG.md with cliff.toml, commit, and tag vX.Y.Z
#[derive(Debug, Args)]
pub struct ReleasePrepare {
    /// auto (from the commits: 0.x: breaking -> minor, feature -> patch; 1.x and later:
    /// breaking -> major, feature -> minor; else patch), patch, minor, major, or a version
    #[arg(
        long,
        default_value = "auto",
        value_name = "auto|patch|minor|major|X.Y.Z"
    )]
    pub bump: String,

    /// Make a pre-release, e.g. beta: X.Y.Z-beta.N with the next free N
    #[arg(long, value_name = "WORD")]
    pub pre: Option<String>,

    /// Show the version, the changelog section and the files it would change; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// The branch releases are made on
    #[arg(long, default_value = "main", value_name = "NAME")]
    pub branch: String,

    /// Release from another branch
    #[arg(long)]
    pub any_branch: bool,

    /// Run in this repository instead of this workspace's
    #[arg(short = 'C', long, value_name = "DIR")]
    pub directory: Option<PathBuf>,
}

/// Render every app icon (PNGs, icon.ico, icon.icns) from app-desktop/icons/icon.svg
#[derive(Debug, Args)]
pub struct Icons {
    /// Write nothing; fail if a committed icon differs from what the source renders to
    #[arg(long)]
    pub check: bool,
}

/// Bundle the release build of app-desktop with tauri-bundler and print the bundles as JSON;
/// `dist` runs this from an xtask built with the `bundler` feature
#[derive(Debug, Args)]
pub struct BundleDesktop {
    /// Target triple whose release build to bundle [default: the host's]
    #[arg(long, value_name = "TRIPLE")]
    pub target: Option<String>,

    /// Bundle kinds to make
    #[arg(long, value_enum, required = true)]
    pub kind: Vec<crate::artifacts::targets::ArtifactKind>,
}

/// Breakpad symbols for crash reports: make them from binaries, and upload them to app-web's
/// symbol store
#[derive(Debug, Args)]
pub struct Symbols {
    #[command(subcommand)]
    pub command: SymbolsCommand,
}

#[derive(Debug, Subcommand)]
pub enum SymbolsCommand {
    /// Write the Breakpad .sym file of each binary (ELF with DWARF, a Mach-O's .dSYM, or a
    /// Windows PDB) into a symbol store folder, `<module>/<debug id>/<module>.sym`
    Dump {
        /// Binaries (or PDB / .dSYM files) to read
        #[arg(required = true)]
        binaries: Vec<PathBuf>,
        /// Symbol store folder to write into
        #[arg(long)]
        out: PathBuf,
    },
    /// Upload every .sym file of a symbol store folder, or of a dist's symbols zip, to app-web
    /// (`PUT /api/admin/symbols/...`); uploading a file again replaces it
    Upload {
        /// A symbol store folder, or a `*-symbols.zip` that dist wrote
        source: PathBuf,
        /// app-web's base URL, e.g. https://app.example.org
        #[arg(long, env = "APP_SERVER_URL")]
        server: String,
        /// File holding the admin API's bearer token [default: APP_ADMIN_TOKEN from the
        /// environment]
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// List what would be uploaded and send nothing
        #[arg(long)]
        dry_run: bool,
    },
}

/// Run the crash upload parser's fuzz target (libFuzzer through cargo-fuzz, without
/// sanitizers so on the stable toolchain) for a bounded time; a crash fails the run and leaves
/// the input in crates/crash-upload/fuzz/artifacts
#[derive(Debug, Args)]
pub struct Fuzz {
    /// Seconds to fuzz
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
}

/// Check a running site the way a deploy ends: readiness, the version, TLS and the security
/// headers (for https), and a note created, read back and deleted through the API
#[derive(Debug, Args)]
pub struct Smoke {
    /// The site's base URL, e.g. https://staging.app.example.org
    #[arg(long)]
    pub url: String,

    /// Trust this CA certificate (PEM) instead of the system's, e.g. a test certificate
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Answer HOST:PORT with ADDRESS instead of DNS (as curl's --resolve), e.g. app.test:443:127.0.0.1
    #[arg(long, value_name = "HOST:PORT:ADDRESS")]
    pub resolve: Vec<crate::http::Resolve>,

    /// Fail unless /api/info reports this version
    #[arg(long, value_name = "VERSION")]
    pub expect_version: Option<String>,

    /// Require the security headers on a plain http:// URL too (always checked for https)
    #[arg(long)]
    pub expect_headers: bool,

    /// Before the checks, wait up to this many seconds for the site to present a certificate
    /// that is trusted (a new host's nginx runs on a self-signed one until certbot has the real
    /// one); 0 does not wait
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub certificate_wait_secs: u64,
}

/// Deploy the compose stack to an environment's host over SSH: upload its files, write .env
/// with the new image, pull, migrate, bring the services up, wait for health and run the smoke
/// test; on failure put the previous tag back. Each attempt is recorded on the host
#[derive(Debug, Args)]
pub struct Deploy {
    /// The environment, as named in the configuration (dev, staging, production)
    #[arg(long)]
    pub env: String,

    /// The image tag to deploy (letters, digits, `_`, `.` and `-`, up to 128), or a digest
    /// (`sha256:` and 64 hex digits)
    #[arg(long, required_unless_present_any = ["history", "rollback"], value_parser = crate::deploy::parse_tag)]
    pub tag: Option<String>,

    /// The environments file [default: deploy/environments.toml]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print the environment's deploy history (one JSON line per attempt) instead
    #[arg(long, conflicts_with = "tag")]
    pub history: bool,

    /// Return to the tag the last deploy replaced (or tried to), deployed the same way
    #[arg(long, conflicts_with_all = ["tag", "history"])]
    pub rollback: bool,

    /// With --rollback: first restore the backup the last deploy took before its migrations,
    /// if the schema has moved since (every write since that backup is lost; --dry-run says
    /// what it would restore)
    #[arg(long, requires_all = ["rollback", "identity"])]
    pub restore: bool,

    /// The age identity that decrypts the backups, for --restore; it reaches the restore on
    /// the host through SSH's stdin and is never written there
    #[arg(long, value_name = "FILE", requires = "restore")]
    pub identity: Option<PathBuf>,

    /// Print what would be done and change nothing (a deploy's connects to nothing; a
    /// rollback's reads the host's history and backups to say what it would do)
    #[arg(long)]
    pub dry_run: bool,
}

/// Post a message to the team's chat through an incoming webhook (Slack, Mattermost and others
/// take `{"text": ...}`); without APP_CHAT_WEBHOOK_URL it says so and does nothing
#[derive(Debug, Args)]
pub struct Notify {
    /// The message
    #[arg(long)]
    pub text: String,

    /// The webhook URL [default: APP_CHAT_WEBHOOK_URL]
    #[arg(long, env = "APP_CHAT_WEBHOOK_URL", hide_env_values = true)]
    pub webhook_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use clap::CommandFactory;

    /// The commands docs/development/commands.md's table names: the first word of each row.
    fn documented_commands() -> BTreeSet<String> {
        let file = crate::path::project_root().join("docs/development/commands.md");
        let table = std::fs::read_to_string(&file)
            .unwrap_or_else(|err| panic!("read {}: {err}", file.display()));
        table
            .lines()
            .skip_while(|line| !line.starts_with('|'))
            .take_while(|line| line.starts_with('|'))
            .skip(2)
            .filter_map(|row| {
                let cell = row.trim_start_matches('|').split('|').next()?;
                let first = cell.trim().trim_start_matches('`');
                let word: String = first
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                    .collect();
                (!word.is_empty()).then_some(word)
            })
            .collect()
    }

    #[test]
    fn help_lists_exactly_the_commands_the_docs_list() {
        let command = super::Xtask::command();
        let help = command.clone().render_help().to_string();
        let visible: BTreeSet<String> = command
            .get_subcommands()
            .filter(|sub| !sub.is_hide_set())
            .map(|sub| sub.get_name().to_owned())
            .collect();
        let documented = documented_commands();
        assert!(
            documented.len() >= 20,
            "the table was not read: {documented:?}"
        );
        assert_eq!(
            visible, documented,
            "`cargo xtask --help` and docs/development/commands.md's table must list the same commands"
        );
        for name in &documented {
            assert!(
                help.lines()
                    .any(|line| line.trim_start().starts_with(name.as_str())),
                "--help does not show {name}:\n{help}"
            );
        }
        assert!(
            !help.contains("bundle-desktop"),
            "the internal bundle-desktop shows in --help:\n{help}"
        );
    }
}
