//! The checks of `cargo build` and `cargo migrate check`: one function, so
//! the two can never disagree.

use std::path::{Path, PathBuf};

use migrate_runtime::model;
use migrate_runtime::schema::{Schema, Table};
use migrate_runtime::{Migration, Migrator, ReplayCache};

use crate::cache::Cache;
use crate::config::{Config, Function};
use crate::naming::{Ages, has_collision};
use crate::problem::{Error, Problem};
use crate::scan::{Found, display_path, scan_except};

/// A migrations directory that passed every check.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Checked {
    /// The migrations, oldest first.
    pub migrations: Vec<Found>,
    /// The tables after the last migration, with their columns.
    pub tables: Vec<Table>,
    /// When each table and column appeared, where the final schema has a
    /// naming collision (else empty); see [`crate::naming`].
    pub ages: Ages,
    /// Warnings (checks that do not fail the build): the scan's, then the
    /// replay's (a down that gives back a table with its columns in another
    /// order).
    pub warnings: Vec<Problem>,
    /// The migrations directory.
    pub dir: PathBuf,
    /// The [fingerprint](migrate_runtime::model::fingerprint) of the schema
    /// right after each migration, oldest first: what the generated code
    /// records for the start-up drift check.
    pub fingerprints: Vec<(u64, String)>,
    /// The schema after the last migration as SQL that recreates it
    /// ([`migrate_runtime::model::schema_sql`], without the tracking table
    /// and the `ignore` patterns' tables): what the `snapshot` file holds.
    pub schema_sql: String,
    /// How many migrations, from the first, the check took from its
    /// replay cache instead of replaying them (0 without a cache).
    pub cached: usize,
}

/// The migrations directory of a package: `config.dir` relative to `package_dir`.
#[must_use]
pub fn migrations_dir(package_dir: &Path, config: &Config) -> PathBuf {
    package_dir.join(&config.dir)
}

/// Reads the package's migrations without replaying them: what `cargo
/// migrate` needs to apply, list or roll back.
///
/// # Errors
///
/// Every problem the scan finds (names, duplicates, gaps, pairing,
/// encodings, directives, empty files).
pub fn load(package_dir: &Path, config: &Config) -> Result<Loaded, Error> {
    let dir = migrations_dir(package_dir, config);
    let snapshot = snapshot_path(package_dir, config);
    let scan = scan_except(&dir, package_dir, config.width, snapshot.as_deref());
    if scan.has_errors() {
        return Err(Error::new(scan.problems));
    }
    let squash_problems = crate::squash::check(&scan.migrations);
    if !squash_problems.is_empty() {
        let mut problems = scan.problems;
        problems.extend(squash_problems);
        return Err(Error::new(problems));
    }
    Ok(Loaded {
        migrations: scan.migrations,
        warnings: scan.problems,
        dir,
    })
}

/// A migrations directory that was read without errors (not replayed): what
/// [`load`] returns.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Loaded {
    /// The migrations, oldest first.
    pub migrations: Vec<Found>,
    /// Warnings (checks that do not fail the build).
    pub warnings: Vec<Problem>,
    /// The migrations directory.
    pub dir: PathBuf,
}

/// Runs every check on a package's migrations: the scan, then a replay of
/// every up migration into an in-memory SQLite database through the real
/// runner, with an up → down → up round trip for each migration that has a
/// down.
///
/// # Errors
///
/// Every problem found, warnings included; a failing statement stops the
/// replay, so migrations after it are not replayed.
pub fn check(package_dir: &Path, config: &Config) -> Result<Checked, Error> {
    check_with_setup(package_dir, config, None)
}

/// What `Builder::replay_setup` runs on every replay database, after the
/// `functions` stubs: registers the app's own SQL functions (or anything
/// else a connection needs before the migrations can run).
pub type ReplaySetup = dyn Fn(&rusqlite::Connection) -> rusqlite::Result<()>;

/// [`check`], running `setup` on every replay database after the
/// `functions` stubs (so a real implementation replaces a stub).
///
/// # Errors
///
/// As [`check`].
#[doc(hidden)]
pub fn check_with_setup(package_dir: &Path, config: &Config, setup: Option<&ReplaySetup>) -> Result<Checked, Error> {
    check_incremental(package_dir, config, setup, None)
}

