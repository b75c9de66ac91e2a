//! age keys: parsing recipients and identity files, and making a new pair.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::str::FromStr;

use anyhow::Context;

/// Parses one recipient, naming where it came from when it is not an X25519 public key.
pub fn parse_recipient(text: &str, source: &str) -> anyhow::Result<age::x25519::Recipient> {
    age::x25519::Recipient::from_str(text).map_err(|reason| {
        anyhow::anyhow!(
            "the age recipient {text:?} from {source} is not an X25519 public key ({reason}); \
             recipients look like age1... (`app-web backup keygen` prints one)"
        )
    })
}

/// The identities in an age identity file.
pub fn read_identities(file: &Path) -> anyhow::Result<Vec<Box<dyn age::Identity + Send + Sync>>> {
    let identities = age::IdentityFile::from_file(file.display().to_string())
        .with_context(|| format!("read the age identity file {}", file.display()))?
        .into_identities()
        .with_context(|| format!("load the identities in {}", file.display()))?;
    anyhow::ensure!(
        !identities.is_empty(),
        "the identity file {} holds no identity (AGE-SECRET-KEY-1... lines)",
        file.display()
    );
    Ok(identities)
}

/// Writes a new identity to `out` (mode 0600, refused when `out` exists) and returns its
/// recipient.
pub fn generate_identity_file(out: &Path) -> anyhow::Result<String> {
    use age::secrecy::ExposeSecret;

    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let created = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .context("format the time")?;
    let text = format!(
        "# created: {created}\n# public key: {recipient}\n{}\n",
        identity.to_string().expose_secret()
    );
    let parent = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temporary = tempfile::Builder::new()
        .prefix(".identity-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(parent)
        .with_context(|| format!("create a temporary file in {}", parent.display()))?;
    temporary
        .write_all(text.as_bytes())
        .and_then(|()| temporary.as_file().sync_all())
        .context("write the identity")?;
    temporary.persist_noclobber(out).map_err(|err| {
        anyhow::anyhow!(
            "write the identity to {}: {} (keygen never overwrites a key)",
            out.display(),
            err.error
        )
    })?;
    Ok(recipient)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_identity_decrypts_what_its_recipient_encrypts() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("identity.txt");
        let recipient = generate_identity_file(&file).unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let recipient = parse_recipient(&recipient, "test").unwrap();
        let encrypted = age::encrypt(&recipient, b"secret").unwrap();
        let identities = read_identities(&file).unwrap();
        let mut reader = age::Decryptor::new(&encrypted[..])
            .unwrap()
            .decrypt(
                identities
                    .iter()
                    .map(|identity| identity.as_ref() as &dyn age::Identity),
            )
            .expect("the pair matches");
        let mut decrypted = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut decrypted).unwrap();
        assert_eq!(decrypted, b"secret");
        let again = generate_identity_file(&file).unwrap_err();
        assert!(
            format!("{again:#}").contains("never overwrites"),
            "{again:#}"
        );
    }

    #[test]
    fn a_bad_recipient_names_its_source() {
        let err = parse_recipient("age1nope", "--recipient").unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("--recipient") && text.contains("age1nope"),
            "{text}"
        );
    }
}
