//! Parsing and dispatch only: the settings are declared in `config.rs` (those commands share)
//! and in each feature's `config.rs` (backup, crashes, analytics, updates), and each command
//! takes only the groups it reads.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::analytics::config::RetentionConfig;
use crate::config::{DatabaseConfig, ListenConfig, LogConfig, PoolConfig, ServeConfig};

/// The application's web service.
///
/// Every setting is a flag and an environment variable; with none set, app-web listens on
/// 127.0.0.1:8080 and serves the UI built into the binary. Without a command it serves, and
/// takes serve's options.
#[derive(Debug, Parser)]
#[command(name = "app-web", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogConfig,

    #[command(flatten)]
    pub serve: Box<ServeConfig>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP until SIGTERM or SIGINT (the default)
    Serve(Box<ServeConfig>),
    /// Apply the database migrations built into the binary, then exit
    Migrate(DatabaseArgs),
    /// Ask the local server's /readyz and exit 0 when it is ready, 1 when not (for container
    /// health checks in images without a shell or curl)
    Healthcheck {
        /// Seconds to wait for an answer
        #[arg(long, default_value_t = 3)]
        timeout_secs: u64,
        #[command(flatten)]
        listen: ListenConfig,
    },
    /// Encrypted database backups: run, list, restore, verify, prune, schedule, keygen
    Backup(Box<crate::backup::BackupArgs>),
    /// Analytics upkeep
    #[command(subcommand)]
    Analytics(AnalyticsCommand),
}

/// The database and its pool, for commands that connect as serving does.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub pool: PoolConfig,
}

#[derive(Debug, Subcommand)]
pub enum AnalyticsCommand {
    /// Sum finished days into the daily table, then delete raw events older than
    /// --analytics-retention-days and the salts of earlier days (what `serve` does every
    /// --analytics-purge-interval-secs)
    Purge {
        /// Print what would be summed and deleted, and change nothing
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        retention: RetentionConfig,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

impl Cli {
    /// The command line, or the process exits with clap's message: serve's options go without
    /// a command or after `serve`, every other command's after it, the logging options anywhere.
    pub fn parse_args() -> Self {
        Self::try_parse_args(std::env::args_os()).unwrap_or_else(|err| err.exit())
    }

    pub fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let mut command = Self::command();
        let matches = command.try_get_matches_from_mut(args)?;
        if let Some((name, _)) = matches.subcommand() {
            // serve's options given before another command would be read by nothing.
            let misplaced = command.get_arguments().find(|arg| {
                !arg.is_global_set()
                    && matches.value_source(arg.get_id().as_str())
                        == Some(clap::parser::ValueSource::CommandLine)
            });
            if let Some(arg) = misplaced {
                let flag = arg.get_long().unwrap_or(arg.get_id().as_str());
                return Err(command.error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!(
                        "--{flag} is an option of serve, not of {name}: put a command's options \
                         after it (`app-web {name} --help` lists them)"
                    ),
                ));
            }
        }
        Self::from_arg_matches(&matches).map_err(|err| err.format(&mut command))
    }

