//! The `bundle-desktop` step: tauri-bundler, used as a library and configured from
//! app-desktop/tauri.conf.json and the workspace version. Compiled only with the `bundler`
//! feature; see `bundle.rs` for how dist runs it.

use std::path::Path;

use anyhow::Context;
use tauri_bundler::{
    BundleBinary, BundleSettings, CustomSignCommandSettings, DebianSettings, Entitlements,
    MacOsSettings, NsisSettings, PackageSettings, PackageType, RpmSettings, SettingsBuilder,
    WindowsSettings, WixSettings,
};

use super::bundle::BuiltBundle;
use crate::artifacts::targets::{self, ArtifactKind, Target};
use crate::sign::platform;
use crate::workspace::Product;
use crate::{flags, path};

impl flags::BundleDesktop {
    /// Bundles and prints the list of bundles as JSON on stdout, for `dist` to read.
    pub fn run(self, sh: &xshell::Shell) -> anyhow::Result<()> {
        let host = targets::host_triple(sh)?;
        let target = targets::resolve(Some(self.target.as_deref().unwrap_or(&host)), &host)?;
        let desktop = DesktopConfig::load(target.triple)?;
        // The version Tauri builds into the app: the configuration's, else the workspace's.
        let version = match desktop.config.version.clone() {
            Some(version) => version,
            None => Product::load()?.version,
        };
        let bundles = bundle(sh, target, &self.kind, &desktop, &version)?;
        println!(
            "{}",
            serde_json::to_string(&bundles).context("serialise the bundle list")?
        );
        Ok(())
    }
}

/// The part of tauri.conf.json that bundling reads.
pub struct DesktopConfig {
    pub product_name: String,
    pub main_binary_name: String,
    config: tauri_utils::config::Config,
}

impl DesktopConfig {
    /// tauri.conf.json with the overlay for `triple`'s platform (tauri.linux.conf.json, ...)
    /// and then `TAURI_CONFIG` merged in, as Tauri merges them (JSON Merge Patch).
    pub fn load(triple: &str) -> anyhow::Result<Self> {
        let platform = tauri_utils::platform::Target::from_triple(triple);
        let dir = path::desktop_dir();
        let (mut merged, mut files) = tauri_utils::config::parse::read_from(platform, &dir)
            .with_context(|| format!("read the Tauri configuration in {}", dir.display()))?;
        if let Ok(text) = std::env::var("TAURI_CONFIG") {
            let patch: serde_json::Value =
                serde_json::from_str(&text).context("TAURI_CONFIG is not JSON")?;
            json_patch::merge(&mut merged, &patch);
            files.push("TAURI_CONFIG".into());
        }
        let config: tauri_utils::config::Config =
            serde_json::from_value(merged).with_context(|| {
                format!(
                    "{} do not make a valid Tauri configuration",
                    files
                        .iter()
                        .map(|file| file.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" + ")
                )
            })?;
        let product_name = config
            .product_name
            .clone()
            .context("tauri.conf.json has no productName")?;
        let main_binary_name = config
            .main_binary_name
            .clone()
            .unwrap_or_else(|| product_name.clone());
        Ok(Self {
            product_name,
            main_binary_name,
            config,
        })
    }
}

fn package_type(kind: ArtifactKind) -> Option<PackageType> {
    match kind {
        ArtifactKind::Deb => Some(PackageType::Deb),
        ArtifactKind::Rpm => Some(PackageType::Rpm),
        ArtifactKind::AppImage => Some(PackageType::AppImage),
        ArtifactKind::Msi => Some(PackageType::WindowsMsi),
        ArtifactKind::Nsis => Some(PackageType::Nsis),
        ArtifactKind::App => Some(PackageType::MacOsBundle),
        ArtifactKind::Dmg => Some(PackageType::Dmg),
        ArtifactKind::ServerArchive | ArtifactKind::Symbols => None,
    }
}

