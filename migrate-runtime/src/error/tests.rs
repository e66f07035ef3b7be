use super::*;
use rusqlite::ErrorCode as C;

fn sql(code: Option<C>, message: &str) -> Error {
    Error::Sql {
        direction: Direction::Up,
        version: 1,
        name: "a".into(),
        file: "0001_a.sql".into(),
        line: 1,
        statement: "SELECT 1;".into(),
        message: message.into(),
        code,
        rolled_back: true,
    }
}

#[test]
fn one_hint_per_code_in_every_message() {
    let codes = [
        C::DiskFull,
        C::ReadOnly,
        C::PermissionDenied,
        C::NotADatabase,
        C::CannotOpen,
        C::DatabaseBusy,
        C::DatabaseLocked,
        C::DatabaseCorrupt,
    ];
    for code in codes {
        let hint = Error::hint_for(code).unwrap();
        let failed = sql(Some(code), "boom");
        assert!(failed.to_string().ends_with(hint), "{failed}");
        assert_eq!(failed.advice(), Some(hint));
        let db = Error::Database {
            doing: "opening".into(),
            cause: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error { code, extended_code: 0 }, None),
        };
        assert!(db.to_string().ends_with(hint), "{db}");
    }
    assert_eq!(Error::hint_for(C::ConstraintViolation), None);
    assert_eq!(
        sql(None, "no such table: t").advice(),
        Some("fix the statement and run again")
    );
}

#[test]
fn lock_timeout_and_foreign_key_hints_are_written_once() {
    let locked = Error::Locked {
        waited: Duration::from_secs(3),
    };
    assert_eq!(locked.advice(), Error::hint_for(C::DatabaseBusy));
    assert!(locked.to_string().ends_with(locked.advice().unwrap()));
    let fk = Error::ForeignKey {
        direction: Direction::Up,
        version: 1,
        name: "a".into(),
        file: "f".into(),
        table: "child".into(),
        parent: "parent".into(),
        rows: 1,
    };
    assert!(fk.to_string().ends_with(fk.advice().unwrap()), "{fk}");
}

#[test]
fn history_refusals_name_the_api_option_and_the_flag() {
    let one = Error::UnknownApplied {
        versions: vec![(6, "t6".into())],
    };
    let text = one.to_string();
    assert!(text.starts_with("the database has applied a migration this program does not know: 6 `t6`; its file may have been deleted, or this is an older build"), "{text}");
    assert!(!text.contains("newer build —"), "{text}");
    let two = Error::UnknownApplied {
        versions: vec![(5, "a".into()), (6, "b".into())],
    };
    assert!(
        two.to_string().starts_with(
            "the database has applied migrations this program does not know: 5 `a`, 6 `b`; their files may"
        ),
        "{two}"
    );
    let cases = [
        (
            one,
            "`Migrator::allow_unknown(true)`, or `--allow-unknown` on the command line",
        ),
        (
            Error::Modified {
                version: 1,
                name: "a".into(),
                file: "f".into(),
                applied: "x".into(),
                current: "y".into(),
            },
            "`Migrator::allow_modified(true)`, or `--allow-modified` on the command line",
        ),
        (
            Error::Renamed {
                version: 1,
                applied_name: "b".into(),
                name: "a".into(),
                file: "f".into(),
            },
            "`Migrator::allow_modified(true)`, or `--allow-modified` on the command line",
        ),
        (
            Error::OutOfOrder {
                version: 1,
                name: "a".into(),
                file: "f".into(),
                latest_applied: 2,
            },
            "`Migrator::allow_out_of_order(true)`, or `--allow-out-of-order` on the command line",
        ),
    ];
    for (e, option) in cases {
        assert!(e.to_string().ends_with(&format!("({option})")), "{e}");
    }
    let gone = Error::UnknownRollback {
        version: 6,
        name: "t6".into(),
    };
    assert!(
        gone.to_string()
            .contains("Its file may have been deleted, or this is an older build"),
        "{gone}"
    );
}
