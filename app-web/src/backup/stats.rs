//! What the backup tools need from PostgreSQL: connections for pg_dump and pg_restore,
//! the exported snapshot a dump reads, versions, and row counts and checksums per table.

use std::path::PathBuf;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor, Row};

use super::manifest::TableStats;

/// How to reach the server, for sqlx and for libpq's tools alike.
#[derive(Clone)]
pub struct Target {
    pub options: PgConnectOptions,
    password: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("host", &self.host())
            .field("port", &self.options.get_port())
            .field("user", &self.options.get_username())
            .field("database", &self.database())
            .finish_non_exhaustive()
    }
}

/// `user@host:port/database`, never the password.
impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}@{}:{}/{}",
            self.options.get_username(),
            self.host(),
            self.options.get_port(),
            self.database()
        )
    }
}

impl Target {
    /// The configured database, as app-web's own settings give it.
    pub fn from_config(config: &crate::config::DatabaseConfig) -> anyhow::Result<Self> {
        let url = config.url()?.context(
            "backups need the database: set --database-url or APP_WEB_DATABASE_URL (and \
             APP_WEB_DATABASE_PASSWORD_FILE for its password)",
        )?;
        let options: PgConnectOptions = url.parse().context(
            "the database URL does not parse; expected postgres://user@host:port/database",
        )?;
        let password = match crate::config::value_or_file(
            None,
            config.database_password_file.as_deref(),
            "database password",
        )? {
            Some(password) => Some(password),
            None => url_password(&url),
        };
        let options = match &password {
            Some(password) => options.password(password),
            None => options,
        };
        Ok(Self {
            options: options.application_name("app-web-backup"),
            password,
        })
    }

    pub fn database(&self) -> String {
        self.options
            .get_database()
            .unwrap_or(self.options.get_username())
            .to_owned()
    }

    fn host(&self) -> String {
        match self.options.get_socket() {
            Some(socket) => socket.display().to_string(),
            None => self.options.get_host().to_owned(),
        }
    }

    /// The same server, another database.
    pub fn with_database(&self, database: &str) -> Self {
        Self {
            options: self.options.clone().database(database),
            password: self.password.clone(),
        }
    }

    /// libpq's variables for pg_dump and pg_restore: nothing secret goes on a command line.
    /// The tools keep their own application names, so pg_stat_activity tells them apart.
    pub fn libpq_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("PGHOST", self.host()),
            ("PGPORT", self.options.get_port().to_string()),
            ("PGUSER", self.options.get_username().to_owned()),
            ("PGDATABASE", self.database()),
        ];
        if let Some(password) = &self.password {
            env.push(("PGPASSWORD", password.clone()));
        }
        env
    }

    /// A connection without the time limits app-web's own pool sets: a backup's statements
    /// run as long as the tables are big.
    pub async fn connect(&self) -> anyhow::Result<PgConnection> {
        let mut connection = PgConnection::connect_with(&self.options)
            .await
            .with_context(|| format!("connect to PostgreSQL at {self}"))?;
        connection
            .execute(
                "SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0; \
                 SET lock_timeout = 0",
            )
            .await
            .context("lift the session's time limits")?;
        Ok(connection)
    }
}

fn url_password(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let password = parsed.password()?;
    let decoded = percent_encoding::percent_decode_str(password)
        .decode_utf8()
        .ok()?;
    Some(decoded.into_owned())
}

/// The server's versions and the schema's migration level.
pub struct ServerFacts {
    pub server_version: String,
    pub server_version_num: i32,
    pub schema_version: Option<i64>,
}

/// Reads the versions in the connection's current transaction.
pub async fn server_facts(connection: &mut PgConnection) -> anyhow::Result<ServerFacts> {
    let row = sqlx::query(
        "SELECT current_setting('server_version'), current_setting('server_version_num')::int4, \
         to_regclass('_sqlx_migrations') IS NOT NULL",
    )
    .fetch_one(&mut *connection)
    .await
    .context("read the server's version")?;
    let has_migrations: bool = row.get(2);
    let schema_version = if has_migrations {
        sqlx::query_scalar::<_, Option<i64>>(
            "SELECT max(version) FROM _sqlx_migrations WHERE success",
        )
        .fetch_one(&mut *connection)
        .await
        .context("read the schema version from _sqlx_migrations")?
    } else {
        None
    };
    Ok(ServerFacts {
        server_version: row.get(0),
        server_version_num: row.get(1),
        schema_version,
    })
}

/// Starts a repeatable-read transaction on `connection` and exports its snapshot, for
/// `pg_dump --snapshot`; the snapshot lives as long as the transaction.
pub async fn export_snapshot(connection: &mut PgConnection) -> anyhow::Result<String> {
    connection
        .execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .context("start the snapshot transaction")?;
    sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut *connection)
        .await
        .context("export the snapshot")
}

