use std::time::Duration;

use super::*;

macro_rules! variants {
    ($($(#[$cfg:meta])? $name:ident),* $(,)?) => {
        fn variant_name(e: &Error) -> &'static str {
            match e {
                $($(#[$cfg])? Error::$name { .. } => stringify!($name),)*
            }
        }

        // One push per variant, so that `#[cfg]` can leave some out.
        #[allow(clippy::vec_init_then_push)]
        fn all_variants() -> Vec<&'static str> {
            let mut all = Vec::new();
            $($(#[$cfg])? all.push(stringify!($name));)*
            all
        }
    };
}

variants!(
    Sql,
    Modified,
    Renamed,
    UnknownApplied,
    OutOfOrder,
    Irreversible,
    UnknownRollback,
    UnknownTarget,
    NotMigrated,
    Drift,
    Locked,
    InTransaction,
    TrackingTable,
    ForeignKey,
    NotReversible,
    NoTransactionInGroup,
    InvalidSet,
    Validation,
    Batch,
    Unsupported,
    NotRecordable,
    Adopt,
    #[cfg(feature = "postgres")]
    Postgres,
    #[cfg(feature = "sqlx")]
    Sqlx,
    Database,
    SquashedPartly,
    SquashMismatch,
    NoStoredDown,
);

/// Variants without an example here, and why.
const EXEMPT: &[(&str, &str)] = &[
    (
        "Postgres",
        "the driver's error has no public constructor; its text is tested against a real server (tests/tests/postgres.rs)",
    ),
    (
        "Sqlx",
        "only with the feature `sqlx`, so not in the one snapshot every build compares: `sqlx_display` below",
    ),
];

fn examples() -> Vec<Error> {
    vec![
        Error::Sql {
            direction: Direction::Up,
            version: 3,
            name: "add_index".into(),
            file: "migrations/0003_add_index.sql".into(),
            line: 2,
            statement: "CREATE INDEX i ON missing (x);".into(),
            message: "no such table: main.missing".into(),
            code: None,
            rolled_back: true,
        },
        Error::Batch {
            version: 5,
            name: "fill_email_lower".into(),
            file: "migrations/0005_fill_email_lower.sql".into(),
            line: 3,
            message: "`users` is a WITHOUT ROWID table: there is no rowid to walk in ranges".into(),
            hint: "run this UPDATE without `-- migrate:batch` (in one transaction), or batch it by hand in migrations of its own".into(),
        },
        Error::Modified {
            version: 2,
            name: "add_email".into(),
            file: "migrations/0002_add_email.up.sql".into(),
            applied: "aa".repeat(32),
            current: "bb".repeat(32),
        },
        Error::Renamed {
            version: 2,
            applied_name: "add_mail".into(),
            name: "add_email".into(),
            file: "migrations/0002_add_email.up.sql".into(),
        },
        Error::UnknownApplied {
            versions: vec![(5, "x".into()), (6, "y".into())],
        },
        Error::OutOfOrder {
            version: 3,
            name: "c".into(),
            file: "migrations/0003_c.up.sql".into(),
            latest_applied: 5,
        },
        Error::Irreversible {
            version: 1,
            name: "a".into(),
            file: "migrations/0001_a.sql".into(),
        },
        Error::UnknownRollback {
            version: 9,
            name: "ghost".into(),
        },
        Error::UnknownTarget {
            target: 42,
            known: vec![1, 2, 3],
        },
        Error::Locked {
            waited: Duration::from_secs(60),
        },
        Error::InTransaction,
        Error::TrackingTable {
            table: "_migrations".into(),
            message: "no such column: checksum".into(),
        },
        Error::ForeignKey {
            direction: Direction::Up,
            version: 4,
            name: "rebuild".into(),
            file: "migrations/0004_rebuild.up.sql".into(),
            table: "child".into(),
            parent: "parent".into(),
            rows: 3,
        },
        Error::NotReversible {
            version: 2,
            name: "b".into(),
            file: "migrations/0002_b.down.sql".into(),
            difference: "index `ax` was left behind".into(),
        },
        Error::NoTransactionInGroup {
            version: 2,
            name: "vacuum".into(),
            file: "migrations/0002_vacuum.sql".into(),
        },
        Error::InvalidSet {
            message: "migration 2 `b` comes after 3 `c`; versions must be unique and ascending".into(),
        },
        Error::Unsupported {
            what: "schema `app` (Migrator::schema) on SQLite".into(),
            instead: "SQLite has no schemas in PostgreSQL's sense; leave it unset for SQLite databases",
        },
        Error::NotMigrated {
            table: "_migrations".into(),
        },
        Error::Drift {
            version: Some(3),
            differences: vec![
                "table recruits: column chatname renamed to rocketchat_user (likely: same type and position)".into(),
                "table recruits: column cohort added (TEXT)".into(),
            ],
        },
        Error::Validation {
            problems: vec![Error::InvalidSet {
                message: "two problems are listed one per line".into(),
            }],
        },
        Error::NotRecordable {
            version: 4,
            reason: "migration 3 `c` is pending below it; apply or record it first".into(),
        },
        Error::Adopt {
            tool: "sqlx",
            message: "_sqlx_migrations records migration 20240301000000 as failed (success = false); repair the database with sqlx first".into(),
        },
        Error::Database {
            doing: "reading the tracking table `_migrations`".into(),
            cause: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
                Some("attempt to write a readonly database".into()),
            ),
        },
        Error::SquashedPartly {
            version: 7,
            name: "squashed".into(),
            file: "migrations/0007_squashed.sql".into(),
            first: 1,
            missing: vec![5, 6, 7],
        },
        Error::SquashMismatch {
            version: 7,
            name: "squashed".into(),
            file: "migrations/0007_squashed.sql".into(),
            first: 1,
        },
        Error::NoStoredDown {
            version: 8,
            name: "add_phone".into(),
            newest: 7,
        },
    ]
}

#[test]
fn every_variant_has_a_display_example() {
    let covered: Vec<&str> = examples().iter().map(variant_name).collect();
    let missing: Vec<&str> = all_variants()
        .into_iter()
        .filter(|v| !covered.contains(v) && !EXEMPT.iter().any(|(e, _)| e == v))
        .collect();
    assert!(
        missing.is_empty(),
        "give these variants an example in `examples()`: {missing:?}"
    );
}

#[test]
fn every_variant_display_snapshot() {
    let errors = examples();
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    insta::assert_snapshot!("runtime_errors", text.join("\n"));
    for e in &errors {
        if !matches!(e, Error::Database { .. }) {
            assert!(
                std::error::Error::source(e).is_none(),
                "the cause is in the message, not repeated: {e}"
            );
        }
    }
}

#[cfg(feature = "sqlx")]
#[test]
fn sqlx_display() {
    let e = Error::Sqlx {
        doing: "taking the SQLite handle from the sqlx connection".into(),
        cause: sqlx::Error::WorkerCrashed,
    };
    assert_eq!(
        e.to_string(),
        "taking the SQLite handle from the sqlx connection: attempted to communicate with a crashed background worker; \
         the sqlx connection is no longer usable; open a new one (a pool replaces it: acquire another) and apply again"
    );
    assert!(
        std::error::Error::source(&e).is_none(),
        "the cause is in the message, not repeated"
    );
}