    pub async fn run(self) -> anyhow::Result<()> {
        match self.command.unwrap_or(Command::Serve(self.serve)) {
            Command::Serve(config) => crate::startup::serve(*config).await,
            Command::Migrate(DatabaseArgs { database, pool }) => {
                crate::db::check_can_migrate(&pool)?;
                let pool = crate::db::connect(&database, &pool)?.context(
                    "migrate needs a database: set --database-url or APP_WEB_DATABASE_URL",
                )?;
                crate::db::migrate(&pool).await
            }
            Command::Healthcheck {
                timeout_secs,
                listen,
            } => crate::healthcheck::probe(listen.listen, Duration::from_secs(timeout_secs)).await,
            Command::Backup(backup) => backup.run(&mut std::io::stdout()).await,
            Command::Analytics(AnalyticsCommand::Purge {
                dry_run,
                retention,
                database,
            }) => {
                let pool = crate::db::connect(&database.database, &database.pool)?.context(
                    "analytics purge needs a database: set --database-url or APP_WEB_DATABASE_URL",
                )?;
                let done =
                    crate::analytics::retention::run(&pool, retention.retention(), dry_run).await?;
                let mut out = std::io::stdout();
                serde_json::to_writer(&mut out, &done)?;
                use std::io::Write;
                writeln!(out)?;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use clap::{Args, CommandFactory};

    use super::*;
    use crate::backup::config::{
        DumpConfig, RestoreConfig, RetentionConfig as KeepConfig, ScheduleConfig, StoreConfig,
    };

    /// The long options a group of settings adds.
    fn group<T: Args>() -> Vec<String> {
        T::augment_args(clap::Command::new("group"))
            .get_arguments()
            .filter_map(|arg| arg.get_long().map(str::to_owned))
            .collect()
    }

    fn own(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    /// Every command with no subcommands of its own, by its path, with its long options
    /// (the logging options every command reads left out).
    fn leaves(command: &clap::Command, path: &str, found: &mut Vec<(String, BTreeSet<String>)>) {
        let options = command
            .get_arguments()
            .filter_map(|arg| arg.get_long())
            .filter(|long| !["help", "version", "log-filter", "log-format"].contains(long))
            .map(str::to_owned)
            .collect();
        if command.get_subcommands().next().is_none() || path.is_empty() {
            found.push((path.trim().to_owned(), options));
        }
        for sub in command.get_subcommands() {
            if sub.get_name() != "help" {
                leaves(sub, &format!("{path} {}", sub.get_name()), found);
            }
        }
    }

    #[test]
    fn each_command_lists_the_options_it_reads_and_no_others() {
        // What each command reads, by group; a group added to a command it does not use, or an
        // option added to a group some of its commands ignore, shows up here.
        let database = [group::<DatabaseConfig>(), group::<PoolConfig>()].concat();
        let expected: Vec<(&str, Vec<String>)> = vec![
            ("", group::<ServeConfig>()),
            ("serve", group::<ServeConfig>()),
            ("migrate", database.clone()),
            (
                "healthcheck",
                [group::<ListenConfig>(), own(&["timeout-secs"])].concat(),
            ),
            (
                "backup run",
                [
                    group::<StoreConfig>(),
                    group::<DumpConfig>(),
                    group::<KeepConfig>(),
                    group::<DatabaseConfig>(),
                    own(&["prune"]),
                ]
                .concat(),
            ),
            (
                "backup list",
                [group::<StoreConfig>(), own(&["remote", "json"])].concat(),
            ),
            (
                "backup restore",
                [
                    group::<StoreConfig>(),
                    group::<RestoreConfig>(),
                    group::<DatabaseConfig>(),
                    own(&[
                        "target-database",
                        "clean",
                        "no-owner",
                        "from-remote",
                        "dry-run",
                    ]),
                ]
                .concat(),
            ),
            (
                "backup verify",
                [
                    group::<StoreConfig>(),
                    group::<RestoreConfig>(),
                    group::<DatabaseConfig>(),
                ]
                .concat(),
            ),
            (
                "backup prune",
                [
                    group::<StoreConfig>(),
                    group::<KeepConfig>(),
                    own(&["dry-run", "prefix"]),
                ]
                .concat(),
            ),
            (
                "backup schedule",
                [
                    group::<ScheduleConfig>(),
                    group::<StoreConfig>(),
                    group::<DumpConfig>(),
                    group::<RestoreConfig>(),
                    group::<KeepConfig>(),
                    group::<DatabaseConfig>(),
                ]
                .concat(),
            ),
            ("backup keygen", own(&["out"])),
            (
                "analytics purge",
                [group::<RetentionConfig>(), database, own(&["dry-run"])].concat(),
            ),
        ];
        let mut found = Vec::new();
        leaves(&Cli::command(), "", &mut found);
        let found: Vec<(String, BTreeSet<String>)> = found;
        let expected: Vec<(String, BTreeSet<String>)> = expected
            .into_iter()
            .map(|(path, options)| (path.to_owned(), options.into_iter().collect()))
            .collect();
        assert_eq!(found, expected);
        // Serving's groups are all it reads, so `backup keygen --help` shows none of them.
        assert!(group::<ServeConfig>().contains(&"listen".to_owned()));
    }

    #[test]
    fn logging_options_go_anywhere_and_serves_options_not_before_another_command() {
        let parsed = Cli::try_parse_args(["app-web", "--log-format", "pretty", "migrate"]).unwrap();
        assert_eq!(parsed.log.format, crate::config::LogFormat::Pretty);
        assert!(matches!(parsed.command, Some(Command::Migrate(_))));
        let served = Cli::try_parse_args(["app-web", "--listen", "127.0.0.1:9"]).unwrap();
        assert_eq!(served.serve.listen.listen.port(), 9);
        let err = Cli::try_parse_args(["app-web", "--listen", "127.0.0.1:9", "migrate"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--listen is an option of serve, not of migrate"),
            "{err}"
        );
        let after = Cli::try_parse_args(["app-web", "healthcheck", "--listen", "127.0.0.1:9"]);
        assert!(after.is_ok());
    }

    #[test]
    fn only_the_logging_options_reach_every_command() {
        fn globals(command: &clap::Command, found: &mut BTreeSet<String>) {
            found.extend(
                command
                    .get_arguments()
                    .filter(|arg| arg.is_global_set())
                    .filter_map(|arg| arg.get_long().map(str::to_owned)),
            );
            for sub in command.get_subcommands() {
                globals(sub, found);
            }
        }
        let mut found = BTreeSet::new();
        globals(&Cli::command(), &mut found);
        assert_eq!(
            found,
            BTreeSet::from(["log-filter".into(), "log-format".into()])
        );
    }
}
