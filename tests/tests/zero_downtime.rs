//! The zero-downtime story (`SCENARIOS.md` §3) end to end, with real
//! processes, on a SQLite file and on a real PostgreSQL server.
//!
//! Two builds of one app, each a real cargo package built with
//! `migrate-build`:
//! - **v1** has migration 0001 (`recruits`, with the column `chatname`)
//!   and reads and writes `chatname`;
//! - **v2** adds 0002, an expand (the column `rocketchat_user`, triggers
//!   keeping both columns in step on inserts and updates), 0003, the
//!   batched backfill of the rows already there (`-- migrate:batch`; a migration of its own, as lint
//!   MS009 asks), and 0004, the contract of 0002 (drops the triggers and
//!   `chatname`); it reads and writes `rocketchat_user`.
//!
//! Old processes serve requests (insert, read, update, each checked) while
//! new processes start, apply the expand at start-up with the contract held,
//! and serve beside them; the old ones stop, `cargo migrate up --contract`
//! applies the contract, the new ones go on. No request of either version
//! may fail, and every row any process inserted must end with the right
//! value in `rocketchat_user`.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tests::{Package, pg_database};

/// The app's `main.rs`: `@COLUMN@` is the column the version reads and
/// writes, `@DB@` the module of driver calls for the backend.
///
/// Commands (`TARGET` is the SQLite file or the PostgreSQL URL): `migrate
/// TARGET`, `seed TARGET N`, `serve TARGET NAME`. Each starts as a real
/// instance does: it applies the migrations (a held contract is reported,
/// not applied) and prints the report, prefixed `start-up: `. `serve`
/// then prints `serving` and makes requests until its stdin closes (one
/// every 2 ms: an insert, a read or an update, in turn), then prints
/// `made N inserts I reads R updates U failed F` and `inserted LOGIN` per
/// row it inserted. A read checks the row it sees: the value of the column
/// is `LOGIN@chat/REV`, as every insert and update writes it.
const APP: &str = r#"mod migrations {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

use std::io::Read as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The column this version of the app reads and writes.
const COLUMN: &str = "@COLUMN@";

