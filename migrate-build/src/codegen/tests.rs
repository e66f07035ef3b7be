use super::*;
use crate::scan::SqlFile;

fn found(version: u64, name: &str, down: bool) -> Found {
    let file = |suffix: &str| SqlFile {
        path: format!("/p/migrations/{version:04}_{name}{suffix}").into(),
        display: format!("migrations/{version:04}_{name}{suffix}"),
        text: "CREATE TABLE t (x);".into(),
        no_transaction: false,
        phase: None,
        contract_of: None,
        batch: None,
    };
    Found {
        version,
        name: name.to_owned(),
        up: file(if down { ".up.sql" } else { ".sql" }),
        down: down.then(|| file(".down.sql")),
    }
}

fn input_of(migrations: &[Found]) -> Input<'_> {
    Input {
        migrations,
        tables: &[],
        ages: &EMPTY_AGES,
        tracking_table: "_migrations",
        package_dir: Path::new("/p"),
        dir_display: "migrations",
        runtime_path: DEFAULT_RUNTIME_PATH,
        backend: Backend::Sqlite,
        schema: None,
        lock: None,
        lock_timeout: None,
        fingerprints: &[],
        drift: Drift::Error,
        ignore: &[],
        imported: &[],
        store_down: false,
    }
}

static EMPTY_AGES: std::sync::LazyLock<Ages> = std::sync::LazyLock::new(Ages::default);

fn generate_with(runtime_path: &str, migrations: &[Found]) -> String {
    generate(&Input {
        migrations,
        tables: &[],
        ages: &Ages::default(),
        tracking_table: "_migrations",
        package_dir: Path::new("/p"),
        dir_display: "migrations",
        runtime_path,
        backend: Backend::Sqlite,
        schema: None,
        lock: None,
        lock_timeout: None,
        fingerprints: &[],
        drift: Drift::Error,
        ignore: &[],
        store_down: false,
        imported: &[],
    })
}

#[test]
fn postgres_functions_and_the_configs_migrator_settings() {
    let ms = [found(1, "a", true)];
    let code = generate(&Input {
        migrations: &ms,
        tables: &[],
        ages: &Ages::default(),
        tracking_table: "_migrations",
        package_dir: Path::new("/p"),
        dir_display: "migrations",
        runtime_path: DEFAULT_RUNTIME_PATH,
        backend: Backend::Postgres,
        schema: Some("app"),
        lock: Some(Lock::Table),
        lock_timeout: Some(Duration::from_secs(5)),
        fingerprints: &[],
        drift: Drift::Error,
        ignore: &[],
        store_down: false,
        imported: &[],
    });
    assert!(
        code.contains("conn: &mut ::migrate_runtime::postgres::Client"),
        "{code}"
    );
    assert!(code.contains("migrator().apply_postgres(conn)"), "{code}");
    assert!(
        code.contains("migrator().migrate_to_postgres(conn, target.number())"),
        "{code}"
    );
    assert!(!code.contains("rusqlite"), "{code}");
    assert!(
        code.contains("pub fn test_db(url: &str) -> ::migrate_runtime::TestDatabase {\n    match migrator().test_db_postgres(url) {"),
        "{code}"
    );
    // rustfmt-clean (two migrations: rustfmt puts a one-element array on
    // one line, which the generator does not do).
    let two = [found(1, "a", true), found(2, "b", false)];
    let pg = generate(&Input {
        migrations: &two,
        backend: Backend::Postgres,
        ..input_of(&two)
    });
    assert_ne!(rustfmt_clean(&pg), Some(false), "{pg}");
    assert!(
        code.contains(
            "::migrate_runtime::Migrator::new(MIGRATIONS)\n        .table(TRACKING_TABLE)\n        .schema(\"app\")\n        .lock(::migrate_runtime::Lock::Table)\n        .lock_timeout(::core::time::Duration::from_millis(5000))"
        ),
        "{code}"
    );
    // SQLite without settings: the table, and the history's digest,
    // computed here as the runtime computes it.
    let plain = generate_with(DEFAULT_RUNTIME_PATH, &ms);
    let runtime_migrations: Vec<migrate_runtime::Migration> = ms.iter().map(|m| m.to_migration()).collect();
    let digest = u128::from_be_bytes(migrate_runtime::digest_of(
        runtime_migrations.iter().map(|m| (m.version(), m.name(), m.checksum())),
    ));
    assert!(
        plain.contains(&format!(
            "::migrate_runtime::Migrator::new(MIGRATIONS)\n        .table(TRACKING_TABLE)\n        .__code_digest(0x{digest:032x})\n"
        )),
        "{plain}"
    );
    assert!(plain.contains("migrator().apply(conn)"), "{plain}");
    assert!(
        plain.contains(
            "pub fn test_db() -> ::migrate_runtime::rusqlite::Connection {\n    match migrator().test_db() {"
        ),
        "{plain}"
    );
}

