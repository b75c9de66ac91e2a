//! The update server's settings: the product's updater public key, which every published
//! artifact's signature must name, and whether plain-HTTP download URLs are allowed (tests on
//! loopback only).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Args;

#[derive(Debug, Clone, Args, Default)]
pub struct UpdatesConfig {
    /// The desktop app's updater public key (base64, as in tauri.conf.json's
    /// `plugins.updater.pubkey` and TAURI_SIGNING_PUBLIC_KEY); a release is published only when
    /// every artifact's signature is a minisign signature by this key. Without it publishing
    /// answers 503
    #[arg(long, env = "APP_WEB_UPDATER_PUBLIC_KEY")]
    pub updater_public_key: Option<String>,

    /// Accept plain-HTTP artifact URLs when publishing. Only for tests on loopback with a
    /// desktop build that allows them (Tauri's dangerousInsecureTransportProtocol); release
    /// builds refuse to download over HTTP
    #[arg(long, env = "APP_WEB_UPDATES_ALLOW_HTTP_DOWNLOADS")]
    pub allow_http_downloads: bool,
}

/// The product's updater key: minisign-verify's reading of it, and its Ed25519 public key.
#[derive(Clone)]
pub struct UpdaterKey {
    minisign: minisign_verify::PublicKey,
    ed25519: ed25519_dalek::VerifyingKey,
}

impl UpdaterKey {
    /// The key from its base64 text, as Tauri keeps it.
    pub fn decode(base64_text: &str) -> Result<Self, String> {
        let text = decode_box(base64_text)?;
        let minisign = minisign_verify::PublicKey::decode(&text).map_err(|err| err.to_string())?;
        // The key line: algorithm (2 bytes), key id (8), Ed25519 public key (32).
        let line = text.lines().nth(1).ok_or("no key line")?;
        let bytes = STANDARD
            .decode(line.trim())
            .map_err(|err| format!("the key line is not base64: {err}"))?;
        let key: [u8; 32] = bytes
            .get(10..42)
            .and_then(|key| key.try_into().ok())
            .ok_or("the key line is not 42 bytes")?;
        let ed25519 = ed25519_dalek::VerifyingKey::from_bytes(&key)
            .map_err(|err| format!("not an Ed25519 key: {err}"))?;
        Ok(Self { minisign, ed25519 })
    }
}

/// What publishing checks artifacts against.
#[derive(Clone)]
pub struct PublishPolicy {
    pub key: Option<UpdaterKey>,
    pub allow_http_downloads: bool,
}

impl PublishPolicy {
    /// The policy from the settings; a key that is not a minisign public key is refused at start.
    pub fn from_config(config: &UpdatesConfig) -> anyhow::Result<Self> {
        let key = config
            .updater_public_key
            .as_deref()
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .map(|key| {
                UpdaterKey::decode(key).map_err(|err| {
                        anyhow::anyhow!(
                            "the updater public key (--updater-public-key, APP_WEB_UPDATER_PUBLIC_KEY) \
                             is not a minisign public key as Tauri keeps it (base64 of the .pub file): {err}"
                        )
                    })
            })
            .transpose()?;
        Ok(Self {
            key,
            allow_http_downloads: config.allow_http_downloads,
        })
    }

    /// Why `signature` (a `.sig` file's base64 text) cannot be this key's signature of release
    /// `version`, if it cannot. The bundle itself is not downloaded, so its bytes are not
    /// checked here (the app checks them before installing); what is checked is that the
    /// signature names this key, that its global signature (over the signature and its trusted
    /// comment) verifies with the key, so only the key's holder made it, and that the trusted
    /// comment names this version, as the app requires.
    pub fn signature_problem(&self, signature: &str, version: &str) -> Option<String> {
        let key = self.key.as_ref()?;
        let text = match decode_box(signature) {
            Ok(text) => text,
            Err(err) => return Some(format!("signature is not a Tauri updater signature: {err}")),
        };
        let decoded = match minisign_verify::Signature::decode(&text) {
            Ok(decoded) => decoded,
            Err(err) => {
                return Some(format!("signature is not a minisign signature: {err}"));
            }
        };
        if let Err(err) = key.minisign.verify_stream(&decoded) {
            return Some(match err {
                minisign_verify::Error::UnexpectedKeyId => {
                    "signature was made with another key than the updater public key this server \
                     has: sign with the product's updater key"
                        .to_owned()
                }
                other => format!("signature cannot be checked with the updater key: {other}"),
            });
        }
        if let Err(problem) = global_signature_verifies(&text, decoded.trusted_comment(), key) {
            return Some(format!(
                "signature is not one the updater key made ({problem}): sign with the product's updater key"
            ));
        }
        let signed_version = decoded
            .trusted_comment()
            .split('\t')
            .find_map(|field| field.strip_prefix("version:"));
        match signed_version {
            Some(signed) if signed == version => None,
            Some(signed) => Some(format!(
                "signature was made for version {signed}, not {version}"
            )),
            None => Some(
                "signature names no version in its trusted comment, and the app requires one: \
                 sign with `cargo xtask sign`"
                    .to_owned(),
            ),
        }
    }
}

/// Checks a minisign signature box's global signature: Ed25519 by `key` over the signature
/// bytes (after the algorithm and key id) followed by the trusted comment.
fn global_signature_verifies(
    text: &str,
    trusted_comment: &str,
    key: &UpdaterKey,
) -> Result<(), String> {
    let lines: Vec<&str> = text.lines().collect();
    let (Some(signature_line), Some(global_line)) = (lines.get(1), lines.get(3)) else {
        return Err("it has no global signature".into());
    };
    let signature = STANDARD
        .decode(signature_line.trim())
        .map_err(|err| format!("its signature line is not base64: {err}"))?;
    let global: [u8; 64] = STANDARD
        .decode(global_line.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("its global signature is not 64 bytes of base64")?;
    let signed_bytes = signature
        .get(10..74)
        .ok_or("its signature line is not 74 bytes")?;
    let mut message = signed_bytes.to_vec();
    message.extend_from_slice(trusted_comment.as_bytes());
    key.ed25519
        .verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&global))
        .map_err(|_| "its global signature does not verify".to_owned())
}

impl PublishPolicy {
    #[cfg(test)]
    pub(crate) fn key_id_only_forgery(signature: &str) -> String {
        // The real signature with its global signature replaced: the key id is right, the
        // signature is not the key holder's.
        let text = decode_box(signature).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines[3] = STANDARD.encode([7u8; 64]);
        STANDARD.encode(lines.join("\n") + "\n")
    }
}

/// A base64-encoded minisign box (key or signature), as text.
fn decode_box(base64_text: &str) -> Result<String, String> {
    let bytes = STANDARD
        .decode(base64_text.trim())
        .map_err(|err| format!("not base64: {err}"))?;
    String::from_utf8(bytes).map_err(|_| "not text once decoded".to_owned())
}