@DB@

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, target) = (args[0].as_str(), args[1].as_str());
    let mut conn = db::connect(target);
    match db::apply(&mut conn) {
        Ok(report) => {
            for line in report.to_string().lines() {
                println!("start-up: {line}");
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
    match command {
        "migrate" => {}
        "seed" => {
            let n: u32 = args[2].parse().expect("a number of rows");
            let sql = format!(
                "WITH RECURSIVE s (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) \
                 INSERT INTO recruits (login, {COLUMN}) SELECT 'seed-' || i, 'seed-' || i || '@chat/0' FROM s"
            );
            db::batch(&mut conn, &sql).expect("seed");
        }
        "serve" => serve(&mut conn, &args[2]),
        other => panic!("unknown command {other}"),
    }
}

fn serve(conn: &mut db::Conn, name: &str) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        flag.store(true, Ordering::SeqCst);
    });
    let insert = format!("INSERT INTO recruits (login, {COLUMN}) VALUES ($1, $2) RETURNING id");
    let read = format!("SELECT login, rev, {COLUMN} FROM recruits WHERE id = $1");
    let update = format!(
        "UPDATE recruits SET {COLUMN} = login || '@chat/' || (rev + 1), rev = rev + 1 WHERE id = $1"
    );
    let mut max_id = db::max_id(conn).expect("read the largest id");
    let mut random = u64::from(std::process::id()) | 1;
    let mut inserted = Vec::new();
    let (mut made, mut kinds, mut failed) = (0u64, [0u64; 3], 0u64);
    println!("serving");
    while !stop.load(Ordering::SeqCst) {
        // xorshift: the row a read or an update asks for.
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let id = i64::try_from(random % u64::try_from(max_id.max(1)).unwrap_or(1)).unwrap_or(0) + 1;
        let kind = usize::try_from(made % 3).unwrap_or(0);
        let result = match kind {
            0 => {
                let login = format!("{name}-{}", inserted.len() + 1);
                db::insert(conn, &insert, &login, &format!("{login}@chat/0")).map(|new| {
                    max_id = max_id.max(new);
                    inserted.push(login);
                })
            }
            1 => db::read(conn, &read, id).and_then(|row| match row {
                Some((login, rev, Some(value))) if value == format!("{login}@chat/{rev}") => Ok(()),
                other => Err(format!("row {id} read as {other:?} through {COLUMN}")),
            }),
            _ => db::update(conn, &update, id).and_then(|n| match n {
                1 => Ok(()),
                n => Err(format!("updating row {id} changed {n} rows")),
            }),
        };
        made += 1;
        kinds[kind] += 1;
        if let Err(e) = result {
            failed += 1;
            if failed <= 5 {
                eprintln!("{name}: request {made} failed: {e}");
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    println!(
        "made {made} inserts {} reads {} updates {} failed {failed}",
        kinds[0], kinds[1], kinds[2]
    );
    for login in inserted {
        println!("inserted {login}");
    }
}
"#;

/// The SQLite app's driver calls, each statement prepared once per
/// connection (`prepare_cached`): SQLite prepares it again after the
/// migrations change the schema.
const SQLITE_DB: &str = r#"mod db {
    use migrate_runtime::rusqlite::{Connection, OptionalExtension as _};

    pub type Conn = Connection;

    /// What a real app sets on SQLite: `busy_timeout` 5 s, so a request
    /// waits for the write lock (another process's write, a migration's
    /// transaction) instead of failing with SQLITE_BUSY; WAL, so readers
    /// and the writer do not wait for each other; `synchronous = NORMAL`,
    /// WAL's usual setting.
    pub fn connect(path: &str) -> Conn {
        let conn = Connection::open(path).expect("open the database");
        conn.busy_timeout(std::time::Duration::from_secs(5)).expect("set busy_timeout");
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .expect("set journal_mode");
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "synchronous", "NORMAL").expect("set synchronous");
        conn
    }

    pub fn apply(conn: &mut Conn) -> migrate_runtime::Result<migrate_runtime::Report> {
        super::migrations::apply(conn)
    }

    pub fn batch(conn: &mut Conn, sql: &str) -> Result<(), String> {
        conn.execute_batch(sql).map_err(|e| e.to_string())
    }

    pub fn max_id(conn: &mut Conn) -> Result<i64, String> {
        conn.query_row("SELECT coalesce(max(id), 0) FROM recruits", [], |r| r.get(0))
            .map_err(|e| e.to_string())
    }

    pub fn insert(conn: &mut Conn, sql: &str, login: &str, value: &str) -> Result<i64, String> {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.query_row((login, value), |r| r.get(0)))
            .map_err(|e| e.to_string())
    }

    pub fn read(conn: &mut Conn, sql: &str, id: i64) -> Result<Option<(String, i64, Option<String>)>, String> {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional())
            .map_err(|e| e.to_string())
    }

    pub fn update(conn: &mut Conn, sql: &str, id: i64) -> Result<u64, String> {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([id]))
            .map(|n| n as u64)
            .map_err(|e| e.to_string())
    }
}"#;

/// The PostgreSQL app's driver calls (the blocking `postgres` client),
/// with each statement prepared once per connection, as an app with a
/// statement cache does: the server plans them again after the migrations
/// change the table.
const PG_DB: &str = r#"mod db {
    use std::collections::HashMap;

    use migrate_runtime::postgres::{Client, Error, NoTls, Statement};

    pub struct Conn {
        client: Client,
        prepared: HashMap<String, Statement>,
    }

    pub fn connect(url: &str) -> Conn {
        Conn {
            client: Client::connect(url, NoTls).expect("connect"),
            prepared: HashMap::new(),
        }
    }

    pub fn apply(conn: &mut Conn) -> migrate_runtime::Result<migrate_runtime::Report> {
        super::migrations::apply(&mut conn.client)
    }

    fn text(e: Error) -> String {
        e.as_db_error().map_or_else(|| e.to_string(), ToString::to_string)
    }

    fn prepared(conn: &mut Conn, sql: &str) -> Result<Statement, String> {
        if let Some(statement) = conn.prepared.get(sql) {
            return Ok(statement.clone());
        }
        let statement = conn.client.prepare(sql).map_err(text)?;
        conn.prepared.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    pub fn batch(conn: &mut Conn, sql: &str) -> Result<(), String> {
        conn.client.batch_execute(sql).map_err(text)
    }

    pub fn max_id(conn: &mut Conn) -> Result<i64, String> {
        conn.client
            .query_one("SELECT coalesce(max(id), 0) FROM recruits", &[])
            .map(|r| r.get(0))
            .map_err(text)
    }

    pub fn insert(conn: &mut Conn, sql: &str, login: &str, value: &str) -> Result<i64, String> {
        let statement = prepared(conn, sql)?;
        conn.client.query_one(&statement, &[&login, &value]).map(|r| r.get(0)).map_err(text)
    }

    pub fn read(conn: &mut Conn, sql: &str, id: i64) -> Result<Option<(String, i64, Option<String>)>, String> {
        let statement = prepared(conn, sql)?;
        conn.client
            .query_opt(&statement, &[&id])
            .map(|row| row.map(|r| (r.get(0), r.get(1), r.get(2))))
            .map_err(text)
    }

    pub fn update(conn: &mut Conn, sql: &str, id: i64) -> Result<u64, String> {
        let statement = prepared(conn, sql)?;
        conn.client.execute(&statement, &[&id]).map_err(text)
    }
}"#;

