//! Migrations follow expand/contract, so a deploy can always go back one version: while a new
//! app-web starts beside the old one, and after a rollback, the old version runs on the schema
//! the new one migrated to. A migration may only add: create tables, indexes, views,
//! sequences, types, functions and extensions, add nullable columns or columns with a default,
//! set a column's default or drop its NOT NULL, comment, and insert rows. Anything else takes
//! away or changes what the previous version reads and writes (dropping or renaming a table
//! or column, adding a NOT NULL column without a default, a constraint, a trigger, making a
//! column NOT NULL or changing its type, ...) and is the *contract* step of an earlier
//! *expand* that a release has already shipped. It says so in its first comment lines:
//!
//! ```sql
//! -- expand: notes.text replaces notes.body
//! ALTER TABLE notes ADD COLUMN text text;
//!
//! -- contract: 20270101000004
//! ALTER TABLE notes DROP COLUMN body;
//! ```
//!
//! `contract:` names the version (the file name's number) of the migration it completes,
//! which must be earlier, marked `expand:` and part of a release tag (`v*`) already, so the
//! two never ship together. Statements are read with sqlparser's PostgreSQL dialect; a
//! migration it cannot read is refused too, since it cannot be checked.

use sqlparser::ast::{AlterColumnOperation, AlterTableOperation, ColumnOption, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::path::project_root;

/// One migration file: its version (the number its name starts with), name and text.
#[derive(Clone)]
struct Migration {
    version: String,
    name: String,
    text: String,
}

/// A version as the number it is (sqlx orders migrations so), for comparing.
fn version_number(version: &str) -> Option<u64> {
    version.parse().ok()
}

/// What a migration's header comments declare.
#[derive(Debug, PartialEq, Eq)]
enum Marker {
    None,
    Expand,
    Contract(String),
}

fn marker(text: &str) -> Marker {
    for line in text.lines() {
        let Some(comment) = line.trim().strip_prefix("--") else {
            break;
        };
        let comment = comment.trim();
        if comment.starts_with("expand:") {
            return Marker::Expand;
        }
        if let Some(version) = comment.strip_prefix("contract:") {
            return Marker::Contract(version.trim().to_owned());
        }
    }
    Marker::None
}

/// The statements of `sql` that only a contract step may make, described: everything that is
/// not on the list of additions.
fn contracting(sql: &str) -> Result<Vec<String>, String> {
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|err| format!("sqlparser cannot read it ({err})"))?;
    let mut found = Vec::new();
    for statement in &statements {
        match statement {
            Statement::CreateTable(_)
            | Statement::CreateIndex(_)
            | Statement::CreateView(_)
            | Statement::CreateSequence { .. }
            | Statement::CreateType { .. }
            | Statement::CreateDomain(_)
            | Statement::CreateFunction(_)
            | Statement::CreateExtension(_)
            | Statement::Comment { .. }
            | Statement::Insert(_) => {}
            Statement::AlterTable(alter) => {
                let table = &alter.name;
                for operation in &alter.operations {
                    if let Some(what) = contracting_operation(&table.to_string(), operation) {
                        found.push(what);
                    }
                }
            }
            other => {
                let text = other.to_string();
                let short: String = text.chars().take(60).collect();
                found.push(format!(
                    "runs `{short}{}` (not one of the additions an expand step may make)",
                    if short.len() < text.len() { "…" } else { "" }
                ));
            }
        }
    }
    Ok(found)
}