/// The macOS app as the updater installs it: the `.app` folder in a `.app.tar.gz` beside it.
fn app_archive(app: &Path) -> anyhow::Result<std::path::PathBuf> {
    let name = app
        .file_name()
        .with_context(|| format!("{} has no name", app.display()))?;
    let mut archive_name = name.to_owned();
    archive_name.push(".tar.gz");
    let archive = app.with_file_name(archive_name);
    let dir = app.parent().unwrap_or(Path::new("."));
    let temporary = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("create a temporary file in {}", dir.display()))?;
    let encoder = flate2::write::GzEncoder::new(temporary.as_file(), flate2::Compression::best());
    let mut tar = tar::Builder::new(encoder);
    tar.follow_symlinks(false);
    tar.append_dir_all(name, app)
        .and_then(|()| tar.into_inner())
        .and_then(flate2::write::GzEncoder::finish)
        .with_context(|| format!("archive {}", app.display()))?;
    temporary
        .persist(&archive)
        .with_context(|| format!("rename into {}", archive.display()))?;
    Ok(archive)
}

/// Bundles the release binary of app-desktop for `target` as each of `kinds`, after writing
/// its Breakpad symbols (returned as a [`ArtifactKind::Symbols`] zip) and stripping the copy
/// that the bundles ship.
pub fn bundle(
    sh: &xshell::Shell,
    target: &Target,
    kinds: &[ArtifactKind],
    desktop: &DesktopConfig,
    version: &str,
) -> anyhow::Result<Vec<BuiltBundle>> {
    let release_dir = path::release_dir(target.triple);
    let shipped =
        super::debug_symbols::split(sh, target, &release_dir, &desktop.main_binary_name, version)?;

    let package_types: Vec<PackageType> = kinds
        .iter()
        .filter_map(|kind| package_type(*kind))
        .collect();
    let settings = SettingsBuilder::new()
        .project_out_directory(&shipped.binary_dir)
        .package_types(package_types)
        .package_settings(package_settings(desktop, version))
        .bundle_settings(bundle_settings(desktop, &path::desktop_dir())?)
        .binaries(vec![BundleBinary::new(
            desktop.main_binary_name.clone(),
            true,
        )])
        .target(target.triple.to_owned())
        .build()
        .context("configure tauri-bundler")?;
    let bundles = tauri_bundler::bundle_project(&settings).context("run tauri-bundler")?;

    let mut built = vec![BuiltBundle {
        kind: ArtifactKind::Symbols,
        path: shipped.symbols_zip,
    }];
    for bundle in bundles {
        let Some(kind) = kinds
            .iter()
            .copied()
            .find(|kind| package_type(*kind) == Some(bundle.package_type))
        else {
            anyhow::bail!(
                "tauri-bundler made an unexpected {:?} bundle",
                bundle.package_type
            )
        };
        for path in bundle.bundle_paths {
            let path = if kind == ArtifactKind::App {
                app_archive(&path)?
            } else {
                path
            };
            built.push(BuiltBundle { kind, path });
        }
    }
    Ok(built)
}

fn package_settings(desktop: &DesktopConfig, version: &str) -> PackageSettings {
    let bundle = &desktop.config.bundle;
    PackageSettings {
        product_name: desktop.product_name.clone(),
        version: version.to_owned(),
        description: bundle.short_description.clone().unwrap_or_default(),
        homepage: bundle.homepage.clone(),
        authors: None,
        default_run: Some(desktop.main_binary_name.clone()),
    }
}