/// One backend's migrations: 0001 (v1 and v2), the expand 0002, the
/// backfill 0003 ([`BACKFILL`]) and the contract 0004 (v2 only).
struct Migrations {
    recruits: &'static str,
    expand: &'static str,
    contract: &'static str,
}

/// The backfill, the same on both backends, once the expand's triggers
/// keep new writes in step: a batched `UPDATE` (`-- migrate:batch`), one
/// short transaction per 100 rows, so the running apps' writes never wait
/// for the whole table.
const BACKFILL: &str =
    "-- migrate:batch 100\nUPDATE recruits SET rocketchat_user = chatname WHERE rocketchat_user IS NULL;\n";

const SQLITE: Migrations = Migrations {
    recruits: "CREATE TABLE recruits (\n    id INTEGER PRIMARY KEY,\n    login TEXT NOT NULL UNIQUE,\n    rev INTEGER NOT NULL DEFAULT 0,\n    chatname TEXT\n);\n",
    // SQLite's triggers cannot change NEW: AFTER triggers write the other
    // column of the row. Recursive triggers are off by default, and each
    // UPDATE also skips rows already in step, so they do not loop.
    expand: "-- migrate:phase expand
ALTER TABLE recruits ADD COLUMN rocketchat_user TEXT;

-- Old code writes chatname, new code rocketchat_user: each insert and
-- update of one copies it into the other.
CREATE TRIGGER recruits_chatname_insert AFTER INSERT ON recruits
WHEN NEW.rocketchat_user IS NULL AND NEW.chatname IS NOT NULL
BEGIN
    UPDATE recruits SET rocketchat_user = NEW.chatname WHERE id = NEW.id;
END;
CREATE TRIGGER recruits_rocketchat_user_insert AFTER INSERT ON recruits
WHEN NEW.chatname IS NULL AND NEW.rocketchat_user IS NOT NULL
BEGIN
    UPDATE recruits SET chatname = NEW.rocketchat_user WHERE id = NEW.id;
END;
CREATE TRIGGER recruits_chatname_update AFTER UPDATE OF chatname ON recruits
WHEN NEW.chatname IS NOT OLD.chatname
BEGIN
    UPDATE recruits SET rocketchat_user = NEW.chatname
    WHERE id = NEW.id AND rocketchat_user IS NOT NEW.chatname;
END;
CREATE TRIGGER recruits_rocketchat_user_update AFTER UPDATE OF rocketchat_user ON recruits
WHEN NEW.rocketchat_user IS NOT OLD.rocketchat_user
BEGIN
    UPDATE recruits SET chatname = NEW.rocketchat_user
    WHERE id = NEW.id AND chatname IS NOT NEW.rocketchat_user;
END;
",
    contract: "-- migrate:phase contract
-- migrate:contract-of 0002
DROP TRIGGER recruits_chatname_insert;
DROP TRIGGER recruits_rocketchat_user_insert;
DROP TRIGGER recruits_chatname_update;
DROP TRIGGER recruits_rocketchat_user_update;
ALTER TABLE recruits DROP COLUMN chatname;
",
};

