//! Drift on PostgreSQL through the real `cargo migrate` binary, against a
//! real server: `diff`, `--format json`, `--sql`, `--emit`, `up`'s drift
//! check, `status`, `check`, `schema` and `schema --write`.

use migrate_runtime::Migrator;
use migrate_runtime::model::Model;
use migrate_runtime::postgres::Config;
use tests::pg_database;

use super::pg_drift::{HAND_CHANGES, filter, rows, rows_of, story};

fn cli(pkg: &tests::Package, url: &str, args: &[&str]) -> (i32, String, String) {
    cli_env(pkg, url, args, &[])
}

fn cli_env(pkg: &tests::Package, url: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = pkg.migrate();
    cmd.args(args)
        .env("DATABASE_URL", url)
        .env_remove("MIGRATE_CHECK_DATABASE_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A package with the S3 story's migrations (files), for PostgreSQL.
fn story_package(extra_config: &str) -> tests::Package {
    let pkg = tests::Package::new();
    let manifest = pkg.read("Cargo.toml");
    pkg.write(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.migrate]\nbackend = \"postgres\"\n{extra_config}"),
    );
    for m in story() {
        pkg.write(m.up().file(), m.up().sql());
    }
    pkg
}

#[test]
fn pg_cli_diff_emit_and_diff_again_adopt_the_s3_hand_changes_without_touching_rows() {
    let Some(db) = pg_database!() else { return };
    let pkg = story_package("");
    let url = db.url.as_str();
    let (code, _, err) = cli(&pkg, url, &["up"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(&pkg, url, &["diff"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(
        err.contains("no drift: its schema is what its applied migrations (up to 0003) make"),
        "{err}"
    );

    let mut client = db.client();
    client.batch_execute(HAND_CHANGES).unwrap();
    let before = rows(&mut client);
    let (code, out, err) = cli(&pkg, url, &["diff"]);
    assert_eq!(code, 1, "drift is exit 1: {out}{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>()[..3],
        [
            "table recruits: column chatname renamed to rocketchat_user (likely: same type and position)",
            "table recruits: column id_number removed",
            "table recruits: column cohort added (TEXT DEFAULT 'C25 Data Eng'::text)",
        ],
        "{out}"
    );
    assert!(
        err.contains("adopt them with `cargo migrate diff --emit NAME`"),
        "{err}"
    );
    let (code, out, _) = cli(&pkg, url, &["diff", "--format", "json"]);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["drift"], true);
    assert_eq!(json["version"], 3);
    assert_eq!(json["differences"][0]["change"], "renamed");
    assert_eq!(json["differences"][0]["detail"], "rocketchat_user");

    // `status` shows the drift when it may replay on a check server.
    let (_, _, err) = cli_env(&pkg, url, &["status"], &[("MIGRATE_CHECK_DATABASE_URL", url)]);
    assert!(err.contains("drift: table recruits: column id_number removed"), "{err}");
    let (_, _, err) = cli(&pkg, url, &["status"]);
    assert!(!err.contains("drift:"), "no replay without a check server: {err}");

    // --sql prints the way back and runs nothing.
    let (code, out, err) = cli(&pkg, url, &["diff", "--sql"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        out.contains("ALTER TABLE recruits RENAME COLUMN rocketchat_user TO chatname;"),
        "{out}"
    );
    assert!(
        out.contains("-- ALTER TABLE recruits DROP COLUMN cohort;"),
        "held back: {out}"
    );
    assert!(
        out.contains("\nALTER TABLE recruits ADD COLUMN id_number text;"),
        "{out}"
    );
    assert_eq!(rows(&mut client), before, "--sql runs nothing");
    // Run on a copy, it brings the schema back.
    let server: Config = db.url.parse().unwrap();
    let mut copy = Migrator::new(&story()).replay_postgres(&server, &[1, 2, 3]).unwrap();
    copy.client().batch_execute(HAND_CHANGES).unwrap();
    copy.client().batch_execute(&out).unwrap();
    let (_, all, _) = cli(&pkg, url, &["diff", "--sql", "--allow-drop"]);
    let mut copy2 = Migrator::new(&story()).replay_postgres(&server, &[1, 2, 3]).unwrap();
    copy2.client().batch_execute(HAND_CHANGES).unwrap();
    copy2.client().batch_execute(&all).unwrap();
    let held = Model::read_postgres(copy.client(), None, &filter()).unwrap();
    let back = Model::read_postgres(copy2.client(), None, &filter()).unwrap();
    let mut fresh = Migrator::new(&story()).replay_postgres(&server, &[1, 2, 3]).unwrap();
    let migrations_schema = Model::read_postgres(fresh.client(), None, &filter()).unwrap();
    assert_eq!(
        migrations_schema.diff(&back),
        [],
        "with --allow-drop, --sql restores the migrations' schema"
    );
    let left: Vec<String> = migrations_schema.diff(&held).iter().map(ToString::to_string).collect();
    assert_eq!(
        left,
        ["table recruits: column cohort added (TEXT DEFAULT 'C25 Data Eng'::text)"],
        "held back: kept"
    );
    drop((copy, copy2, fresh));

    // The migrations' drift check refuses `up`, and --allow-drift goes on.
    let (code, _, err) = cli(&pkg, url, &["up"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("is not what its applied migrations (up to 0003) make (drift)"),
        "{err}"
    );
    assert!(err.contains("--allow-drift"), "{err}");
    let (code, _, err) = cli(&pkg, url, &["up", "--allow-drift"]);
    assert_eq!(code, 0, "{err}");

    // --emit adopts them: files, recorded as applied, verified.
    let (code, out, err) = cli(&pkg, url, &["diff", "--emit", "adopt hand changes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "migrations/0004_adopt_hand_changes.up.sql\nmigrations/0004_adopt_hand_changes.down.sql\n"
    );
    let up_sql = pkg.read("migrations/0004_adopt_hand_changes.up.sql");
    assert!(
        up_sql.contains("\nALTER TABLE recruits RENAME COLUMN chatname TO rocketchat_user;"),
        "{up_sql}"
    );
    assert!(
        up_sql.contains("\nALTER TABLE recruits ADD COLUMN cohort text DEFAULT 'C25 Data Eng'::text;"),
        "{up_sql}"
    );
    assert!(
        up_sql.contains("-- ALTER TABLE recruits DROP COLUMN id_number;"),
        "{up_sql}"
    );
    assert!(err.contains("held back"), "{err}");
    let (code, _, err) = cli(&pkg, url, &["diff", "--emit", "adopt_hand_changes"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("a migration called `adopt_hand_changes` exists already"),
        "{err}"
    );
    let recorded: Vec<i64> = client
        .query("SELECT version FROM _migrations ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(recorded, [1, 2, 3, 4]);
    // Then diff reports only the held-back drops.
    let (code, out, err) = cli(&pkg, url, &["diff"]);
    assert_eq!(code, 1, "{err}");
    for line in out.lines() {
        assert!(line.ends_with(" removed"), "only held-back drops are left: {out}");
    }
    assert!(out.contains("table recruits: column id_number removed"), "{out}");
    // `cargo migrate check` passes with the new files, and `up` starts clean.
    let (code, _, err) = cli(&pkg, url, &["check"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&pkg, url, &["up"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rows(&mut client), before, "diff, --sql and --emit change no row");
}

#[test]
fn pg_cli_schema_prints_live_and_replayed_schemas_and_writes_the_snapshot() {
    let Some(db) = pg_database!() else { return };
    let pkg = story_package("snapshot = \"migrations/schema.sql\"\n");
    let url = db.url.as_str();
    let (code, _, err) = cli(&pkg, url, &["up"]);
    assert_eq!(code, 0, "{err}");
    let (code, live_sql, err) = cli(&pkg, url, &["schema", "--database", url]);
    assert_eq!(code, 0, "{err}");
    assert!(
        live_sql.contains("CREATE TABLE recruits (\n    id bigint GENERATED BY DEFAULT AS IDENTITY NOT NULL,"),
        "{live_sql}"
    );
    assert!(!live_sql.contains("_migrations"), "{live_sql}");
    let (code, json, _) = cli(&pkg, url, &["schema", "--database", url, "--format", "json"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["tables"]["recruits"]["columns"][1]["name"], "name");
    let (code, mermaid, _) = cli(&pkg, url, &["schema", "--database", url, "--format", "mermaid"]);
    assert_eq!(code, 0);
    assert!(mermaid.contains("recruits ||--o{ notes : \"recruit_id\""), "{mermaid}");
    // Without --database: the migrations' schema, replayed on a server.
    let (code, _, err) = cli_env(&pkg, url, &["schema"], &[("DATABASE_URL", "")]);
    assert_eq!(code, 1);
    assert!(err.contains("known only by running them on a server"), "{err}");
    assert!(err.contains("MIGRATE_CHECK_DATABASE_URL"), "{err}");
    let check = [("MIGRATE_CHECK_DATABASE_URL", url)];
    let (code, replayed_sql, err) = cli_env(&pkg, url, &["schema"], &check);
    assert_eq!(code, 0, "{err}");
    assert_eq!(replayed_sql, live_sql, "the replay's schema is the live one's");
    // The snapshot: written from a server, checked by the build's check.
    let (code, _, err) = cli_env(&pkg, url, &["check"], &check);
    assert_eq!(code, 1);
    assert!(err.contains("schema snapshot is missing"), "{err}");
    let (code, _, err) = cli_env(&pkg, url, &["schema", "--write"], &check);
    assert_eq!(code, 0, "{err}");
    assert_eq!(pkg.read("migrations/schema.sql"), live_sql);
    let (code, _, err) = cli_env(&pkg, url, &["check"], &check);
    assert_eq!(code, 0, "{err}");
    pkg.write(
        "migrations/0004_more.sql",
        "ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false;\n",
    );
    let (code, _, err) = cli_env(&pkg, url, &["check"], &check);
    assert_eq!(code, 1);
    assert!(err.contains("schema snapshot is stale"), "{err}");
    // Without a server the snapshot cannot be checked (nor is it refused).
    let (code, _, err) = cli(&pkg, url, &["check"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn pg_cli_emit_adopts_every_kind_of_hand_change_and_the_down_undoes_it() {
    let Some(db) = pg_database!() else { return };
    let pkg = story_package("");
    let url = db.url.as_str();
    let (code, _, err) = cli(&pkg, url, &["up"]);
    assert_eq!(code, 0, "{err}");
    let mut client = db.client();
    let before = rows(&mut client);
    client
        .batch_execute(
            "DROP INDEX recruits_name;\n\
             CREATE INDEX recruits_chatname ON recruits (chatname) WHERE chatname <> '';\n\
             CREATE TRIGGER recruits_touch BEFORE UPDATE ON recruits FOR EACH ROW EXECUTE FUNCTION touch();\n\
             CREATE TABLE cohorts (id int PRIMARY KEY, name text UNIQUE, CHECK (id > 0));\n\
             ALTER TABLE recruits ADD COLUMN cohort_id int REFERENCES cohorts (id) ON DELETE SET NULL;\n\
             ALTER TABLE notes ALTER COLUMN body TYPE varchar(200), ALTER COLUMN body SET NOT NULL, ALTER COLUMN body SET DEFAULT '';\n\
             ALTER TABLE recruits ALTER COLUMN name DROP NOT NULL;\n\
             ALTER TABLE recruits DROP CONSTRAINT recruits_score_check, ADD CONSTRAINT score_small CHECK (score < 100);\n\
             CREATE OR REPLACE VIEW recruit_names AS SELECT id, name, chatname FROM recruits WHERE chatname IS NOT NULL;\n\
             CREATE SEQUENCE tickets START 100;\n\
             ALTER TYPE mood ADD VALUE 'meh';",
        )
        .unwrap();
    let (code, out, err) = cli(&pkg, url, &["diff"]);
    assert_eq!(code, 1, "{err}");
    for expected in [
        "table recruits: index recruits_name removed",
        "table recruits: index recruits_chatname added",
        "table recruits: trigger recruits_touch added",
        "table cohorts added (2 columns)",
        "table recruits: column cohort_id added (INTEGER)",
        "table recruits: foreign key (cohort_id) REFERENCES cohorts(id) ON DELETE SET NULL added",
        "table notes: column body changed: type text → character varying(200), NOT NULL added, default none → ''::character varying",
        "table recruits: column name changed: NOT NULL removed",
        "view recruit_names changed",
        "sequence tickets added",
        "type mood changed",
    ] {
        assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
    }
    // The enum's new value is written as ALTER TYPE … ADD VALUE; its down
    // rebuilds the type (there is no DROP VALUE).
    let (code, _, err) = cli(&pkg, url, &["diff", "--emit", "adopt", "--allow-drop"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(&pkg, url, &["diff"]);
    assert_eq!((code, out.as_str()), (0, ""), "clean after --emit --allow-drop: {err}");
    assert_eq!(rows(&mut client).len(), before.len());
    let up = pkg.read("migrations/0004_adopt.up.sql");
    assert!(up.contains("ALTER TYPE mood ADD VALUE 'meh' AFTER 'bad';"), "{up}");
    let down = pkg.read("migrations/0004_adopt.down.sql");
    assert!(down.contains("ALTER TYPE mood RENAME TO mood__old;"), "{down}");
    // The written pair passes the round trip on a server (up, down, up).
    let (code, _, err) = cli_env(&pkg, url, &["check"], &[("MIGRATE_CHECK_DATABASE_URL", url)]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn pg_cli_diff_and_emit_in_a_configured_schema() {
    let Some(db) = pg_database!() else { return };
    let pkg = story_package("schema = \"app\"\n");
    let url = db.url.as_str();
    let (code, _, err) = cli(&pkg, url, &["up"]);
    assert_eq!(code, 0, "{err}");
    let mut client = db.client();
    // A table in another schema is not this package's business.
    client
        .batch_execute("ALTER TABLE app.recruits ADD COLUMN cohort text; CREATE TABLE public.unrelated (x int);")
        .unwrap();
    let (code, out, err) = cli(&pkg, url, &["diff"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(out, "table recruits: column cohort added (TEXT)\n");
    let (_, out, _) = cli(&pkg, url, &["diff", "--sql", "--allow-drop"]);
    assert!(out.contains("\nSET search_path TO app, public;\n"), "{out}");
    assert!(out.contains("\nALTER TABLE recruits DROP COLUMN cohort;"), "{out}");
    let (code, _, err) = cli(&pkg, url, &["diff", "--emit", "adopt"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(&pkg, url, &["diff"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let (code, _, err) = cli(&pkg, url, &["up"]);
    assert_eq!(code, 0, "{err}");
    let recorded: i64 = client
        .query_one("SELECT max(version) FROM app._migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(recorded, 4);
}

/// A PostgreSQL app whose code names columns through the generated
/// `schema` module: the constants come from the committed snapshot, so a
/// laptop builds without a server; a build with a check server proves the
/// snapshot fresh; a column a migration drops stops the app compiling.
#[test]
fn pg_schema_constants_come_from_the_committed_snapshot_without_a_server() {
    let Some(db) = pg_database!() else { return };
    let pkg = tests::Package::named("pg-snapshot-constants");
    let ws = tests::workspace_dir();
    pkg.write(
        "Cargo.toml",
        format!(
            "[package]\nname = \"testbox-pg-snapshot-constants\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [workspace]\n\n[dependencies]\n\
             migrate-runtime = {{ path = {:?}, default-features = false, features = [\"postgres\"] }}\n\n\
             [build-dependencies]\nmigrate-build = {{ path = {:?}, features = [\"postgres\"] }}\n\n\
             [package.metadata.migrate]\nbackend = \"postgres\"\nsnapshot = \"migrations/schema.sql\"\n",
            ws.join("migrate-runtime").display().to_string(),
            ws.join("migrate-build").display().to_string(),
        ),
    );
    pkg.write(
        "src/main.rs",
        "mod migrations {\n    include!(concat!(env!(\"OUT_DIR\"), \"/migrations.rs\"));\n}\n\n\
         use migrations::schema::users;\n\n\
         fn main() {\n    println!(\"SELECT {}, {} FROM {}\", users::sql::FULL_NAME, users::EMAIL, users::TABLE);\n}\n",
    );
    pkg.write(
        "migrations/0001_users.up.sql",
        "CREATE TABLE users (\n    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n    email text NOT NULL,\n    \"Full Name\" character varying(80),\n    tags text[] NOT NULL DEFAULT '{}'\n);\n",
    );
    pkg.write("migrations/0001_users.down.sql", "DROP TABLE users;\n");
    let server = db.server().url_for("postgres");
    let check = [("MIGRATE_CHECK_DATABASE_URL", server.as_str())];
    let build = |env: &[(&str, &str)]| {
        let out = pkg.cargo_env(&["build", "--quiet"], env);
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };

    // No snapshot yet and no server: the build says how to write it.
    let (ok, stderr) = build(&[]);
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("migrations/schema.sql: the schema snapshot is missing; the generated `schema` module"),
        "{stderr}"
    );
    assert!(stderr.contains("cargo migrate schema --write"), "{stderr}");

    // Written from a server's replay, it builds the constants without one.
    let (code, _, err) = cli_env(&pkg, &db.url, &["schema", "--write"], &check);
    assert_eq!(code, 0, "{err}");
    let (ok, stderr) = build(&[]);
    assert!(ok, "{stderr}");
    let out = pkg.cargo(&["run", "--quiet"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "SELECT \"Full Name\", email FROM users\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = std::fs::read_dir(tests::testbox_target().join("debug/build"))
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path().join("out/migrations.rs");
            let name = path.parent()?.parent()?.file_name()?.to_str()?.to_owned();
            name.starts_with("testbox-pg-snapshot-constants-").then_some(path)
        })
        .find(|p| p.exists())
        .expect("the generated module");
    let code = std::fs::read_to_string(generated).unwrap();
    assert!(code.contains("Column `tags` (text[], NOT NULL)."), "{code}");
    assert!(code.contains("Column `id` (bigint, primary key)."), "{code}");

    // A migration drops `email`: with the server the stale snapshot fails
    // the build; written again, the app's use of the column stops compiling.
    pkg.write(
        "migrations/0002_drop_email.up.sql",
        "ALTER TABLE users DROP COLUMN email;\n",
    );
    pkg.write(
        "migrations/0002_drop_email.down.sql",
        "ALTER TABLE users ADD COLUMN email text NOT NULL;\n",
    );
    let (ok, stderr) = build(&check);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("migrations/schema.sql:"), "{stderr}");
    assert!(stderr.contains("schema snapshot is stale"), "{stderr}");
    let (code, _, err) = cli_env(&pkg, &db.url, &["schema", "--write"], &check);
    assert_eq!(code, 0, "{err}");
    let (ok, stderr) = build(&[]);
    assert!(!ok, "the app names a dropped column: {stderr}");
    assert!(
        stderr.contains("cannot find value `EMAIL` in module `users`"),
        "{stderr}"
    );
}

/// What the PostgreSQL model reads beyond tables and columns, changed by
/// hand on a database with rows: comments, row-level security and a
/// policy, an index's INCLUDE column and key collation, an enum value
/// added, a domain's default and constraint, a sequence's options. `diff`
/// lists each, `--emit` adopts them all (the down undoes them, the round
/// trip passes), `diff` is clean after, and no row changed.
#[test]
fn pg_cli_emit_adopts_comments_policies_index_options_and_type_and_sequence_changes() {
    let Some(db) = pg_database!() else { return };
    let pkg = story_package("");
    pkg.write(
        "migrations/0004_extras.sql",
        "CREATE DOMAIN score_t AS integer DEFAULT 0 CHECK (VALUE >= 0);\n\
         CREATE SEQUENCE tickets START 100;\n\
         CREATE INDEX recruits_chat ON recruits (chatname);\n\
         CREATE TABLE events (id bigint NOT NULL, day date NOT NULL) PARTITION BY RANGE (day);\n\
         CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');\n\
         CREATE INDEX events_day ON events (day);\n\
         INSERT INTO events VALUES (1, '2024-05-01');\n",
    );
    let url = db.url.as_str();
    let (code, _, err) = cli(&pkg, url, &["up"]);
    assert_eq!(code, 0, "{err}");
    let mut client = db.client();
    client
        .batch_execute("INSERT INTO notes (recruit_id, body, mood) VALUES (1, 'fine', 'good'), (2, 'meh', 'bad')")
        .unwrap();
    let notes = |client: &mut migrate_runtime::postgres::Client| rows_of(client, "notes");
    let before = rows(&mut client);
    client
        .batch_execute(
            "COMMENT ON TABLE recruits IS 'people who applied';\n\
             COMMENT ON COLUMN recruits.name IS 'full name, as they write it';\n\
             ALTER TABLE recruits ENABLE ROW LEVEL SECURITY;\n\
             CREATE POLICY own_rows ON recruits FOR SELECT USING (chatname = current_user);\n\
             DROP INDEX recruits_chat;\n\
             CREATE INDEX recruits_chat ON recruits (chatname COLLATE \"C\") INCLUDE (score);\n\
             ALTER TYPE mood ADD VALUE 'meh' AFTER 'good';\n\
             ALTER DOMAIN score_t SET DEFAULT 1;\n\
             ALTER DOMAIN score_t ADD CONSTRAINT score_small CHECK (VALUE < 100);\n\
             ALTER SEQUENCE tickets INCREMENT BY 5 CYCLE;\n\
             CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');\n\
             CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);\n\
             ALTER TABLE notes ADD COLUMN handle text COLLATE ci;",
        )
        .unwrap();
    // (The hand changes add a column `handle` to notes: its rows as they are now.)
    let notes_before = notes(&mut client);
    let (code, out, err) = cli(&pkg, url, &["diff"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "collation ci added (CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false))",
            "table events_2025 added (2 columns)",
            "table events_2025: partition of events added (ALTER TABLE events ATTACH PARTITION events_2025 FOR VALUES FROM ('2025-01-01') TO ('2026-01-01'))",
            "type mood changed: was `CREATE TYPE mood AS ENUM ('good', 'bad')`, is `CREATE TYPE mood AS ENUM ('good', 'meh', 'bad')`",
            "table notes: column handle added (TEXT COLLATE CI)",
            "table recruits: index recruits_chat changed: was (chatname), is (chatname COLLATE C) INCLUDE (score)",
            "table recruits: comment on column recruits.name added (COMMENT ON COLUMN recruits.name IS 'full name, as they write it')",
            "table recruits: comment on table recruits added (COMMENT ON TABLE recruits IS 'people who applied')",
            "table recruits: policy own_rows added (CREATE POLICY own_rows ON recruits AS PERMISSIVE FOR SELECT TO PUBLIC USING (chatname = CURRENT_USER))",
            "table recruits: row-level security enabled added (ALTER TABLE recruits ENABLE ROW LEVEL SECURITY)",
            "type score_t changed: was `CREATE DOMAIN score_t AS integer DEFAULT 0 CONSTRAINT score_t_check CHECK (VALUE >= 0)`, is `CREATE DOMAIN score_t AS integer DEFAULT 1 CONSTRAINT score_small CHECK (VALUE < 100) CONSTRAINT score_t_check CHECK (VALUE >= 0)`",
            "sequence tickets changed: was `CREATE SEQUENCE tickets AS bigint INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 100 CACHE 1`, is `CREATE SEQUENCE tickets AS bigint INCREMENT BY 5 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 100 CACHE 1 CYCLE`",
        ],
        "{out}"
    );
    let (code, json, _) = cli(&pkg, url, &["diff", "--format", "json"]);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let policy = json["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["object"] == "policy")
        .unwrap();
    assert_eq!(
        (&policy["table"], &policy["name"], &policy["change"]),
        (&"recruits".into(), &"own_rows".into(), &"added".into())
    );

    // The runtime's start-up check refuses the drifted database.
    let (code, _, err) = cli(&pkg, url, &["up"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("table events_2025: partition of events added")
            && err.contains("policy own_rows added")
            && err.contains("collation ci added"),
        "{err}"
    );

    // --sql: the way back; turning row-level security off and dropping the
    // policy are held back like drops; an enum value cannot be removed in
    // place.
    let (code, sql, err) = cli(&pkg, url, &["diff", "--sql"]);
    assert_eq!(code, 1, "{err}");
    for expected in [
        "-- removes value 'meh' of enum mood: PostgreSQL has no ALTER TYPE … DROP VALUE, so this rebuilds the type",
        "-- ALTER TABLE notes ALTER COLUMN mood TYPE mood USING mood::text::mood;\n",
        "\nALTER DOMAIN score_t DROP CONSTRAINT score_small;\nALTER DOMAIN score_t SET DEFAULT 0;\n",
        "\nALTER SEQUENCE tickets AS bigint INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 100 CACHE 1 NO CYCLE;\n",
        "\nCOMMENT ON TABLE recruits IS NULL;\n",
        "\n-- DROP POLICY own_rows ON recruits;\n",
        "\n-- ALTER TABLE recruits DISABLE ROW LEVEL SECURITY;\n",
        "\nCREATE INDEX recruits_chat ON recruits (chatname);\n",
    ] {
        assert!(sql.contains(expected), "missing `{expected}` in:\n{sql}");
    }
    assert_eq!(rows(&mut client), before, "--sql runs nothing");

    let (code, out, err) = cli(&pkg, url, &["diff", "--emit", "adopt"]);
    assert_eq!(code, 0, "{out}{err}");
    let up = pkg.read("migrations/0005_adopt.up.sql");
    let down = pkg.read("migrations/0005_adopt.down.sql");
    for expected in [
        "-- ALTER TYPE … ADD VALUE runs in this migration's transaction on PostgreSQL 12 and later",
        "\nALTER TYPE mood ADD VALUE 'meh' AFTER 'good';\n",
        "\nALTER DOMAIN score_t SET DEFAULT 1;\nALTER DOMAIN score_t ADD CONSTRAINT score_small CHECK (VALUE < 100);\n",
        "\nALTER SEQUENCE tickets AS bigint INCREMENT BY 5 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 100 CACHE 1 CYCLE;\n",
        "\nCREATE INDEX recruits_chat ON recruits (chatname COLLATE \"C\") INCLUDE (score);\n",
        "\nCOMMENT ON TABLE recruits IS 'people who applied';\n",
        "\nCREATE POLICY own_rows ON recruits AS PERMISSIVE FOR SELECT TO PUBLIC USING (chatname = CURRENT_USER);\n",
        "\nALTER TABLE recruits ENABLE ROW LEVEL SECURITY;\n",
        "\nCREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);\n",
        "\nALTER TABLE notes ADD COLUMN handle text COLLATE ci;\n",
        "\nCREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');\n",
    ] {
        assert!(up.contains(expected), "missing `{expected}` in:\n{up}");
    }
    // The down undoes each; the enum value by rebuilding the type, and
    // says so.
    for expected in [
        "-- removes value 'meh' of enum mood: PostgreSQL has no ALTER TYPE … DROP VALUE",
        "\nALTER TYPE mood RENAME TO mood__old;\nCREATE TYPE mood AS ENUM ('good', 'bad');\nALTER TABLE notes ALTER COLUMN mood TYPE mood USING mood::text::mood;\nDROP TYPE mood__old;\n",
        "\nDROP POLICY own_rows ON recruits;\n",
        "\nALTER TABLE recruits DISABLE ROW LEVEL SECURITY;\n",
        "\nCOMMENT ON COLUMN recruits.name IS NULL;\n",
    ] {
        assert!(down.contains(expected), "missing `{expected}` in:\n{down}");
    }
    let (code, out, err) = cli(&pkg, url, &["diff"]);
    assert_eq!((code, out.as_str()), (0, ""), "clean after --emit: {err}");
    assert_eq!(rows(&mut client), before, "no row changed");
    assert_eq!(notes(&mut client), notes_before, "no row changed");
    let events: i64 = client.query_one("SELECT count(*) FROM events", &[]).unwrap().get(0);
    assert_eq!(events, 1);
    // The written pair passes the round trip on a server (up, down, up).
    let (code, _, err) = cli_env(&pkg, url, &["check"], &[("MIGRATE_CHECK_DATABASE_URL", url)]);
    assert_eq!(code, 0, "{err}");
    // The schema (and the snapshot) print them.
    let (code, schema, err) = cli(&pkg, url, &["schema", "--database", url]);
    assert_eq!(code, 0, "{err}");
    assert!(
        schema.ends_with(
            "COMMENT ON COLUMN recruits.name IS 'full name, as they write it';\n\n\
             COMMENT ON TABLE recruits IS 'people who applied';\n\n\
             CREATE POLICY own_rows ON recruits AS PERMISSIVE FOR SELECT TO PUBLIC USING (chatname = CURRENT_USER);\n\n\
             ALTER TABLE recruits ENABLE ROW LEVEL SECURITY;\n"
        ),
        "{schema}"
    );
    assert!(
        schema.contains(
            "\n    day date NOT NULL\n) PARTITION BY RANGE (day);\n\n\
             CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');\n\n\
             CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');\n"
        ),
        "{schema}"
    );
    assert!(
        schema.contains("\nCREATE INDEX recruits_chat ON recruits (chatname COLLATE \"C\") INCLUDE (score);\n"),
        "{schema}"
    );
}