/// [`check_with_setup`], replaying only what follows the longest verified
/// prefix kept in `cache_dir` (see the `cache` module), and keeping the
/// prefixes it verifies there. Without a cache directory, or with a
/// `replay_setup` (which no key can describe), everything is replayed.
///
/// # Errors
///
/// As [`check`]: exactly the problems a check without the cache finds.
#[doc(hidden)]
pub fn check_incremental(
    package_dir: &Path,
    config: &Config,
    setup: Option<&ReplaySetup>,
    cache_dir: Option<&Path>,
) -> Result<Checked, Error> {
    let cache_dir = cache_dir.filter(|_| setup.is_none());
    let mut checked = replay(package_dir, config, setup, cache_dir, true)?;
    // PostgreSQL's schema is known only from a replay on a server.
    let postgres = config.backend() == crate::Backend::Postgres;
    let known = !postgres || check_server().is_some();
    let snapshot = snapshot_path(package_dir, config);
    if let Some(stale) = snapshot
        .as_ref()
        .filter(|_| known)
        .and_then(|path| compare_snapshot(path, package_dir, &checked.schema_sql))
    {
        let mut problems = checked.warnings;
        problems.push(stale);
        return Err(Error::new(problems));
    }
    // PostgreSQL's `schema` constants: from the server's replay when there
    // is one (the snapshot then holds the same text), else from the
    // committed snapshot, so a laptop builds them without a server.
    if postgres && let Some(path) = snapshot {
        let shown = display_path(&path, package_dir);
        let tables = if known {
            crate::pg_snapshot::tables(&checked.schema_sql, &shown)
        } else {
            crate::pg_snapshot::read_tables(&path, &shown)
        };
        match tables {
            Ok(tables) => checked.tables = tables,
            Err(problem) => {
                let mut problems = checked.warnings;
                problems.push(problem);
                return Err(Error::new(problems));
            }
        }
    }
    Ok(checked)
}

/// The schema snapshot's path (`snapshot` in `[package.metadata.migrate]`,
/// relative to the package), when the package has one.
#[must_use]
pub fn snapshot_path(package_dir: &Path, config: &Config) -> Option<PathBuf> {
    config.snapshot.as_ref().map(|p| package_dir.join(p))
}

/// The text the schema snapshot must hold: the schema that the package's
/// migrations make, as SQL that recreates it
/// ([`migrate_runtime::model::schema_sql`] of the build's replay, without
/// the tracking table and the `ignore` patterns' tables). `cargo build` and
/// `cargo migrate check` compare the `snapshot` file with exactly this
/// (line endings aside); `cargo migrate schema --write` writes it. Does
/// not read the snapshot file, so it works when the file is stale or
/// missing.
///
/// # Errors
///
/// Every problem [`check`] finds in the migrations (but a stale snapshot).
pub fn schema_snapshot(package_dir: &Path, config: &Config) -> Result<String, Error> {
    replay(package_dir, config, None, None, false).map(|c| c.schema_sql)
}

/// What is wrong with the snapshot file at `path`, if anything: missing,
/// unreadable, or not `expected` (CRLF line endings and newlines at the
/// end do not count).
fn compare_snapshot(path: &Path, package_dir: &Path, expected: &str) -> Option<Problem> {
    const HINT: &str = "run `cargo migrate schema --write`";
    let shown = display_path(path, package_dir);
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some(Problem::error(shown, 0, "schema snapshot is missing").hint(format!("{HINT} to create it")));
        }
        Err(e) => {
            return Some(
                Problem::error(shown, 0, format!("cannot read the schema snapshot: {e}"))
                    .hint(format!("make it readable, or {HINT} to write it again")),
            );
        }
    };
    let text = String::from_utf8_lossy(&bytes).replace("\r\n", "\n");
    // Line endings, and newlines at the end (an editor's), do not count.
    if text.trim_end_matches('\n') == expected.trim_end_matches('\n') {
        return None;
    }
    let (mut have, mut want) = (text.split('\n'), expected.split('\n'));
    let mut line = 1;
    let detail = loop {
        match (have.next(), want.next()) {
            (Some(h), Some(w)) if h == w => line += 1,
            (Some(h), Some(w)) => {
                // From a little before the first difference, so it shows.
                let at = h
                    .char_indices()
                    .zip(w.chars())
                    .find(|((_, a), b)| a != b)
                    .map_or_else(|| h.len().min(w.len()), |((i, _), _)| i);
                let from = h[..at].char_indices().rev().nth(19).map_or(0, |(i, _)| i);
                let cut = |s: &str| {
                    let dots = if from > 0 { "…" } else { "" };
                    format!("{dots}{}", short(&s[from..]))
                };
                break format!("line {line} reads `{}`, the migrations make `{}`", cut(h), cut(w));
            }
            (None, Some(w)) => break format!("the file ends before `{}`", short(w)),
            (Some(h), None) => break format!("line {line} `{}` is not in the schema the migrations make", short(h)),
            (None, None) => break "it differs".to_owned(),
        }
    };
    Some(Problem::error(shown, line, format!("schema snapshot is stale: {detail}")).hint(HINT))
}