/// The Windows settings: the overlay's MSI and NSIS settings, and Authenticode signing by
/// certificate thumbprint or a custom command from the environment.
fn windows_settings(
    desktop: &DesktopConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<WindowsSettings> {
    let windows = &desktop.config.bundle.windows;
    let sign_command = platform::windows_sign_command(env)?
        .map(|(cmd, args)| CustomSignCommandSettings { cmd, args });
    Ok(WindowsSettings {
        digest_algorithm: windows.digest_algorithm.clone(),
        certificate_thumbprint: env(platform::WINDOWS_THUMBPRINT)
            .or_else(|| windows.certificate_thumbprint.clone()),
        timestamp_url: windows.timestamp_url.clone(),
        tsp: windows.tsp,
        wix: windows.wix.as_ref().map(|wix| WixSettings {
            upgrade_code: wix.upgrade_code,
            ..WixSettings::default()
        }),
        nsis: windows.nsis.as_ref().map(|nsis| NsisSettings {
            install_mode: nsis.install_mode,
            ..NsisSettings::default()
        }),
        allow_downgrades: windows.allow_downgrades,
        sign_command,
        ..WindowsSettings::default()
    })
}

/// The macOS settings: the overlay's minimum version, hardened runtime and entitlements, and
/// the signing identity from the environment (tauri-bundler reads the notarization
/// credentials, APPLE_API_KEY... or APPLE_ID..., itself, then staples the ticket).
fn macos_settings(
    desktop: &DesktopConfig,
    desktop_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> MacOsSettings {
    let macos = &desktop.config.bundle.macos;
    MacOsSettings {
        minimum_system_version: macos.minimum_system_version.clone(),
        hardened_runtime: macos.hardened_runtime,
        entitlements: macos
            .entitlements
            .as_ref()
            .map(|file| Entitlements::Path(desktop_dir.join(file))),
        signing_identity: env(platform::APPLE_IDENTITY).or_else(|| macos.signing_identity.clone()),
        ..MacOsSettings::default()
    }
}

fn bundle_settings(desktop: &DesktopConfig, desktop_dir: &Path) -> anyhow::Result<BundleSettings> {
    let config = &desktop.config;
    let bundle = &config.bundle;
    let icons = bundle
        .icon
        .iter()
        .map(|icon| desktop_dir.join(icon).display().to_string())
        .collect();
    Ok(BundleSettings {
        identifier: Some(config.identifier.clone()),
        publisher: bundle.publisher.clone(),
        homepage: bundle.homepage.clone(),
        icon: Some(icons),
        copyright: bundle.copyright.clone(),
        category: bundle
            .category
            .as_deref()
            .and_then(|category| category.parse().ok()),
        short_description: bundle.short_description.clone(),
        long_description: bundle.long_description.clone(),
        deb: DebianSettings {
            depends: bundle.linux.deb.depends.clone(),
            section: bundle.linux.deb.section.clone(),
            priority: bundle.linux.deb.priority.clone(),
            ..DebianSettings::default()
        },
        rpm: RpmSettings {
            depends: bundle.linux.rpm.depends.clone(),
            release: bundle.linux.rpm.release.clone(),
            epoch: bundle.linux.rpm.epoch,
            ..RpmSettings::default()
        },
        windows: windows_settings(desktop, &platform::var)?,
        macos: macos_settings(desktop, desktop_dir, &platform::var),
        ..BundleSettings::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_platform_overlay_makes_a_valid_configuration() {
        let windows = DesktopConfig::load("x86_64-pc-windows-msvc")
            .unwrap()
            .config;
        let settings = &windows.bundle.windows;
        assert_eq!(settings.digest_algorithm.as_deref(), Some("sha256"));
        let wix = settings.wix.as_ref().expect("MSI settings");
        assert!(
            wix.upgrade_code.is_some(),
            "a fixed upgrade code lets an MSI replace the previous version"
        );
        let nsis = settings.nsis.as_ref().expect("NSIS settings");
        assert_eq!(
            nsis.install_mode,
            tauri_utils::config::NSISInstallerMode::CurrentUser
        );

        let macos = DesktopConfig::load("aarch64-apple-darwin").unwrap().config;
        let settings = &macos.bundle.macos;
        assert_eq!(settings.minimum_system_version.as_deref(), Some("11.0"));
        assert!(settings.hardened_runtime);
        let entitlements = settings.entitlements.as_deref().expect("entitlements");
        let text = std::fs::read_to_string(path::desktop_dir().join(entitlements)).unwrap();
        assert!(text.contains("com.apple.security.cs.allow-jit"), "{text}");

        // The Linux packages' settings live only in the Linux overlay.
        let linux = DesktopConfig::load("x86_64-unknown-linux-gnu")
            .unwrap()
            .config;
        assert!(linux.bundle.linux.deb.depends.is_some());
        assert!(windows.bundle.linux.deb.depends.is_none());
        for config in [&linux, &windows, &macos] {
            assert_eq!(config.identifier, "dev.app-project.desktop");
        }
    }

    #[test]
    fn every_bundle_of_every_target_is_one_tauri_bundler_makes() {
        for target in targets::TARGETS {
            for kind in target.desktop_bundles {
                assert!(
                    package_type(*kind).is_some(),
                    "{kind} for {}",
                    target.triple
                );
            }
        }
        assert!(package_type(ArtifactKind::ServerArchive).is_none());
    }

    #[test]
    fn windows_signing_comes_from_the_environment() {
        let desktop = DesktopConfig::load("x86_64-pc-windows-msvc").unwrap();
        let unsigned = windows_settings(&desktop, &|_| None).unwrap();
        assert!(unsigned.certificate_thumbprint.is_none());
        assert!(unsigned.sign_command.is_none());
        assert_eq!(unsigned.digest_algorithm.as_deref(), Some("sha256"));
        assert!(unsigned.wix.unwrap().upgrade_code.is_some());
        assert_eq!(
            unsigned.nsis.unwrap().install_mode,
            tauri_utils::config::NSISInstallerMode::CurrentUser
        );
        let thumbprint = windows_settings(&desktop, &|name| {
            (name == platform::WINDOWS_THUMBPRINT).then(|| "0123ABCD".to_owned())
        })
        .unwrap();
        assert_eq!(
            thumbprint.certificate_thumbprint.as_deref(),
            Some("0123ABCD")
        );
        let command = windows_settings(&desktop, &|name| {
            (name == platform::WINDOWS_SIGN_COMMAND)
                .then(|| "trusted-signing-cli -a Account %1".to_owned())
        })
        .unwrap()
        .sign_command
        .unwrap();
        assert_eq!(command.cmd, "trusted-signing-cli");
        assert_eq!(command.args, ["-a", "Account", "%1"]);
    }

    #[test]
    fn macos_signing_comes_from_the_environment() {
        let desktop = DesktopConfig::load("aarch64-apple-darwin").unwrap();
        let dir = path::desktop_dir();
        let settings = macos_settings(&desktop, &dir, &|name| {
            (name == platform::APPLE_IDENTITY)
                .then(|| "Developer ID Application: App Project (TEAMID)".to_owned())
        });
        assert!(
            settings
                .signing_identity
                .unwrap()
                .starts_with("Developer ID")
        );
        assert!(settings.hardened_runtime);
        assert_eq!(settings.minimum_system_version.as_deref(), Some("11.0"));
        match settings.entitlements {
            Some(Entitlements::Path(file)) => assert!(file.is_file(), "{}", file.display()),
            other => panic!("entitlements: {other:?}"),
        }
        assert!(
            macos_settings(&desktop, &dir, &|_| None)
                .signing_identity
                .is_none()
        );
    }

    #[test]
    fn the_macos_app_is_archived_whole_for_the_updater() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("App.app");
        std::fs::create_dir_all(app.join("Contents/MacOS")).unwrap();
        std::fs::write(app.join("Contents/MacOS/app-desktop"), b"binary").unwrap();
        std::fs::write(app.join("Contents/Info.plist"), b"plist").unwrap();
        let archive = app_archive(&app).unwrap();
        assert_eq!(archive, dir.path().join("App.app.tar.gz"));
        let file = std::fs::File::open(&archive).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut names: Vec<String> = tar
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert!(
            names.contains(&"App.app/Contents/MacOS/app-desktop".to_owned()),
            "{names:?}"
        );
        assert!(
            names.contains(&"App.app/Contents/Info.plist".to_owned()),
            "{names:?}"
        );
    }

    #[test]
    fn the_tauri_config_carries_what_the_bundles_need() {
        let desktop = DesktopConfig::load("x86_64-unknown-linux-gnu").unwrap();
        assert_eq!(desktop.main_binary_name, "app-desktop");
        let settings = bundle_settings(&desktop, &path::desktop_dir()).unwrap();
        assert!(settings.identifier.is_some());
        let depends = settings.deb.depends.unwrap_or_default();
        assert!(
            depends
                .iter()
                .any(|dep| dep.starts_with("libwebkit2gtk-4.1")),
            "{depends:?}"
        );
        for icon in settings.icon.unwrap_or_default() {
            assert!(
                Path::new(&icon).is_file(),
                "icon {icon} named in tauri.conf.json is missing"
            );
        }
        assert!(
            settings.category.is_some(),
            "tauri.conf.json's category is not one tauri-bundler knows"
        );
    }
}
