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
    Secret {
        file: "admin_token",
        what: "the bearer token of app-web's admin API (publishing desktop releases, rollouts)",
    },
    Secret {
        file: "monitor_db_password",
        what: "the password of the `monitor` role postgres-exporter connects as",
    },
    Secret {
        file: "redis_exporter_passwords",
        what: "redis-exporter's password map, with Redis's requirepass",
    },
    Secret {
        file: "grafana_admin_password",
        what: "the password of Grafana's `admin` user",
    },
    Secret {
        file: "alert_webhook_url",
        what: "where Alertmanager posts alerts: written empty, paste your webhook's URL (or set ALERT_EMAIL_TO)",
    },
    Secret {
        file: "alert_smtp_password",
        what: "the SMTP password for alert e-mails: written empty, paste it when ALERT_SMTP_USERNAME is set",
    },
];

/// Where redis-exporter reaches Redis in docker/compose.yaml (REDIS_ADDR): the key of its
/// password map.
const REDIS_EXPORTER_ADDRESS: &str = "redis://redis:6379";

pub fn write_missing(dir: &Path, force: bool, dry_run: bool) -> anyhow::Result<()> {
    if !dry_run {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        set_mode(dir, 0o700)?;
    }
    // Some files repeat another's password, so they follow that file: they are rewritten
    // whenever they no longer match it.
    let app_password = kept_or_new(dir, "app_db_password", force)?;
    let redis_password = kept_or_new(dir, "redis_password", force)?;
    for secret in SECRETS {
        let path = dir.join(secret.file);
        let derived = match secret.file {
            "app_db_password" => Some(app_password.clone()),
            "redis_password" => Some(redis_password.clone()),
            "pgbouncer_userlist" => Some(format!("\"app\" \"{app_password}\"\n")),
            "redis_exporter_passwords" => {
                Some(serde_json::json!({ REDIS_EXPORTER_ADDRESS: redis_password }).to_string())
            }
            _ => None,
        };
        let current = std::fs::read_to_string(&path).ok();
        let up_to_date = match (&current, &derived) {
            (Some(current), Some(derived)) => current.trim_end() == derived.trim_end(),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if up_to_date && !force {
            eprintln!("xtask: keeping {} ({})", path.display(), secret.what);
            continue;
        }
        let content = match (derived, secret.file) {
            (Some(derived), _) => derived,
            // Not ours to invent: a provider issues them. Empty keeps what they enable off.
            (None, "backup_s3_secret_key" | "alert_webhook_url" | "alert_smtp_password") => {
                String::new()
            }
            (None, _) => random_password()?,
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

/// The password in `dir`/`name` unless it is missing or `force` is set; else a new one.
fn kept_or_new(dir: &Path, name: &str, force: bool) -> anyhow::Result<String> {
    match std::fs::read_to_string(dir.join(name)) {
        Ok(text) if !force && !text.trim().is_empty() => Ok(text.trim().to_owned()),
        _ => random_password(),
    }
}

/// 32 random bytes as hex: no character that needs quoting in a URL, a shell or a config file.
fn random_password() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .context("read /dev/urandom")?;
    Ok(hex::encode(bytes))
}

/// Readable by everyone: the containers' users (postgres, redis, app-web's 65532) differ from
/// the host's, and the folder itself is private to its owner.
fn write_atomically(path: &Path, content: &str) -> anyhow::Result<()> {
    crate::atomic_file::write(path, content.as_bytes(), 0o444)
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
    fn the_password_map_is_keyed_by_the_address_compose_gives_redis_exporter() {
        let compose =
            std::fs::read_to_string(crate::path::docker_dir().join("compose.yaml")).unwrap();
        assert!(compose.contains(&format!("REDIS_ADDR: {REDIS_EXPORTER_ADDRESS}\n")));
    }

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

        let redis = read("redis_password");
        let map: serde_json::Value =
            serde_json::from_str(&read("redis_exporter_passwords")).unwrap();
        assert_eq!(map, serde_json::json!({ "redis://redis:6379": redis }));
        assert_eq!(read("alert_webhook_url"), "");
        assert_eq!(read("grafana_admin_password").len(), 64);

        std::fs::remove_file(secrets.join("redis_password")).unwrap();
        write_missing(&secrets, false, false).unwrap();
        assert_eq!(
            read("app_db_password"),
            app,
            "an existing secret was replaced"
        );
        let new_redis = read("redis_password");
        assert_eq!(new_redis.len(), 64);
        assert_ne!(new_redis, redis);
        let map: serde_json::Value =
            serde_json::from_str(&read("redis_exporter_passwords")).unwrap();
        assert_eq!(
            map["redis://redis:6379"], new_redis,
            "the exporter's map follows a new Redis password"
        );

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