/// A line cut to a readable length.
fn short(line: &str) -> String {
    const MAX: usize = 60;
    match line.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_owned(),
    }
}

/// The scan, the lock file (when `config.lock_file` and `with_lock`) and
/// the replay.
fn replay(
    package_dir: &Path,
    config: &Config,
    user_setup: Option<&ReplaySetup>,
    cache_dir: Option<&Path>,
    with_lock: bool,
) -> Result<Checked, Error> {
    let Loaded {
        migrations,
        warnings: mut problems,
        dir,
    } = load(package_dir, config)?;
    if with_lock && config.lock_file {
        let shown = display_path(&crate::lockfile::path(&dir), package_dir);
        problems.extend(crate::lockfile::verify(&dir, &shown, &migrations));
    }
    if config.backend() == crate::Backend::Postgres {
        return check_postgres(migrations, problems, dir, config);
    }
    let runtime: Vec<Migration> = migrations.iter().map(Found::to_migration).collect();
    let setup = |conn: &rusqlite::Connection| {
        register_function_stubs(conn, config)?;
        user_setup.map_or(Ok(()), |user| user(conn))
    };
    // A replay makes what the migrations make, contracts included.
    let migrator = Migrator::new(&runtime)
        .table(&config.table)
        .ignore(&config.ignore)
        .contract(true)
        .replay_setup(setup);
    let mut cache = cache_dir.map(|dir| Cache::new(dir, config, &runtime));
    // The runtime's filter, so the fingerprints are the ones it compares.
    let replay = migrator.filter().and_then(|filter| {
        let inspect = |conn: &rusqlite::Connection, schema: &Schema| {
            Ok((schema.tables(conn)?, model::schema_sql(conn, &filter)?))
        };
        match &mut cache {
            Some(cache) => migrator.check_cached(cache as &mut dyn ReplayCache, inspect),
            None => migrator.check_with(inspect),
        }
    });
    let cached = cache.as_ref().map_or(0, |c| c.resumed);
    if let Some(cache) = &cache {
        cache.prune();
    }
    match replay {
        Ok((validated, (tables, schema_sql))) => {
            problems.extend(validated.warnings.into_iter().map(|w| {
                let hint = w.hint;
                Problem::warning(w.file, w.line, w.message).hint(hint)
            }));
            if problems.iter().any(Problem::is_error) {
                // The lock file's.
                return Err(Error::new(problems));
            }
            let ages = if has_collision(&tables) {
                match ages(&runtime, &config.table, &setup) {
                    Ok(ages) => ages,
                    Err(e) => {
                        problems.push(to_problem(e, package_dir, config));
                        return Err(Error::new(problems));
                    }
                }
            } else {
                Ages::default()
            };
            if let Some(from) = config.lint_from {
                // Its own up-only replay, never the cache: a finding cannot
                // hide in a cached prefix.
                let lint = migrator
                    .filter()
                    .and_then(|filter| crate::lint::run(&migrations, &migrator, &filter, &setup, from));
                match lint {
                    Ok(found) => problems.extend(found),
                    Err(e) => problems.push(to_problem(e, package_dir, config)),
                }
                if problems.iter().any(Problem::is_error) {
                    return Err(Error::new(problems));
                }
            }
            Ok(Checked {
                ages,
                migrations,
                tables,
                warnings: problems,
                dir: migrations_dir(package_dir, config),
                fingerprints: validated.fingerprints,
                schema_sql,
                cached,
            })
        }
        Err(migrate_runtime::Error::Validation { problems: found }) => {
            problems.extend(found.into_iter().map(|e| to_problem(e, package_dir, config)));
            Err(Error::new(problems))
        }
        Err(e) => {
            problems.push(to_problem(e, package_dir, config));
            Err(Error::new(problems))
        }
    }
}