const POSTGRES: Migrations = Migrations {
    recruits: "CREATE TABLE recruits (\n    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n    login text NOT NULL UNIQUE,\n    rev bigint NOT NULL DEFAULT 0,\n    chatname text\n);\n",
    // One BEFORE trigger sets the other column in NEW: no second write.
    expand: "-- migrate:phase expand
ALTER TABLE recruits ADD COLUMN rocketchat_user text;

-- Old code writes chatname, new code rocketchat_user: each insert and
-- update of one copies it into the other.
CREATE FUNCTION recruits_chatname_in_step() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.rocketchat_user IS NULL THEN
            NEW.rocketchat_user := NEW.chatname;
        ELSIF NEW.chatname IS NULL THEN
            NEW.chatname := NEW.rocketchat_user;
        END IF;
    ELSIF NEW.chatname IS DISTINCT FROM OLD.chatname THEN
        NEW.rocketchat_user := NEW.chatname;
    ELSIF NEW.rocketchat_user IS DISTINCT FROM OLD.rocketchat_user THEN
        NEW.chatname := NEW.rocketchat_user;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER recruits_chatname_in_step BEFORE INSERT OR UPDATE ON recruits
FOR EACH ROW EXECUTE FUNCTION recruits_chatname_in_step();
",
    contract: "-- migrate:phase contract
-- migrate:contract-of 0002
DROP TRIGGER recruits_chatname_in_step ON recruits;
DROP FUNCTION recruits_chatname_in_step();
ALTER TABLE recruits DROP COLUMN chatname;
",
};

/// Rows in the table before the story starts, for the backfill.
const SEEDED: usize = 500;
/// Old processes and new processes.
const OLD: usize = 3;
const NEW: usize = 2;

/// A backend the story runs on.
struct Backend {
    /// `SQLite` or `PostgreSQL`.
    label: &'static str,
    migrations: Migrations,
    /// What the apps take as their `TARGET`, and `DATABASE_URL` for the CLI.
    target: String,
    url: String,
    /// How the SQLite apps are set, for the printed summary.
    settings: &'static str,
}

/// The two app versions, built.
struct Apps {
    v1: Package,
    v2: Package,
}