/// The ordinary tables of every user schema, as (schema, table).
pub async fn user_tables(connection: &mut PgConnection) -> anyhow::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' \
         AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2",
    )
    .fetch_all(&mut *connection)
    .await
    .context("list the tables")
}

/// Row counts and checksums of every user table, in the connection's current transaction.
///
/// The checksum sums the first 64 bits of each row's MD5, so it does not depend on row order,
/// and needs no memory beyond one row. Row text depends on output settings, so they are fixed
/// here: a restore compares equal only when read the same way.
pub async fn table_stats(connection: &mut PgConnection) -> anyhow::Result<Vec<TableStats>> {
    connection
        .execute(
            "SET LOCAL bytea_output = 'hex'; SET LOCAL TimeZone = 'UTC'; \
             SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'postgres'; \
             SET LOCAL extra_float_digits = 1",
        )
        .await
        .context("fix the output settings for checksums")?;
    let mut stats = Vec::new();
    for (schema, table) in user_tables(connection).await? {
        let sql = format!(
            "SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::int8::numeric), 0)::text \
             FROM ONLY {}.{} AS t",
            quote_identifier(&schema),
            quote_identifier(&table)
        );
        let (rows, checksum): (i64, String) = sqlx::query_as(&sql)
            .fetch_one(&mut *connection)
            .await
            .with_context(|| format!("count and checksum {schema}.{table}"))?;
        stats.push(TableStats {
            schema,
            table,
            rows,
            checksum,
        });
    }
    Ok(stats)
}

/// `name` as a double-quoted SQL identifier.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The major version in a tool's `--version` line, e.g. 15 from
/// `pg_dump (PostgreSQL) 15.8 (Debian 15.8-0+deb12u1)`.
pub fn tool_major_version(line: &str) -> Option<i32> {
    let version = line.split(')').nth(1)?.split_whitespace().next()?;
    version.split(['.', 'b', 'r']).next()?.parse().ok()
}

/// Runs `tool --version` and returns its first line.
pub fn tool_version(tool: &PathBuf) -> anyhow::Result<String> {
    let output = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .with_context(|| {
            format!(
                "run {} --version: is the PostgreSQL client installed? (set \
                 APP_WEB_BACKUP_PG_DUMP / APP_WEB_BACKUP_PG_RESTORE to its path)",
                tool.display()
            )
        })?;
    anyhow::ensure!(
        output.status.success(),
        "{} --version failed: {}",
        tool.display(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned())
}

/// Fails unless the client's major version is at least the server's: an older pg_dump
/// refuses a newer server, and says so less clearly.
pub fn check_client_version(
    tool: &str,
    version_line: &str,
    server_version_num: i32,
) -> anyhow::Result<()> {
    let server_major = server_version_num / 10000;
    let client_major = tool_major_version(version_line)
        .with_context(|| format!("read the version of {tool} from {version_line:?}"))?;
    anyhow::ensure!(
        client_major >= server_major,
        "{tool} {client_major} is older than the PostgreSQL {server_major} server it would dump \
         ({version_line:?}); run the backup with a {tool} of version {server_major} or newer \
         (the backup image is built on the stack's PostgreSQL image for this reason), or point \
         APP_WEB_BACKUP_PG_DUMP at one"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_major_versions_from_tool_banners() {
        assert_eq!(
            tool_major_version("pg_dump (PostgreSQL) 15.8 (Debian 15.8-0+deb12u1)"),
            Some(15)
        );
        assert_eq!(tool_major_version("pg_dump (PostgreSQL) 17.2"), Some(17));
        assert_eq!(tool_major_version("pg_dump (PostgreSQL) 18beta1"), Some(18));
        assert_eq!(tool_major_version("something else"), None);
    }

    #[test]
    fn an_older_client_is_refused_with_both_versions() {
        let line = "pg_dump (PostgreSQL) 15.8";
        check_client_version("pg_dump", line, 150008).unwrap();
        check_client_version("pg_dump", line, 140010).unwrap();
        let err = check_client_version("pg_dump", line, 160004).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("pg_dump 15 is older than the PostgreSQL 16 server"),
            "{text}"
        );
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_identifier("notes"), "\"notes\"");
        assert_eq!(quote_identifier("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn passwords_in_urls_are_decoded() {
        assert_eq!(
            url_password("postgres://app:p%40ss%2Bw@db/app").as_deref(),
            Some("p@ss+w")
        );
        assert_eq!(url_password("postgres://app@db/app"), None);
    }
}