/// What one ALTER TABLE operation takes away or changes, if it does.
fn contracting_operation(table: &str, operation: &AlterTableOperation) -> Option<String> {
    match operation {
        AlterTableOperation::AddColumn { column_def, .. } => {
            let options: Vec<&ColumnOption> =
                column_def.options.iter().map(|def| &def.option).collect();
            let not_null = options.iter().any(|option| {
                matches!(option, ColumnOption::NotNull | ColumnOption::PrimaryKey(_))
            });
            let default = options.iter().any(|option| {
                matches!(option, ColumnOption::Default(value) if !value.to_string().eq_ignore_ascii_case("null"))
            });
            let keyed = options
                .iter()
                .any(|option| matches!(option, ColumnOption::PrimaryKey(_)));
            if keyed {
                Some(format!(
                    "adds column {table}.{} as a primary key",
                    column_def.name
                ))
            } else if not_null && !default {
                Some(format!(
                    "adds NOT NULL column {table}.{} without a default",
                    column_def.name
                ))
            } else {
                None
            }
        }
        AlterTableOperation::AlterColumn { column_name, op } => match op {
            AlterColumnOperation::SetDefault { .. } | AlterColumnOperation::DropNotNull => None,
            AlterColumnOperation::SetNotNull => {
                Some(format!("makes column {table}.{column_name} NOT NULL"))
            }
            AlterColumnOperation::SetDataType { .. } => {
                Some(format!("changes the type of column {table}.{column_name}"))
            }
            other => Some(format!("alters column {table}.{column_name} ({other})")),
        },
        AlterTableOperation::DropColumn { column_names, .. } => Some(format!(
            "drops column {}",
            column_names
                .iter()
                .map(|column| format!("{table}.{column}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        AlterTableOperation::RenameColumn {
            old_column_name,
            new_column_name,
        } => Some(format!(
            "renames column {table}.{old_column_name} to {new_column_name}"
        )),
        AlterTableOperation::RenameTable { .. } => Some(format!("renames table {table}")),
        other => Some(format!("alters table {table}: {other}")),
    }
}

/// Every rule a set of migrations breaks, one line each naming the file and what to do.
/// `released` says whether a migration file (by name) is in a release already.
fn check(migrations: &[Migration], released: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut problems = Vec::new();
    for migration in migrations {
        let found = match contracting(&migration.text) {
            Ok(found) => found,
            Err(err) => {
                problems.push(format!("{}: {err}", migration.name));
                continue;
            }
        };
        match marker(&migration.text) {
            Marker::Contract(version) => {
                let expand = migrations.iter().find(|earlier| earlier.version == version);
                match expand {
                    Some(expand)
                        if matches!(
                            (version_number(&expand.version), version_number(&migration.version)),
                            (Some(expand), Some(contract)) if expand < contract
                        ) && marker(&expand.text) == Marker::Expand =>
                    {
                        if !released(&expand.name) {
                            problems.push(format!(
                                "{}: its expand step {} is in no release yet (a `v*` tag): ship the \
                                 expand in one release and this contract in a later one, so the \
                                 version before this one runs on the expanded schema",
                                migration.name, expand.name
                            ));
                        }
                    }
                    Some(expand) => problems.push(format!(
                        "{}: `contract: {version}` names {}, which is not an earlier migration \
                         marked `-- expand: ...`",
                        migration.name, expand.name
                    )),
                    None => problems.push(format!(
                        "{}: `contract: {version}` names no migration; give the version of the \
                         earlier `-- expand: ...` migration it completes",
                        migration.name
                    )),
                }
            }
            Marker::None | Marker::Expand => {
                for what in found {
                    problems.push(format!(
                        "{}: {what}, which the previous version of app-web cannot run on \
                         (during a deploy and after a rollback it does). Expand first (add the \
                         new table or column, nullable or with a default, and have app-web write \
                         both), then in a later release make this the contract step: start the \
                         file with `-- contract: VERSION` naming the expand migration",
                        migration.name
                    ));
                }
            }
        }
    }
    problems
}

/// The migration files any release tag (`v*`) holds.
fn released_migrations() -> std::collections::BTreeSet<String> {
    let git = |args: &[&str]| {
        let output = std::process::Command::new("git")
            .arg("-C")
            .arg(project_root())
            .args(args)
            .output()
            .expect("run git");
        assert!(output.status.success(), "git {args:?} failed");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let mut names = std::collections::BTreeSet::new();
    for tag in git(&["tag", "--list", "v*"]).lines() {
        let listing = git(&["ls-tree", "--name-only", tag, "app-web/migrations/"]);
        names.extend(
            listing
                .lines()
                .filter_map(|path| path.rsplit('/').next())
                .map(str::to_owned),
        );
    }
    names
}

fn load(dir: &std::path::Path) -> Vec<Migration> {
    let mut migrations: Vec<Migration> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("list {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            Migration {
                version: name.split('_').next().unwrap_or_default().to_owned(),
                text: std::fs::read_to_string(&path).unwrap(),
                name,
            }
        })
        .collect();
    migrations.sort_by(|a, b| a.version.cmp(&b.version));
    migrations
}

#[test]
fn migrations_expand_before_they_contract() {
    let migrations = load(&project_root().join("app-web/migrations"));
    assert!(!migrations.is_empty(), "no migrations found");
    let released = released_migrations();
    let problems = check(&migrations, &|name| released.contains(name));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn migration(version: &str, text: &str) -> Migration {
    Migration {
        version: version.to_owned(),
        name: format!("{version}_test.sql"),
        text: text.to_owned(),
    }
}

#[test]
fn each_contracting_change_is_refused_and_its_expand_contract_form_passes() {
    let base = migration(
        "1",
        "CREATE TABLE notes (id uuid PRIMARY KEY, body text NOT NULL, pinned boolean);",
    );
    let refused = [
        ("DROP TABLE notes;", "DROP TABLE notes"),
        (
            "ALTER TABLE notes DROP COLUMN body;",
            "drops column notes.body",
        ),
        (
            "ALTER TABLE notes RENAME COLUMN body TO text;",
            "renames column notes.body to text",
        ),
        ("ALTER TABLE notes RENAME TO memos;", "renames table notes"),
        (
            "ALTER TABLE notes ADD COLUMN owner text NOT NULL;",
            "adds NOT NULL column notes.owner without a default",
        ),
        (
            "ALTER TABLE notes ALTER COLUMN pinned SET NOT NULL;",
            "makes column notes.pinned NOT NULL",
        ),
        (
            "ALTER TABLE notes ALTER COLUMN body TYPE varchar(100);",
            "changes the type of column notes.body",
        ),
        (
            "ALTER TABLE notes ADD COLUMN owner text NOT NULL DEFAULT NULL;",
            "adds NOT NULL column notes.owner without a default",
        ),
        (
            "ALTER TABLE notes ADD COLUMN serial bigint PRIMARY KEY;",
            "adds column notes.serial as a primary key",
        ),
        (
            "ALTER TABLE notes ALTER COLUMN body DROP DEFAULT;",
            "alters column notes.body",
        ),
        (
            "ALTER TABLE notes ADD CONSTRAINT short CHECK (char_length(body) < 10);",
            "alters table notes: ADD CONSTRAINT short",
        ),
        (
            "DROP VIEW IF EXISTS recent CASCADE;",
            "runs `DROP VIEW IF EXISTS recent CASCADE`",
        ),
        ("TRUNCATE notes;", "runs `TRUNCATE"),
        (
            "CREATE TRIGGER t BEFORE INSERT ON notes FOR EACH ROW EXECUTE FUNCTION f();",
            "runs `CREATE TRIGGER t",
        ),
    ];
    for (sql, what) in refused {
        let problems = check(&[base.clone(), migration("2", sql)], &|_| true);
        assert_eq!(problems.len(), 1, "{sql}: {problems:?}");
        assert!(
            problems[0].contains(what) && problems[0].contains("-- contract: VERSION"),
            "{sql}: {problems:?}"
        );
        eprintln!("refused: {sql}");

        // The same change as the contract step of an earlier expand passes.
        let expand = migration(
            "2",
            "-- expand: owner and text beside body\nALTER TABLE notes ADD COLUMN text text;",
        );
        let contract = migration("3", &format!("-- contract: 2\n{sql}"));
        let problems = check(&[base.clone(), expand.clone(), contract.clone()], &|_| true);
        assert!(
            problems.is_empty(),
            "{sql} as a contract step: {problems:?}"
        );
        // ... once a release has shipped the expand; in the same release as its expand, not.
        let problems = check(&[base.clone(), expand, contract], &|name| {
            name != "2_test.sql"
        });
        assert!(
            problems.len() == 1 && problems[0].contains("is in no release yet"),
            "{sql}: {problems:?}"
        );
    }
    // What expand steps do is never refused.
    for sql in [
        "ALTER TABLE notes ADD COLUMN owner text;",
        "ALTER TABLE notes ADD COLUMN archived boolean NOT NULL DEFAULT false;",
        "CREATE TABLE tags (id uuid PRIMARY KEY, name text NOT NULL);",
        "CREATE INDEX notes_pinned ON notes (pinned);",
        "ALTER TABLE notes ALTER COLUMN body SET DEFAULT '';",
        "ALTER TABLE notes ALTER COLUMN pinned DROP NOT NULL;",
    ] {
        let problems = check(&[base.clone(), migration("2", sql)], &|_| true);
        assert!(problems.is_empty(), "{sql}: {problems:?}");
        eprintln!("allowed: {sql}");
    }
    // A contract marker must name an earlier expand.
    let contract =
        |marker: &str| migration("3", &format!("-- contract: {marker}\nDROP TABLE notes;"));
    for (migrations, expected) in [
        (vec![base.clone(), contract("9")], "names no migration"),
        (
            vec![base.clone(), contract("1")],
            "not an earlier migration marked",
        ),
        (
            vec![
                base.clone(),
                contract("4"),
                migration("4", "-- expand: later\nCREATE INDEX later ON notes (body);"),
            ],
            "not an earlier migration marked",
        ),
    ] {
        let problems = check(&migrations, &|_| true);
        assert!(
            problems.len() == 1 && problems[0].contains(expected),
            "{problems:?}"
        );
    }
    // SQL the parser cannot read cannot be checked, so it is refused.
    let problems = check(&[migration("2", "ALTER TABLE notes FROBNICATE;")], &|_| {
        true
    });
    assert!(
        problems.len() == 1 && problems[0].contains("sqlparser cannot read it"),
        "{problems:?}"
    );
}
