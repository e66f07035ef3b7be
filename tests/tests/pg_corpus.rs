//! A corpus of 34 PostgreSQL migrations written the way real projects
//! write them (`tests/pg_corpus`), through the real CLI: checked
//! (without a server, then replayed on one), applied, rolled back to zero,
//! applied again, and the schema compared with a `psql` replay of the same
//! files (`pg_dump --schema-only` of both).

use std::path::{Path, PathBuf};
use std::process::Command;

use tests::pg_database;

fn bindir() -> PathBuf {
    let out = Command::new("pg_config").arg("--bindir").output().expect("pg_config");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The corpus in a package whose config says `backend = "postgres"`.
fn package() -> tests::Package {
    let pkg = tests::Package::bare();
    let ws = tests::workspace_dir();
    pkg.write(
        "Cargo.toml",
        format!(
            "[package]\nname = \"corpus\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n[workspace]\n\n\
             [dependencies]\nmigrate-runtime = {{ path = {:?}, default-features = false, features = [\"postgres\"] }}\n\n\
             [package.metadata.migrate]\nbackend = \"postgres\"\n",
            ws.join("migrate-runtime").display().to_string()
        ),
    );
    pkg.write("src/main.rs", "fn main() {}\n");
    let corpus = ws.join("tests/pg_corpus/migrations");
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        pkg.write(&format!("migrations/{name}"), std::fs::read(&path).unwrap());
    }
    pkg
}

fn cli(pkg: &tests::Package, url: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = pkg.migrate();
    cmd.args(args).env("DATABASE_URL", url);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "cargo migrate {args:?} failed:\n{stderr}");
    stderr
}

/// The schema of the database at `url` as `pg_dump` writes it, without our
/// tracking and head tables, the head's trigger function, and the dump's
/// per-run lines.
fn dump(url: &str) -> String {
    let out = Command::new(bindir().join("pg_dump"))
        .args([
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--exclude-table=_migrations",
            "--exclude-table=_migrations_head",
        ])
        .arg(url)
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    // pg_dump has no option to leave a function out: drop its entry, from
    // its header comment to the next one.
    let ours = "--\n-- Name: _migrations_head_clear(); Type: FUNCTION";
    let text = match text.find(ours) {
        Some(start) => {
            let rest = &text[start + ours.len()..];
            let end = rest
                .find("--\n-- Name: ")
                .map_or(text.len(), |e| start + ours.len() + e);
            format!("{}{}", &text[..start], &text[end..])
        }
        None => text,
    };
    text.lines()
        // pg_dump 15.14+ writes a random key for psql's \restrict mode.
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn up_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".down.sql"))
        .collect();
    files.sort();
    files
}

#[test]
fn pg_a_corpus_of_real_world_migrations_applies_rolls_back_to_zero_applies_again_and_matches_a_psql_replay() {
    let Some(db) = pg_database!() else { return };
    let Some(replay) = pg_database!() else { return };
    let Some(check) = pg_database!() else { return };
    let pkg = package();
    let files = up_files(&pkg.path().join("migrations"));
    assert_eq!(files.len(), 34);

    // The server-less checks, then every migration and round trip replayed
    // on the server (in a scratch database the check creates and drops).
    cli(&pkg, &db.url, &["check"], &[]);
    let checked = cli(&pkg, &db.url, &["check"], &[("MIGRATE_CHECK_DATABASE_URL", &check.url)]);
    assert!(!checked.contains("error"), "{checked}");

    let out = cli(&pkg, &db.url, &["up"], &[]);
    assert!(out.contains("applied 34 migrations"), "{out}");
    let first = dump(&db.url);
    assert!(first.contains("CREATE TABLE public.room_bookings"), "{first}");

    let out = cli(&pkg, &db.url, &["down", "--to", "0"], &[]);
    assert!(out.contains("rolled back 34 migrations"), "{out}");
    let mut client = db.client();
    let left: Vec<String> = client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
               AND c.relname NOT LIKE '\\_migrations%'
             UNION ALL SELECT t.typname::text FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE t.typtype IN ('e', 'd') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             UNION ALL SELECT extname::text FROM pg_extension WHERE extname <> 'plpgsql'
             UNION ALL SELECT nspname::text FROM pg_namespace WHERE nspname = 'reporting'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(left.is_empty(), "rolled back to zero, yet left: {left:?}");

    let out = cli(&pkg, &db.url, &["up"], &[]);
    assert!(out.contains("applied 34 migrations"), "{out}");
    let again = dump(&db.url);
    assert_eq!(first, again, "up, down to zero, up again: the same schema");

    for file in &files {
        let out = Command::new(bindir().join("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &replay.url, "-f"])
            .arg(file)
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql -f {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let by_psql = dump(&replay.url);
    assert_eq!(
        again, by_psql,
        "our runner and a psql replay of the same files make the same schema"
    );

    // The data the corpus writes is there too.
    let name: String = client.query_one("SELECT name FROM accounts", &[]).unwrap().get(0);
    assert_eq!(name, "Acme's demo; with a backslash \\");
}
