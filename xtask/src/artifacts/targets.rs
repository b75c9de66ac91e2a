//! The target triples `cargo xtask dist` can build for: each one's OS and architecture, and
//! what it produces.

use std::fmt;

use anyhow::Context;
use serde::Serialize;
use xshell::{Shell, cmd};

/// What kind of file an artifact is; the manifest names it in kebab-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
#[clap(rename_all = "kebab-case")]
pub enum ArtifactKind {
    ServerArchive,
    Deb,
    Rpm,
    AppImage,
    Msi,
    Nsis,
    /// The macOS app, as the updater installs it: `<name>.app.tar.gz`.
    App,
    Dmg,
    /// The desktop build's Breakpad symbols, a zip of a symbol store folder; always made, so
    /// not a `--kind` to ask for.
    #[value(skip)]
    Symbols,
}

impl ArtifactKind {
    /// Whether the updater installs this bundle, which must therefore carry its signature
    /// (the disk image is for first installs only).
    pub fn is_updater_bundle(self) -> bool {
        self.updater_bundle_type().is_some()
    }

    /// The bundle type the updater reports for an installed bundle of this kind (its
    /// `{{bundle_type}}`, and the suffix of its platform keys), None for what it never installs.
    pub fn updater_bundle_type(self) -> Option<&'static str> {
        match self {
            ArtifactKind::Deb => Some("deb"),
            ArtifactKind::Rpm => Some("rpm"),
            ArtifactKind::AppImage => Some("appimage"),
            ArtifactKind::Msi => Some("msi"),
            ArtifactKind::Nsis => Some("nsis"),
            ArtifactKind::App => Some("app"),
            ArtifactKind::ServerArchive | ArtifactKind::Dmg | ArtifactKind::Symbols => None,
        }
    }

    /// The name `bundle-desktop --kind` takes, which is also the manifest's.
    pub fn cli_name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|value| value.get_name().to_owned())
            .unwrap_or_default()
    }
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArtifactKind::ServerArchive => "server archive",
            ArtifactKind::Deb => "deb",
            ArtifactKind::Rpm => "rpm",
            ArtifactKind::AppImage => "AppImage",
            ArtifactKind::Msi => "msi",
            ArtifactKind::Nsis => "NSIS installer",
            ArtifactKind::App => "app",
            ArtifactKind::Dmg => "dmg",
            ArtifactKind::Symbols => "symbols",
        })
    }
}

/// The operating system a target builds for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    Windows,
    Mac,
}

impl Os {
    /// The name Tauri's updater gives it, the `{os}` of its `{os}-{arch}` platform keys.
    pub fn updater_name(self) -> &'static str {
        match self {
            Os::Linux => "linux",
            Os::Windows => "windows",
            Os::Mac => "darwin",
        }
    }
}

/// One supported target triple: its OS and architecture, whether the server is built for it,
/// and the desktop bundles made for it.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    pub triple: &'static str,
    pub os: Os,
    /// The architecture, as the triple and Tauri's updater both name it.
    pub arch: &'static str,
    pub server: bool,
    pub desktop_bundles: &'static [ArtifactKind],
}

const LINUX_BUNDLES: &[ArtifactKind] =
    &[ArtifactKind::Deb, ArtifactKind::Rpm, ArtifactKind::AppImage];
const MACOS_BUNDLES: &[ArtifactKind] = &[ArtifactKind::App, ArtifactKind::Dmg];

/// Every target dist supports. app-web runs on Linux only; each of these runs in its own CI
/// job, on its own platform, since tauri-bundler makes each platform's bundles on that platform.
pub const TARGETS: &[Target] = &[
    Target {
        triple: "x86_64-unknown-linux-gnu",
        os: Os::Linux,
        arch: "x86_64",
        server: true,
        desktop_bundles: LINUX_BUNDLES,
    },
    Target {
        triple: "aarch64-unknown-linux-gnu",
        os: Os::Linux,
        arch: "aarch64",
        server: true,
        desktop_bundles: LINUX_BUNDLES,
    },
    Target {
        triple: "x86_64-pc-windows-msvc",
        os: Os::Windows,
        arch: "x86_64",
        server: false,
        desktop_bundles: &[ArtifactKind::Msi, ArtifactKind::Nsis],
    },
    Target {
        triple: "aarch64-apple-darwin",
        os: Os::Mac,
        arch: "aarch64",
        server: false,
        desktop_bundles: MACOS_BUNDLES,
    },
    Target {
        triple: "x86_64-apple-darwin",
        os: Os::Mac,
        arch: "x86_64",
        server: false,
        desktop_bundles: MACOS_BUNDLES,
    },
];

fn supported_list() -> String {
    TARGETS
        .iter()
        .map(|target| target.triple)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The target for `requested`, or for the host when none was asked for.
pub fn resolve(requested: Option<&str>, host: &str) -> anyhow::Result<&'static Target> {
    let (triple, origin) = match requested {
        Some(triple) => (triple, "--target"),
        None => (host, "the host target (pass --target to choose another)"),
    };
    find(triple).map_err(|_| {
        anyhow::anyhow!(
            "{origin} {triple:?} is not supported by dist; supported targets: {}",
            supported_list()
        )
    })
}

/// The supported target `triple` names.
pub fn find(triple: &str) -> anyhow::Result<&'static Target> {
    TARGETS
        .iter()
        .find(|target| target.triple == triple)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{triple:?} is not a supported target; supported targets: {}",
                supported_list()
            )
        })
}

/// The host triple as rustc reports it.
pub fn host_triple(sh: &Shell) -> anyhow::Result<String> {
    let version = crate::step::quiet(cmd!(sh, "rustc -vV"))
        .read()
        .context("run rustc -vV")?;
    version
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV printed no host line")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_the_default() {
        let target = resolve(None, "x86_64-unknown-linux-gnu").unwrap();
        assert_eq!(target.triple, "x86_64-unknown-linux-gnu");
    }

    #[test]
    fn an_unsupported_target_lists_the_supported_ones() {
        let err = resolve(Some("sparc-sun-solaris"), "x86_64-unknown-linux-gnu").unwrap_err();
        assert_eq!(
            err.to_string(),
            "--target \"sparc-sun-solaris\" is not supported by dist; supported targets: \
             x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu, x86_64-pc-windows-msvc, \
             aarch64-apple-darwin, x86_64-apple-darwin"
        );
    }

    #[test]
    fn an_unsupported_host_says_how_to_choose() {
        let err = resolve(None, "riscv64gc-unknown-linux-gnu").unwrap_err();
        assert!(err.to_string().contains("pass --target"), "{err}");
        assert!(
            err.to_string().contains("x86_64-unknown-linux-gnu"),
            "{err}"
        );
    }

    #[test]
    fn each_target_names_its_os_and_architecture_as_its_triple_does() {
        for target in TARGETS {
            let os = match target.os {
                Os::Linux => "-linux-",
                Os::Windows => "-windows-",
                Os::Mac => "-apple-darwin",
            };
            assert!(target.triple.contains(os), "{}", target.triple);
            assert!(target.triple.starts_with(&format!("{}-", target.arch)));
        }
    }

    #[test]
    fn every_target_bundles_the_desktop_app() {
        for target in TARGETS {
            assert!(
                !target.desktop_bundles.is_empty(),
                "{} has no desktop bundle",
                target.triple
            );
            assert!(
                !target
                    .desktop_bundles
                    .contains(&ArtifactKind::ServerArchive)
            );
        }
    }
}