/// Writes and builds v1 and v2 for `backend` (`sqlite` or `pg`).
fn build_apps(backend: &str, migrations: &Migrations) -> Apps {
    let package = |version: &str| {
        let pkg = if backend == "pg" {
            Package::postgres(&format!("testbox-zd-pg-{version}"), r#""postgres""#, "", "")
        } else {
            let pkg = Package::named(&format!("zd-sqlite-{version}"));
            let manifest = pkg.read("Cargo.toml");
            // The lint from the first migration on: the expand only adds.
            pkg.write(
                "Cargo.toml",
                format!("{manifest}\n[package.metadata.migrate]\nlint_from = 1\n"),
            );
            pkg
        };
        let (column, db) = match (version, backend) {
            ("v1", "pg") => ("chatname", PG_DB),
            (_, "pg") => ("rocketchat_user", PG_DB),
            ("v1", _) => ("chatname", SQLITE_DB),
            _ => ("rocketchat_user", SQLITE_DB),
        };
        pkg.write("src/main.rs", APP.replace("@COLUMN@", column).replace("@DB@", db));
        pkg.write("migrations/0001_recruits.sql", migrations.recruits);
        if version == "v2" {
            pkg.write("migrations/0002_rocketchat_user.sql", migrations.expand);
            pkg.write("migrations/0003_backfill_rocketchat_user.sql", BACKFILL);
            pkg.write("migrations/0004_drop_chatname.sql", migrations.contract);
        }
        let (ok, stderr) = pkg.build();
        assert!(ok, "building {backend} {version}:\n{stderr}");
        pkg
    };
    Apps {
        v1: package("v1"),
        v2: package("v2"),
    }
}

/// A running app process: its stdout read line by line as it comes.
struct Process {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
}

impl Process {
    fn start(pkg: &Package, target: &str, name: &str) -> Self {
        let mut child = Command::new(pkg.binary())
            .args(["serve", target, name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", pkg.binary().display()));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let stdout = child.stdout.take().expect("piped stdout");
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        Self {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
            reader: Some(reader),
            stderr: Some(stderr),
        }
    }

    /// Waits until the process printed `serving` (it has applied the
    /// migrations at start-up).
    fn wait_serving(&mut self) {
        let start = Instant::now();
        while !self.lines.lock().unwrap().iter().any(|l| l == "serving") {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "{} ended before serving ({status}):\n{}",
                    self.name,
                    self.lines.lock().unwrap().join("\n")
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "{} did not start",
                self.name
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What it printed at start-up (its migration report).
    fn start_up(&self) -> String {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| l.strip_prefix("start-up: "))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// Closes its stdin (it stops serving) and reads its summary.
    fn stop(mut self) -> Served {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        let lines = self.lines.lock().unwrap().clone();
        assert!(
            status.success(),
            "{} failed ({status}):\n{}\n{stderr}",
            self.name,
            lines.join("\n")
        );
        let summary = lines
            .iter()
            .find_map(|l| l.strip_prefix("made "))
            .unwrap_or_else(|| panic!("{} printed no summary:\n{}", self.name, lines.join("\n")));
        let numbers: Vec<u64> = summary.split(' ').filter_map(|w| w.parse().ok()).collect();
        let [made, inserts, reads, updates, failed] = numbers[..] else {
            panic!("{}: unexpected summary {summary}", self.name)
        };
        Served {
            name: self.name.clone(),
            made,
            inserts,
            reads,
            updates,
            failed,
            inserted: lines
                .iter()
                .filter_map(|l| l.strip_prefix("inserted "))
                .map(str::to_owned)
                .collect(),
            stderr,
        }
    }
}

/// What a process did, from its summary.
struct Served {
    name: String,
    made: u64,
    inserts: u64,
    reads: u64,
    updates: u64,
    failed: u64,
    inserted: Vec<String>,
    stderr: String,
}

/// Requests made and failed by one app version, summed over its processes.
fn totals(label: &str, served: &[Served]) -> String {
    let sum = |f: fn(&Served) -> u64| served.iter().map(f).sum::<u64>();
    format!(
        "{label}: {} processes, {} requests ({} inserts, {} reads, {} updates), {} failed",
        served.len(),
        sum(|s| s.made),
        sum(|s| s.inserts),
        sum(|s| s.reads),
        sum(|s| s.updates),
        sum(|s| s.failed),
    )
}

/// The rows, by login: (rev, rocketchat_user), read through `query`.
type Rows = BTreeMap<String, (i64, Option<String>)>;

/// The story on one backend: `versions` reads `_migrations`, `count_old`
/// counts rows the old version inserted, `rows` reads the table at the
/// end, `leftovers` names the triggers, functions and columns the contract
/// should have removed that are still there.
fn story(
    backend: &Backend,
    versions: &dyn Fn() -> Vec<i64>,
    count_old: &dyn Fn() -> i64,
    rows: &dyn Fn() -> Rows,
    leftovers: &dyn Fn() -> Vec<String>,
) {
    // Built before the story, not while it runs.
    tests::bin("cargo-migrate");
    let apps = build_apps(
        if backend.label == "PostgreSQL" { "pg" } else { "sqlite" },
        &backend.migrations,
    );
    let run = |pkg: &Package, args: &[&str]| {
        let out = Command::new(pkg.binary()).args(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        stdout
    };
    let target = backend.target.as_str();
    run(&apps.v1, &["migrate", target]);
    run(&apps.v1, &["seed", target, &SEEDED.to_string()]);
    assert_eq!(versions(), [1]);

    // v1 serves alone.
    let mut old: Vec<Process> = (1..=OLD)
        .map(|i| Process::start(&apps.v1, target, &format!("old{i}")))
        .collect();
    old.iter_mut().for_each(Process::wait_serving);
    std::thread::sleep(Duration::from_millis(800));

    // v2 starts beside it: its instances apply the expand and its
    // backfill at start-up (one of them; the other finds it applied), and
    // hold the contract.
    let deploy = Instant::now();
    let mut new: Vec<Process> = (1..=NEW)
        .map(|i| Process::start(&apps.v2, target, &format!("new{i}")))
        .collect();
    new.iter_mut().for_each(Process::wait_serving);
    let deployed = deploy.elapsed();
    for p in &new {
        let report = p.start_up();
        assert!(
            report.contains(
                "held 4 drop_chatname: a contract of 2, not applied (once every running instance has the new code, run `cargo migrate up --contract` (Migrator::contract(true)))"
            ),
            "{}: {report}",
            p.name
        );
    }
    // Each migration is applied once, by one instance or the other (on
    // SQLite the write lock is taken per migration, so the instances may
    // share the work).
    let applied: Vec<String> = new.iter().map(Process::start_up).collect();
    let once = "applied 2 rocketchat_user (";
    assert_eq!(
        applied.iter().filter(|r| r.contains(once)).count(),
        1,
        "`{once}` once: {applied:?}"
    );
    // The batched backfill: on SQLite an instance that finds it under way
    // joins in between batches (each batch re-reads the progress under the
    // lock, so no range runs twice), and both instances' reports then list
    // it; it is recorded once (below), and every row is checked at the end.
    let backfill = "applied 3 backfill_rocketchat_user (";
    assert!(
        applied.iter().any(|r| r.contains(backfill)),
        "`{backfill}`: {applied:?}"
    );
    assert_eq!(versions(), [1, 2, 3], "the contract is held");
    let old_rows_at_deploy = count_old();

    // Both versions together.
    std::thread::sleep(Duration::from_millis(1500));
    let old: Vec<Served> = old.into_iter().map(Process::stop).collect();
    assert!(
        count_old() > old_rows_at_deploy,
        "the old version inserted rows while the new one ran"
    );

    // Held until asked for: status says so; `up --contract` applies it
    // while the new version serves.
    assert_eq!(versions(), [1, 2, 3]);
    let migrate = |args: &[&str]| {
        let out = apps
            .v2
            .migrate()
            .env("DATABASE_URL", &backend.url)
            .env_remove("MIGRATE_CHECK_DATABASE_URL")
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "cargo migrate {}:\n{text}", args.join(" "));
        text
    };
    if backend.label == "SQLite" {
        // The lint (SQLite's) finds nothing: the expand only adds, the
        // contract removes what its expand superseded.
        let lint = migrate(&["lint"]);
        assert!(lint.contains(": no findings"), "{lint}");
    }
    let status = migrate(&["status"]);
    assert!(status.contains("3 applied, 0 pending, 1 held (contract)"), "{status}");
    let contract = migrate(&["up", "--contract"]);
    assert!(
        contract.contains("applying 0004 drop_chatname … done in")
            && contract.contains("the database is at version 0004 drop_chatname"),
        "{contract}"
    );
    assert_eq!(versions(), [1, 2, 3, 4]);
    std::thread::sleep(Duration::from_millis(800));
    let new: Vec<Served> = new.into_iter().map(Process::stop).collect();

    // The story as it ran, for the record (`--nocapture`): printed at
    // once, so that the other backend's test does not cut into it.
    let mut record = format!(
        "zero-downtime story on {} ({}): {SEEDED} rows seeded\n",
        backend.label, backend.settings
    );
    for (i, report) in applied.iter().enumerate() {
        let report: Vec<&str> = report
            .lines()
            .map(|l| l.split(" (once every").next().unwrap_or(l))
            .collect();
        record.push_str(&format!("  new{} start-up: {}\n", i + 1, report.join("; ")));
    }
    record.push_str(&format!(
        "  v2 deployed beside v1 in {} ms; v1 stopped; cargo migrate up --contract: {}\n",
        deployed.as_millis(),
        contract.lines().last().unwrap_or_default()
    ));
    record.push_str(&format!("  {}\n", totals("v1 (old, chatname)", &old)));
    record.push_str(&format!("  {}\n", totals("v2 (new, rocketchat_user)", &new)));
    for s in old.iter().chain(&new) {
        record.push_str(&format!(
            "    {}: {} requests ({} inserts, {} reads, {} updates), {} failed\n",
            s.name, s.made, s.inserts, s.reads, s.updates, s.failed
        ));
    }

    // No request failed, and each process did real work.
    for s in old.iter().chain(&new) {
        assert_eq!(s.failed, 0, "{record}{}: failed requests:\n{}", s.name, s.stderr);
        assert!(
            s.inserts >= 20 && s.reads >= 20 && s.updates >= 20,
            "{} made too few requests",
            s.name
        );
        assert_eq!(s.inserted.len(), usize::try_from(s.inserts).unwrap(), "{}", s.name);
    }
    // No row lost: exactly the seeded rows and every row a process
    // inserted, each with its value in the new column.
    let rows = rows();
    let expected: Vec<String> = (1..=SEEDED)
        .map(|i| format!("seed-{i}"))
        .chain(old.iter().chain(&new).flat_map(|s| s.inserted.iter().cloned()))
        .collect();
    assert_eq!(
        rows.len(),
        expected.len(),
        "rows in the table, rows seeded and inserted"
    );
    let mut wrong = Vec::new();
    for login in &expected {
        match rows.get(login) {
            Some((rev, Some(value))) if *value == format!("{login}@chat/{rev}") => {}
            other => wrong.push(format!("{login}: {other:?}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} rows lost or wrong: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
    let updated = rows.values().filter(|(rev, _)| *rev > 0).count();
    record.push_str(&format!(
        "  rows: {} = {SEEDED} seeded + {} inserted, all with rocketchat_user = login@chat/rev ({updated} updated at least once)\n",
        rows.len(),
        expected.len() - SEEDED
    ));
    print!("{record}");
    assert_eq!(
        leftovers(),
        Vec::<String>::new(),
        "the contract removed the old column and the triggers"
    );
}

#[test]
fn sqlite_old_and_new_app_versions_serve_through_expand_and_contract() {
    use migrate_runtime::rusqlite::Connection;
    let dir = tests::scratch();
    let path = dir.path().join("app.db");
    let backend = Backend {
        label: "SQLite",
        migrations: SQLITE,
        target: path.display().to_string(),
        url: format!("sqlite:{}", path.display()),
        settings: "a file in WAL mode, busy_timeout 5 s, statements prepared once per connection",
    };
    let open = || Connection::open(&path).unwrap();
    let strings = |sql: &str| -> Vec<String> {
        let conn = open();
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    story(
        &backend,
        &|| tests::applied_versions(&open()),
        &|| {
            open()
                .query_row("SELECT count(*) FROM recruits WHERE login LIKE 'old%'", [], |r| {
                    r.get(0)
                })
                .unwrap()
        },
        &|| {
            let conn = open();
            let mut stmt = conn
                .prepare("SELECT login, rev, rocketchat_user FROM recruits")
                .unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        },
        &|| {
            let mut left = strings("SELECT 'trigger ' || name FROM sqlite_schema WHERE type = 'trigger'");
            left.extend(strings(
                "SELECT 'column ' || name FROM pragma_table_info('recruits') WHERE name = 'chatname'",
            ));
            left
        },
    );
}

#[test]
fn pg_old_and_new_app_versions_serve_through_expand_and_contract() {
    let Some(db) = pg_database!() else { return };
    let backend = Backend {
        label: "PostgreSQL",
        migrations: POSTGRES,
        target: db.url.clone(),
        url: db.url.clone(),
        settings: "a real server, the blocking postgres client, statements prepared once per connection",
    };
    let strings =
        |sql: &str| -> Vec<String> { db.client().query(sql, &[]).unwrap().iter().map(|r| r.get(0)).collect() };
    story(
        &backend,
        &|| {
            db.client()
                .query("SELECT version FROM _migrations ORDER BY version", &[])
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect()
        },
        &|| {
            db.client()
                .query_one("SELECT count(*) FROM recruits WHERE login LIKE 'old%'", &[])
                .unwrap()
                .get(0)
        },
        &|| {
            db.client()
                .query("SELECT login, rev, rocketchat_user FROM recruits", &[])
                .unwrap()
                .iter()
                .map(|r| (r.get(0), (r.get(1), r.get(2))))
                .collect()
        },
        &|| {
            let mut left = strings(
                "SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgrelid = 'recruits'::regclass AND NOT tgisinternal",
            );
            left.extend(strings(
                "SELECT 'function ' || proname FROM pg_proc WHERE proname = 'recruits_chatname_in_step'",
            ));
            left.extend(strings(
                "SELECT 'column ' || column_name FROM information_schema.columns WHERE table_name = 'recruits' AND column_name = 'chatname'",
            ));
            left
        },
    );
}
