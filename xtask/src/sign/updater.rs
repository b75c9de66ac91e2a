//! Updater signatures in the format Tauri's updater plugin verifies: a minisign signature over
//! the bundle's final bytes, whose whole text (untrusted comment, signature, trusted comment,
//! global signature) is base64-encoded into `<bundle>.sig`. Keys are Tauri's too: the secret
//! and public key files' texts, base64-encoded. The public key is what `plugins.updater.pubkey`
//! in the Tauri configuration carries.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use minisign::{KeyPair, PublicKeyBox, SecretKey, SecretKeyBox, SignatureBox};

/// Where the secret key comes from: its base64 text, or a path to a file holding it.
pub const KEY_VARIABLE: &str = "TAURI_SIGNING_PRIVATE_KEY";
/// The updater's public key, built into app-desktop by dist and checked by release publish.
pub const PUBLIC_KEY_VARIABLE: &str = "TAURI_SIGNING_PUBLIC_KEY";
/// The key's password; unset for a key made without one.
pub const PASSWORD_VARIABLE: &str = "TAURI_SIGNING_PRIVATE_KEY_PASSWORD";

/// The untrusted comment Tauri's own signer writes.
const UNTRUSTED_COMMENT: &str = "signature from tauri secret key";

/// A new key pair protected by `password`: the secret key's and the public key's text, each
/// base64-encoded as Tauri keeps them.
pub fn generate(password: &str) -> anyhow::Result<(String, String)> {
    let KeyPair { pk, sk } = KeyPair::generate_encrypted_keypair(Some(password.to_owned()))
        .context("generate a minisign key pair")?;
    let secret = sk
        .to_box(Some("app updater secret key"))
        .context("encode the secret key")?
        .to_string();
    let public = pk.to_box().context("encode the public key")?.to_string();
    Ok((STANDARD.encode(secret), STANDARD.encode(public)))
}

fn decode_text(base64_text: &str, what: &str) -> anyhow::Result<String> {
    let bytes = STANDARD
        .decode(base64_text.trim())
        .with_context(|| format!("the {what} is not base64 (Tauri keeps keys base64-encoded)"))?;
    String::from_utf8(bytes).with_context(|| format!("the {what} is not text once decoded"))
}

/// The secret key from `key` (its base64 text, or a file holding that) and its password.
pub fn secret_key(key: &str, password: &str) -> anyhow::Result<SecretKey> {
    let path = Path::new(key.trim());
    let encoded = if !key.trim().is_empty() && path.is_file() {
        std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?
    } else {
        key.to_owned()
    };
    let text = decode_text(&encoded, "secret key")?;
    let boxed = SecretKeyBox::from_string(&text).context("the secret key is not a minisign key")?;
    // Always a password, never a prompt: CI has no terminal.
    boxed
        .into_secret_key(Some(password.to_owned()))
        .with_context(|| format!("decrypt the secret key (is {PASSWORD_VARIABLE} right?)"))
}

/// The signature of `file` as Tauri writes it into `<file>.sig`: base64 of the signature box,
/// whose trusted comment names the time, the file and the release `version` it belongs to (the
/// app refuses an update whose signed version differs from the one the server announces).
pub fn sign_file(file: &Path, key: &SecretKey, version: &str) -> anyhow::Result<String> {
    let name = file
        .file_name()
        .and_then(|name| name.to_str())
        .with_context(|| format!("{} has no file name", file.display()))?;
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs();
    let data = std::fs::File::open(file).with_context(|| format!("open {}", file.display()))?;
    let signature = minisign::sign(
        None,
        key,
        std::io::BufReader::new(data),
        Some(&format!(
            "timestamp:{timestamp}\tfile:{name}\tversion:{version}"
        )),
        Some(UNTRUSTED_COMMENT),
    )
    .with_context(|| format!("sign {}", file.display()))?;
    Ok(STANDARD.encode(signature.to_string()))
}

