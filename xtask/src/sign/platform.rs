//! The credentials a target's release is signed with, read from the environment only, and
//! checked before the long builds start: in release mode every missing one is an error naming
//! its variables, otherwise a warning each. Windows and macOS code signing happen inside
//! tauri-bundler while it bundles (signtool by certificate thumbprint or a custom sign command;
//! codesign with the hardened runtime, then notarytool and the stapler when notarization
//! credentials are set); `bundle_settings` hands it what is here.

use anyhow::Context;

use super::{gpg, updater};
use crate::artifacts::targets::Os;

pub const WINDOWS_THUMBPRINT: &str = "WINDOWS_CERTIFICATE_THUMBPRINT";
pub const WINDOWS_SIGN_COMMAND: &str = "WINDOWS_SIGN_COMMAND";
pub const APPLE_IDENTITY: &str = "APPLE_SIGNING_IDENTITY";
/// A base64 .p12 and its password, imported by tauri-bundler into a temporary keychain.
const APPLE_CERTIFICATE: [&str; 2] = ["APPLE_CERTIFICATE", "APPLE_CERTIFICATE_PASSWORD"];
/// notarytool with an App Store Connect API key ...
const APPLE_API_KEY: [&str; 3] = ["APPLE_API_KEY", "APPLE_API_ISSUER", "APPLE_API_KEY_PATH"];
/// ... or with an Apple ID and an app-specific password.
const APPLE_ID: [&str; 3] = ["APPLE_ID", "APPLE_PASSWORD", "APPLE_TEAM_ID"];

/// One kind of signature a release carries, and whether its credentials are all set.
#[derive(Debug)]
pub struct Need {
    pub what: &'static str,
    /// The ways to provide it: each a set of variables that must all be set.
    pub ways: Vec<Vec<&'static str>>,
    pub met: bool,
}

/// Reads a variable; an empty value counts as unset.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// What a release for `os` must be signed with, checked against `env`.
pub fn needs(os: Os, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Vec<Need>> {
    let need = |what, ways: Vec<Vec<&'static str>>| -> anyhow::Result<Need> {
        let mut met = false;
        for way in &ways {
            let set: Vec<&str> = way.iter().copied().filter(|v| env(v).is_some()).collect();
            if set.len() == way.len() {
                met = true;
            } else if !set.is_empty() {
                let unset: Vec<&str> = way.iter().copied().filter(|v| !set.contains(v)).collect();
                anyhow::bail!(
                    "{} is set but {} is not: {what} needs them together",
                    set.join(", "),
                    unset.join(", ")
                );
            }
        }
        Ok(Need { what, ways, met })
    };
    let mut needs = vec![
        need(
            "the updater's signatures",
            vec![vec![updater::KEY_VARIABLE]],
        )?,
        need(
            "the updater's public key in the app",
            vec![vec![updater::PUBLIC_KEY_VARIABLE]],
        )?,
    ];
    match os {
        Os::Linux => needs.push(need(
            "GnuPG signatures over the packages and SHA256SUMS",
            vec![vec![gpg::KEY_VARIABLE]],
        )?),
        Os::Windows => {
            windows_sign_command(env)?;
            needs.push(need(
                "Authenticode signatures on the installers",
                vec![vec![WINDOWS_THUMBPRINT], vec![WINDOWS_SIGN_COMMAND]],
            )?);
        }
        Os::Mac => {
            needs.push(need(
                "codesign on the app",
                vec![vec![APPLE_IDENTITY], APPLE_CERTIFICATE.to_vec()],
            )?);
            needs.push(need(
                "notarization (notarytool) and stapling",
                vec![APPLE_API_KEY.to_vec(), APPLE_ID.to_vec()],
            )?);
        }
    }
    Ok(needs)
}

