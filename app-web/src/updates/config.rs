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
    #[arg(long, env = "APP_WEB_UPDATER_PUBLIC_KEY", global = true)]
    pub updater_public_key: Option<String>,

    /// Accept plain-HTTP artifact URLs when publishing. Only for tests on loopback with a
    /// desktop build that allows them (Tauri's dangerousInsecureTransportProtocol); release
    /// builds refuse to download over HTTP
    #[arg(long, env = "APP_WEB_UPDATES_ALLOW_HTTP_DOWNLOADS", global = true)]
    pub allow_http_downloads: bool,
}

/// What publishing checks artifacts against.
#[derive(Clone)]
pub struct PublishPolicy {
    pub key: Option<minisign_verify::PublicKey>,
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
                decode_box(key)
                    .and_then(|text| {
                        minisign_verify::PublicKey::decode(&text).map_err(|err| err.to_string())
                    })
                    .map_err(|err| {
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
    /// `version`, if it cannot. The bundle itself is not downloaded: the key id the signature
    /// names and the version in its trusted comment are what publishing can check.
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
        if let Err(err) = key.verify_stream(&decoded) {
            return Some(match err {
                minisign_verify::Error::UnexpectedKeyId => {
                    "signature was made with another key than the updater public key this server \
                     has: sign with the product's updater key"
                        .to_owned()
                }
                other => format!("signature cannot be checked with the updater key: {other}"),
            });
        }
        let signed_version = decoded
            .trusted_comment()
            .split('\t')
            .find_map(|field| field.strip_prefix("version:"));
        match signed_version {
            Some(signed) if signed != version => Some(format!(
                "signature was made for version {signed}, not {version}"
            )),
            _ => None,
        }
    }
}

/// A base64-encoded minisign box (key or signature), as text.
fn decode_box(base64_text: &str) -> Result<String, String> {
    let bytes = STANDARD
        .decode(base64_text.trim())
        .map_err(|err| format!("not base64: {err}"))?;
    String::from_utf8(bytes).map_err(|_| "not text once decoded".to_owned())
}