/// Where the signature of `file` goes.
pub fn signature_path(file: &Path) -> PathBuf {
    crate::path::with_suffix(file, ".sig")
}

/// The signature `cargo xtask sign` wrote for `file` (its `.sig`, trimmed).
pub fn read_signature(file: &Path) -> anyhow::Result<String> {
    let path = signature_path(file);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} is not signed ({} is missing): run `cargo xtask sign`",
            file.display(),
            path.display()
        )
    })?;
    Ok(text.trim().to_owned())
}

/// Signs `file` of release `version` and writes `<file>.sig` (to a temporary name first, then
/// renamed).
pub fn write_signature(file: &Path, key: &SecretKey, version: &str) -> anyhow::Result<PathBuf> {
    let signature = sign_file(file, key, version)?;
    let path = signature_path(file);
    crate::atomic_file::write(&path, signature.as_bytes(), 0o644)?;
    Ok(path)
}

/// Checks `signature` (the `.sig` file's base64 text) over `file` with `public_key` (base64, as
/// in the Tauri configuration), as the updater does before installing.
pub fn verify_file(file: &Path, signature: &str, public_key: &str) -> anyhow::Result<()> {
    let public = decode_text(public_key, "public key")?;
    let public = PublicKeyBox::from_string(&public)
        .and_then(PublicKeyBox::into_public_key)
        .context("the public key is not a minisign public key")?;
    let signature = decode_text(signature, "signature")?;
    let signature = SignatureBox::from_string(&signature)
        .context("the signature is not a minisign signature")?;
    let data = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
    minisign::verify(&public, &signature, Cursor::new(data), true, false, false)
        .with_context(|| format!("the signature of {} does not verify", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed_file(dir: &Path) -> (PathBuf, SecretKey, String) {
        let (secret, public) = generate("correct horse").unwrap();
        let key = secret_key(&secret, "correct horse").unwrap();
        let file = dir.join("app_0.2.0_amd64.deb");
        std::fs::write(&file, b"the bundle's final bytes").unwrap();
        write_signature(&file, &key, "0.2.0").unwrap();
        (file, key, public)
    }

    #[test]
    fn a_signature_verifies_and_a_changed_byte_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let (file, _, public) = signed_file(dir.path());
        let signature = std::fs::read_to_string(signature_path(&file)).unwrap();
        verify_file(&file, &signature, &public).unwrap();

        let decoded = decode_text(&signature, "signature").unwrap();
        assert!(decoded.starts_with("untrusted comment: signature from tauri secret key\n"));
        assert!(
            decoded.contains("\tfile:app_0.2.0_amd64.deb\tversion:0.2.0\n"),
            "{decoded}"
        );

        std::fs::write(&file, b"the bundle's final byteS").unwrap();
        let err = verify_file(&file, &signature, &public).unwrap_err();
        assert!(format!("{err:#}").contains("does not verify"), "{err:#}");
    }

    #[test]
    fn keys_come_as_text_or_as_a_file_and_a_wrong_password_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, _) = generate("pw").unwrap();
        let key_file = dir.path().join("updater.key");
        std::fs::write(&key_file, &secret).unwrap();
        secret_key(key_file.to_str().unwrap(), "pw").unwrap();
        let err = secret_key(&secret, "not it").unwrap_err();
        assert!(format!("{err:#}").contains(PASSWORD_VARIABLE), "{err:#}");
        let err = secret_key("not base64!", "pw").unwrap_err();
        assert!(format!("{err:#}").contains("not base64"), "{err:#}");
    }

    #[test]
    fn another_key_s_public_half_refuses_the_signature() {
        let dir = tempfile::tempdir().unwrap();
        let (file, _, _) = signed_file(dir.path());
        let (_, other_public) = generate("x").unwrap();
        let signature = std::fs::read_to_string(signature_path(&file)).unwrap();
        assert!(verify_file(&file, &signature, &other_public).is_err());
    }
}