/// Fails in release mode when a credential is missing, naming every missing one; otherwise
/// warns about each and goes on.
pub fn check(os: Os, release: bool) -> anyhow::Result<()> {
    let missing: Vec<String> = needs(os, &var)?
        .into_iter()
        .filter(|need| !need.met)
        .map(|need| {
            let ways: Vec<String> = need.ways.iter().map(|way| way.join(" + ")).collect();
            format!("{} (set {})", need.what, ways.join(", or "))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    anyhow::ensure!(
        !release,
        "a release is signed, but these credentials are missing:\n  {}",
        missing.join("\n  ")
    );
    for line in missing {
        eprintln!("xtask: warning: unsigned: {line}");
    }
    Ok(())
}

/// WINDOWS_SIGN_COMMAND split into a program and its arguments, one of which is `%1`, the
/// file to sign (as Tauri's `signCommand` takes it), e.g. for Azure Trusted Signing:
/// `trusted-signing-cli -e https://weu.codesigning.azure.net -a Account -c Profile %1`.
pub fn windows_sign_command(
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<(String, Vec<String>)>> {
    let Some(command) = env(WINDOWS_SIGN_COMMAND) else {
        return Ok(None);
    };
    let mut words = shell_words::split(&command)
        .with_context(|| format!("{WINDOWS_SIGN_COMMAND} is not a command line"))?
        .into_iter();
    let program = words
        .next()
        .with_context(|| format!("{WINDOWS_SIGN_COMMAND} names no program"))?;
    let args: Vec<String> = words.collect();
    anyhow::ensure!(
        args.iter().any(|arg| arg.contains("%1")),
        "{WINDOWS_SIGN_COMMAND} must pass the file to sign as %1"
    );
    Ok(Some((program, args)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    fn unmet(os: Os, env: &dyn Fn(&str) -> Option<String>) -> Vec<&'static str> {
        needs(os, env)
            .unwrap()
            .into_iter()
            .filter(|need| !need.met)
            .map(|need| need.what)
            .collect()
    }

    #[test]
    fn each_platform_names_what_it_signs_with() {
        let nothing = env_of(&[]);
        assert_eq!(unmet(Os::Linux, &nothing).len(), 3);
        assert_eq!(unmet(Os::Windows, &nothing).len(), 3);
        assert_eq!(unmet(Os::Mac, &nothing).len(), 4);

        let windows = env_of(&[
            ("TAURI_SIGNING_PRIVATE_KEY", "k"),
            ("TAURI_SIGNING_PUBLIC_KEY", "p"),
            (
                "WINDOWS_SIGN_COMMAND",
                "trusted-signing-cli -e https://x -a A -c C %1",
            ),
        ]);
        assert!(unmet(Os::Windows, &windows).is_empty());
        let mac = env_of(&[
            ("TAURI_SIGNING_PRIVATE_KEY", "k"),
            ("TAURI_SIGNING_PUBLIC_KEY", "p"),
            (
                "APPLE_SIGNING_IDENTITY",
                "Developer ID Application: App (TEAM)",
            ),
            ("APPLE_ID", "dev@app.test"),
            ("APPLE_PASSWORD", "app-specific"),
            ("APPLE_TEAM_ID", "TEAM"),
        ]);
        assert!(unmet(Os::Mac, &mac).is_empty());
        let linux_without_gpg = env_of(&[
            ("TAURI_SIGNING_PRIVATE_KEY", "k"),
            ("TAURI_SIGNING_PUBLIC_KEY", "p"),
        ]);
        assert_eq!(
            unmet(Os::Linux, &linux_without_gpg),
            ["GnuPG signatures over the packages and SHA256SUMS"]
        );
    }

    #[test]
    fn half_a_credential_is_named() {
        let half = env_of(&[("APPLE_API_KEY", "KEYID"), ("APPLE_API_ISSUER", "issuer")]);
        let err = needs(Os::Mac, &half).unwrap_err().to_string();
        assert!(err.contains("APPLE_API_KEY_PATH is not"), "{err}");
    }

    #[test]
    fn a_sign_command_must_take_the_file() {
        let good = env_of(&[("WINDOWS_SIGN_COMMAND", "signer --profile 'My Profile' %1")]);
        let (program, args) = windows_sign_command(&good).unwrap().unwrap();
        assert_eq!(program, "signer");
        assert_eq!(args, ["--profile", "My Profile", "%1"]);
        let without_file = env_of(&[("WINDOWS_SIGN_COMMAND", "signer --all")]);
        let err = windows_sign_command(&without_file).unwrap_err().to_string();
        assert!(err.contains("%1"), "{err}");
        let unbalanced = env_of(&[("WINDOWS_SIGN_COMMAND", "signer 'open %1")]);
        assert!(windows_sign_command(&unbalanced).is_err());
    }
}