#[test]
fn renamed_runtime_path_is_used_everywhere() {
    let ms = [found(1, "a", true), found(2, "b", false)];
    let code = generate_with("::rt", &ms);
    assert!(!code.contains("migrate_runtime"), "{code}");
    assert!(
        code.contains("pub static MIGRATIONS: &[::rt::Migration] = &["),
        "{code}"
    );
    assert!(code.contains("    ::rt::__migration! {"), "{code}");
    // The shorter path fits rustfmt's line: the signature is one line.
    assert!(
        code.contains("pub fn apply(conn: &mut ::rt::rusqlite::Connection) -> ::rt::Result<::rt::Report> {"),
        "{code}"
    );
    let default = generate_with(DEFAULT_RUNTIME_PATH, &ms);
    assert!(
        default.contains(
            "pub fn apply(\n    conn: &mut ::migrate_runtime::rusqlite::Connection,\n) -> ::migrate_runtime::Result<"
        ),
        "{default}"
    );
}

#[test]
fn schema_names_have_a_quoted_form() {
    use migrate_runtime::schema::Column;
    let column = |name: &str| Column::new(name, "");
    let tables = [Table::new(
        "user accounts",
        vec![column("full name"), column("say \"hi\"")],
    )];
    let code = schema(&tables, &Ages::default());
    assert!(
        code.contains("            pub const TABLE: &str = \"\\\"user accounts\\\"\";\n"),
        "{code}"
    );
    assert!(
        code.contains("            pub const FULL_NAME: &str = \"\\\"full name\\\"\";\n"),
        "{code}"
    );
    assert!(
        code.contains("            pub const SAY_HI: &str = \"\\\"say \\\"\\\"hi\\\"\\\"\\\"\";\n"),
        "{code}"
    );
    assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
}