/// PostgreSQL migrations, without a server: what [`load`] checks (names,
/// order, directives, encodings), and that every script splits into
/// statements the way the runtime will run them, with no string, quoted
/// name, comment, dollar quote or `BEGIN ATOMIC` body left open. The SQL
/// itself is not run (there is no SQLite replay for PostgreSQL's dialect);
/// the generated `schema` module comes from the `snapshot` file when the
/// package has one, else it is empty.
///
/// With `MIGRATE_CHECK_DATABASE_URL` set, every migration and round trip
/// is also replayed on that server (feature `postgres`). With `lint_from`,
/// the lint's PostgreSQL rules judge the statements (no server needed).
fn check_postgres(
    migrations: Vec<Found>,
    mut problems: Vec<Problem>,
    dir: PathBuf,
    config: &Config,
) -> Result<Checked, Error> {
    for m in &migrations {
        for file in std::iter::once(&m.up).chain(m.down.as_ref()) {
            if let Err((line, what)) = migrate_runtime::postgres_statement_lines(&file.text) {
                problems.push(
                    Problem::error(
                        file.display.clone(),
                        line,
                        format!("{what}: PostgreSQL would read the rest of the file as part of it"),
                    )
                    .hint("close it; a dollar quote ends with the same $tag$ it starts with"),
                );
            }
        }
    }
    let mut schema_sql = String::new();
    if !problems.iter().any(Problem::is_error)
        && let Some(url) = check_server()
    {
        let (found, schema) = replay_on_server(&url, &migrations, config);
        problems.extend(found);
        schema_sql = schema.unwrap_or_default();
    }
    if let Some(from) = config.lint_from
        && !problems.iter().any(Problem::is_error)
    {
        // Statement by statement: no server needed.
        problems.extend(crate::lint::run_postgres(&migrations, from));
    }
    if problems.iter().any(Problem::is_error) {
        return Err(Error::new(problems));
    }
    Ok(Checked {
        ages: Ages::default(),
        migrations,
        tables: Vec::new(),
        warnings: problems,
        dir,
        // PostgreSQL's start-up check compares with the schema the
        // runtime records in the tracking table (no build-time fingerprints).
        fingerprints: Vec::new(),
        schema_sql,
        cached: 0,
    })
}

