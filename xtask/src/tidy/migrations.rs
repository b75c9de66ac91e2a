//! Migrations follow expand/contract, so a deploy can always go back one version: while a new
//! app-web starts beside the old one, and after a rollback, the old version runs on the schema
//! the new one migrated to. A migration may add (tables, nullable columns, columns with a
//! default, indexes); it may not take away or change what the previous version reads and
//! writes: drop or rename a table or column, add a NOT NULL column without a default, make a
//! column NOT NULL or change its type. Such a step is the *contract* of an earlier *expand*,
//! released after it, and says so in its first comment lines:
//!
//! ```sql
//! -- expand: notes.text replaces notes.body
//! ALTER TABLE notes ADD COLUMN text text;
//!
//! -- contract: 20270101000004
//! ALTER TABLE notes DROP COLUMN body;
//! ```
//!
//! `contract:` names the version (the file name's number) of the migration it completes, which
//! must be earlier and marked `expand:`. Statements are read with sqlparser's PostgreSQL
//! dialect; a migration it cannot read is refused too, since it cannot be checked.

use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, ColumnOption, ObjectType, Statement,
};
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

/// The statements of `sql` that only a contract step may make, described.
fn contracting(sql: &str) -> Result<Vec<String>, String> {
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|err| format!("sqlparser cannot read it ({err})"))?;
    let mut found = Vec::new();
    for statement in &statements {
        match statement {
            Statement::Drop {
                object_type: ObjectType::Table,
                names,
                ..
            } => found.push(format!(
                "DROP TABLE {}",
                names
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Statement::AlterTable(alter) => {
                for operation in &alter.operations {
                    let table = &alter.name;
                    match operation {
                        AlterTableOperation::DropColumn { column_names, .. } => {
                            for column in column_names {
                                found.push(format!("drops column {table}.{column}"));
                            }
                        }
                        AlterTableOperation::RenameColumn {
                            old_column_name,
                            new_column_name,
                        } => found.push(format!(
                            "renames column {table}.{old_column_name} to {new_column_name}"
                        )),
                        AlterTableOperation::RenameTable { .. } => {
                            found.push(format!("renames table {table}"));
                        }
                        AlterTableOperation::AddColumn { column_def, .. } => {
                            let options: Vec<&ColumnOption> =
                                column_def.options.iter().map(|def| &def.option).collect();
                            let not_null = options
                                .iter()
                                .any(|option| matches!(option, ColumnOption::NotNull));
                            let default = options
                                .iter()
                                .any(|option| matches!(option, ColumnOption::Default(_)));
                            if not_null && !default {
                                found.push(format!(
                                    "adds NOT NULL column {table}.{} without a default",
                                    column_def.name
                                ));
                            }
                        }
                        AlterTableOperation::AlterColumn { column_name, op } => match op {
                            AlterColumnOperation::SetNotNull => found
                                .push(format!("makes column {table}.{column_name} NOT NULL")),
                            AlterColumnOperation::SetDataType { .. } => found
                                .push(format!("changes the type of column {table}.{column_name}")),
                            _ => {}
                        },
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(found)
}

/// Every rule a set of migrations breaks, one line each naming the file and what to do.
fn check(migrations: &[Migration]) -> Vec<String> {
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
                        )
                            && marker(&expand.text) == Marker::Expand => {}
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
    let problems = check(&migrations);
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
        ("ALTER TABLE notes DROP COLUMN body;", "drops column notes.body"),
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
    ];
    for (sql, what) in refused {
        let problems = check(&[base.clone(), migration("2", sql)]);
        assert_eq!(problems.len(), 1, "{sql}: {problems:?}");
        assert!(
            problems[0].contains(what) && problems[0].contains("-- contract: VERSION"),
            "{sql}: {problems:?}"
        );
        eprintln!("refused: {sql}");

        // The same change as the contract step of an earlier expand passes.
        let expand = migration("2", "-- expand: owner and text beside body\nALTER TABLE notes ADD COLUMN text text;");
        let contract = migration("3", &format!("-- contract: 2\n{sql}"));
        let problems = check(&[base.clone(), expand, contract]);
        assert!(problems.is_empty(), "{sql} as a contract step: {problems:?}");
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
        let problems = check(&[base.clone(), migration("2", sql)]);
        assert!(problems.is_empty(), "{sql}: {problems:?}");
        eprintln!("allowed: {sql}");
    }
    // A contract marker must name an earlier expand.
    let contract = |marker: &str| migration("3", &format!("-- contract: {marker}\nDROP TABLE notes;"));
    for (migrations, expected) in [
        (vec![base.clone(), contract("9")], "names no migration"),
        (vec![base.clone(), contract("1")], "not an earlier migration marked"),
        (
            vec![base.clone(), contract("4"), migration("4", "-- expand: later\nSELECT 1;")],
            "not an earlier migration marked",
        ),
    ] {
        let problems = check(&migrations);
        assert!(
            problems.len() == 1 && problems[0].contains(expected),
            "{problems:?}"
        );
    }
    // SQL the parser cannot read cannot be checked, so it is refused.
    let problems = check(&[migration("2", "ALTER TABLE notes FROBNICATE;")]);
    assert!(
        problems.len() == 1 && problems[0].contains("sqlparser cannot read it"),
        "{problems:?}"
    );
}