/// `rustfmt --check` with its default settings on `code`, in a
/// directory outside the workspace (whose rustfmt.toml would apply);
/// `None` when rustfmt is not installed.
fn rustfmt_clean(code: &str) -> Option<bool> {
    let dir = std::env::temp_dir().join(format!("migrate-build-codegen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("m{}.rs", code.len()));
    std::fs::write(&file, code).unwrap();
    let status = std::process::Command::new("rustfmt")
        .args(["--edition", "2024", "--check", "--config", "max_width=100"])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .status();
    let _ = std::fs::remove_file(&file);
    status.ok().map(|s| s.success())
}

#[test]
fn fingerprints_drift_and_ignore_are_generated_rustfmt_clean() {
    let ms = [found(1, "a", true), found(2, "b", false)];
    let fingerprints = [(1, "a".repeat(64)), (2, "b".repeat(64))];
    let short: Vec<String> = (0..30).map(|i| format!("t{i}_*")).collect();
    let long: Vec<String> = vec!["fts_*".into(), "a_rather_long_table_name_*".into(), "x\"y".into()];
    let cases: [(&str, Drift, &[String]); 5] = [
        ("::migrate_runtime", Drift::Error, &[]),
        ("::migrate_runtime", Drift::Warn, &["fts_*".to_owned()]),
        ("::rt", Drift::Off, &short),
        ("::migrate_runtime", Drift::Error, &long),
        ("::rt", Drift::Error, &short[..3]),
    ];
    for (rt, drift, ignore) in cases {
        let code = generate(&Input {
            migrations: &ms,
            tables: &[],
            ages: &Ages::default(),
            tracking_table: "_migrations",
            package_dir: Path::new("/p"),
            dir_display: "migrations",
            runtime_path: rt,
            backend: Backend::Sqlite,
            schema: None,
            lock: None,
            lock_timeout: None,
            fingerprints: &fingerprints,
            drift,
            ignore,
            store_down: false,
            imported: &[],
        });
        assert!(
            code.contains(&format!("        schema: \"{}\",\n    }},", "b".repeat(64))),
            "{code}"
        );
        assert!(
            code.contains(&format!(
                "        down_no_transaction: false,\n        schema: \"{}\",",
                "a".repeat(64)
            )),
            "{code}"
        );
        match drift {
            Drift::Error => assert!(!code.contains(".drift("), "{code}"),
            _ => assert!(
                code.contains(&format!(".drift({rt}::DriftPolicy::{drift:?})")),
                "{code}"
            ),
        }
        assert_eq!(code.contains(".ignore(&["), !ignore.is_empty(), "{code}");
        assert!(!code.contains("x\"y"), "escaped: {code}");
        if let Some(clean) = rustfmt_clean(&code) {
            assert!(clean, "rustfmt would reformat:\n{code}");
        }
    }
}

/// The array layout at every length around the line breaks.
#[test]
fn ignore_lists_of_every_length_are_rustfmt_clean() {
    let mut lists: Vec<Vec<String>> = Vec::new();
    for n in 1..=16 {
        lists.push((0..n).map(|i| format!("t{i}_*")).collect());
        lists.push((0..n).map(|i| format!("c{i}_{}", "x".repeat(i % 5))).collect());
        lists.push((0..n).map(|i| format!("cache_table_{i}_*")).collect());
    }
    let ms = [found(1, "a", false)];
    let code: String = lists
        .iter()
        .map(|ignore| {
            migrator_body(&Input {
                migrations: &ms,
                tables: &[],
                ages: &Ages::default(),
                tracking_table: "_migrations",
                package_dir: Path::new("/p"),
                dir_display: "migrations",
                runtime_path: DEFAULT_RUNTIME_PATH,
                backend: Backend::Sqlite,
                schema: None,
                lock: None,
                lock_timeout: None,
                fingerprints: &[],
                drift: Drift::Error,
                ignore,
                store_down: false,
                imported: &[],
            })
        })
        .enumerate()
        .map(|(i, body)| format!("pub fn m{i}() -> ::migrate_runtime::Migrator<'static> {{\n    {body}\n}}\n"))
        .collect::<Vec<_>>()
        .join("\n");
    if let Some(clean) = rustfmt_clean(&code) {
        assert!(clean, "rustfmt would reformat:\n{code}");
    }
}

#[test]
fn runtime_paths_are_paths() {
    for ok in ["::migrate_runtime", "rt", "crate::deps::rt", "::_r2"] {
        assert!(is_runtime_path(ok), "{ok}");
    }
    for bad in ["", "::", "rt::", "a b", "::rt;fn x(){}", "1rt", "_", "a::::b", "rt\n"] {
        assert!(!is_runtime_path(bad), "{bad:?}");
    }
}

#[test]
fn phases_are_carried_only_where_set() {
    let plain = [found(1, "users", false), found(2, "add_full_name", true)];
    let before = generate(&input_of(&plain));
    assert!(!before.contains("phase:"), "{before}");
    let mut phased = plain.to_vec();
    phased[1].up.phase = Some(migrate_runtime::Phase::Expand);
    phased.push(found(3, "drop_name", false));
    phased[2].up.phase = Some(migrate_runtime::Phase::Contract);
    phased[2].up.contract_of = Some((2, 2));
    let code = generate(&input_of(&phased));
    assert!(
        code.contains("        down_no_transaction: false,\n        phase: Expand,\n    },"),
        "{code}"
    );
    assert!(
        code.contains("        up_no_transaction: false,\n        phase: Contract,\n        contract_of: 2,\n    },"),
        "{code}"
    );
    // The first migration's code is the same as without phases.
    let first = |code: &str| {
        code[code.find("__migration!").unwrap()..]
            .split("},")
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(first(&before), first(&code));
    if let Some(clean) = rustfmt_clean(&code) {
        assert!(clean, "rustfmt would reformat:\n{code}");
    }
}