/// The check server's URL (`MIGRATE_CHECK_DATABASE_URL`), when set.
pub(crate) fn check_server() -> Option<String> {
    std::env::var("MIGRATE_CHECK_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

#[cfg(feature = "postgres")]
fn replay_on_server(url: &str, migrations: &[Found], config: &Config) -> (Vec<Problem>, Option<String>) {
    let runtime: Vec<Migration> = migrations.iter().map(Found::to_migration).collect();
    crate::server::replay(url, &runtime, config)
}

#[cfg(not(feature = "postgres"))]
fn replay_on_server(_url: &str, _migrations: &[Found], _config: &Config) -> (Vec<Problem>, Option<String>) {
    (vec![
        Problem::error(
            "MIGRATE_CHECK_DATABASE_URL",
            0,
            "MIGRATE_CHECK_DATABASE_URL is set, but migrate-build was built without its `postgres` feature, so it cannot replay the migrations on that server",
        )
        .hint("add features = [\"postgres\"] to migrate-build in [build-dependencies], or unset MIGRATE_CHECK_DATABASE_URL"),
    ], None)
}

/// A runtime error of the server replay as a problem at its file and line.
#[cfg(feature = "postgres")]
pub(crate) fn sql_problem(e: migrate_runtime::Error) -> Problem {
    to_problem(e, Path::new("."), &Config::default())
}

/// The schema after each migration, replayed up only through the real
/// runner into an in-memory database: when each table and column appeared.
fn ages(
    migrations: &[Migration],
    table: &str,
    setup: &dyn Fn(&rusqlite::Connection) -> rusqlite::Result<()>,
) -> Result<Ages, migrate_runtime::Error> {
    let db_error = |doing: &str| {
        let doing = doing.to_owned();
        move |cause| migrate_runtime::Error::Database { doing, cause }
    };
    let mut conn =
        migrate_runtime::rusqlite::Connection::open_in_memory().map_err(db_error("opening an in-memory database"))?;
    setup(&conn).map_err(db_error("setting up the replay database (functions, replay_setup)"))?;
    // A replay makes what the migrations make, contracts included.
    let migrator = Migrator::new(migrations).table(table).contract(true);
    let mut ages = Ages::default();
    for m in migrations {
        migrator.migrate_to(&mut conn, m.version())?;
        let schema = Schema::read(&conn, table)?;
        ages.record(m.version(), &schema.tables(&conn)?);
    }
    Ok(ages)
}

/// Registers on `conn` a stub of each SQL function of `functions` in
/// `[package.metadata.migrate]`, as the build's replay does before
/// anything runs: `cargo migrate`'s own replays (drift, schema) do the
/// same, so that they replay what the build accepted.
///
/// # Errors
///
/// When SQLite refuses a function.
///
/// # Examples
///
/// ```
/// let mut config = migrate_build::Config::default();
/// config.functions = vec!["normalize/1".to_owned()];
/// let conn = migrate_build::rusqlite::Connection::open_in_memory()?;
/// migrate_build::register_function_stubs(&conn, &config)?;
/// let back: String = conn.query_row("SELECT normalize('x')", [], |r| r.get(0))?;
/// assert_eq!(back, "x");
/// # Ok::<(), migrate_build::rusqlite::Error>(())
/// ```
pub fn register_function_stubs(conn: &rusqlite::Connection, config: &Config) -> rusqlite::Result<()> {
    config.function_stubs().iter().try_for_each(|f| register_stub(conn, f))
}

/// Registers the stub of an app-defined function: deterministic, returns
/// its first argument (NULL without arguments).
fn register_stub(conn: &rusqlite::Connection, f: &Function) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::Value;
    let args = f.args.map_or(-1, i32::from);
    conn.create_scalar_function(
        f.name.as_str(),
        args,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            if ctx.is_empty() {
                Ok(Value::Null)
            } else {
                ctx.get::<Value>(0)
            }
        },
    )
}

fn to_problem(e: migrate_runtime::Error, package_dir: &Path, config: &Config) -> Problem {
    use migrate_runtime::Error as E;
    let advice = e.advice();
    match e {
        E::Sql {
            direction,
            version,
            name,
            file,
            line,
            message,
            ..
        } => {
            let hint = if message.starts_with("no such function: ") {
                "if the app registers this function on its connection, list it in `functions` in [package.metadata.migrate] (e.g. functions = [\"name/1\"]), or register it with Builder::replay_setup in build.rs"
            } else {
                advice.unwrap_or("fix the statement")
            };
            Problem::error(file, line, format!("{direction} migration {version} `{name}` fails: {message}")).hint(hint)
        }
        E::NotReversible { file, difference, .. } => {
            Problem::error(file, 1, format!("the down migration does not undo its up: {difference}")).hint(
                "make the down script restore exactly the schema from before the up, or delete it to make the migration irreversible",
            )
        }
        E::ForeignKey {
            direction,
            version,
            name,
            file,
            table,
            parent,
            rows,
        } => Problem::error(
            file,
            0,
            format!(
                "{direction} migration {version} `{name}` leaves {rows} {} in `{table}` whose foreign key to `{parent}` points at nothing",
                if rows == 1 { "row" } else { "rows" }
            ),
        )
        .hint("delete or fix those rows in the migration, or fix the table rebuild"),
        other => Problem::error(
            display_path(&migrations_dir(package_dir, config), package_dir),
            0,
            other.to_string(),
        ),
    }
}
