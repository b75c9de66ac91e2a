//! `cargo xtask docker secrets`: the files docker/compose.yaml mounts as secrets, with random
//! passwords. Existing files are kept unless forced, since the stack's volumes already hold the
//! passwords they were made with.

use std::io::Read;
use std::path::Path;

use anyhow::Context;

/// A secret file and how its content derives from the passwords.
struct Secret {
    file: &'static str,
    what: &'static str,
}

const SECRETS: &[Secret] = &[
    Secret {
        file: "postgres_password",
        what: "the PostgreSQL superuser's password",
    },
    Secret {
        file: "app_db_password",
        what: "the password of the `app` role app-web and migrate connect as",
    },
    Secret {
        file: "redis_password",
        what: "Redis's requirepass",
    },
    Secret {
        file: "pgbouncer_userlist",
        what: "PgBouncer's auth_file, with the `app` role's password",
    },
    Secret {
        file: "backup_s3_secret_key",
        what: "the off-site store's secret access key: written empty, paste the key your S3 provider issued",
    },
];

pub fn write_missing(dir: &Path, force: bool, dry_run: bool) -> anyhow::Result<()> {
    if !dry_run {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        set_mode(dir, 0o700)?;
    }
    // The user list repeats the app role's password, so it follows that file.
    let app_password = match std::fs::read_to_string(dir.join("app_db_password")) {
        Ok(text) if !force => text.trim().to_owned(),
        _ => random_password()?,
    };
    for secret in SECRETS {
        let path = dir.join(secret.file);
        if path.exists() && !force {
            eprintln!("xtask: keeping {} ({})", path.display(), secret.what);
            continue;
        }
        let content = match secret.file {
            "app_db_password" => app_password.clone(),
            "pgbouncer_userlist" => format!("\"app\" \"{app_password}\"\n"),
            // Not ours to invent: the provider issues it. Empty keeps off-site copies off.
            "backup_s3_secret_key" => String::new(),
            _ => random_password()?,
        };
        if dry_run {
            eprintln!("xtask: would write {} ({})", path.display(), secret.what);
            continue;
        }
        write_atomically(&path, &content)?;
        eprintln!("xtask: wrote {} ({})", path.display(), secret.what);
    }
    Ok(())
}

/// 32 random bytes as hex: no character that needs quoting in a URL, a shell or a config file.
fn random_password() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .context("read /dev/urandom")?;
    Ok(hex::encode(bytes))
}

/// Writes to a temporary name and renames, so a secret is never half-written. Readable by
/// everyone: the containers' users (postgres, redis, app-web's 65532) differ from the host's,
/// and the folder itself is private to its owner.
fn write_atomically(path: &Path, content: &str) -> anyhow::Result<()> {
    let dir = path.parent().context("a secret has a folder")?;
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("create a temporary file in {}", dir.display()))?;
    std::io::Write::write_all(&mut file, content.as_bytes())?;
    file.as_file().sync_all()?;
    set_mode(file.path(), 0o444)?;
    file.persist(path)
        .with_context(|| format!("rename into {}", path.display()))?;
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_made_once_and_the_user_list_follows_the_app_password() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets");
        write_missing(&secrets, false, true).unwrap();
        assert!(!secrets.exists(), "a dry run wrote something");

        write_missing(&secrets, false, false).unwrap();
        let read = |name: &str| std::fs::read_to_string(secrets.join(name)).unwrap();
        let app = read("app_db_password");
        assert_eq!(app.len(), 64);
        assert_ne!(app, read("postgres_password"));
        assert_eq!(read("pgbouncer_userlist"), format!("\"app\" \"{app}\"\n"));

        std::fs::remove_file(secrets.join("redis_password")).unwrap();
        write_missing(&secrets, false, false).unwrap();
        assert_eq!(
            read("app_db_password"),
            app,
            "an existing secret was replaced"
        );
        assert_eq!(read("redis_password").len(), 64);

        write_missing(&secrets, true, false).unwrap();
        assert_ne!(
            read("app_db_password"),
            app,
            "--force kept the old password"
        );
        assert_eq!(
            read("pgbouncer_userlist"),
            format!("\"app\" \"{}\"\n", read("app_db_password"))
        );
    }
}
