//! The checks of `cargo build` and `cargo migrate check`: one function, so
//! the two can never disagree.

use std::path::{Path, PathBuf};

use migrate_runtime::model;
use migrate_runtime::schema::{Schema, Table};
use migrate_runtime::{Migration, Migrator};

use crate::config::Config;
use crate::naming::{Ages, has_collision};
use crate::problem::{Error, Problem};
use crate::scan::{Found, scan};

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
    let scan = scan(&dir, package_dir, config.width);
    if scan.has_errors() {
        return Err(Error::new(scan.problems));
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
    replay(package_dir, config)
}

/// The scan and the replay.
fn replay(package_dir: &Path, config: &Config) -> Result<Checked, Error> {
    let Loaded {
        migrations,
        warnings: mut problems,
        ..
    } = load(package_dir, config)?;
    let runtime: Vec<Migration> = migrations.iter().map(Found::to_migration).collect();
    let migrator = Migrator::new(&runtime).table(&config.table).ignore(&config.ignore);
    // The runtime's filter, so the fingerprints are the ones it compares.
    let replay = migrator.filter().and_then(|filter| {
        migrator.check_with(|conn, schema| Ok((schema.tables(conn)?, model::schema_sql(conn, &filter)?)))
    });
    match replay {
        Ok((validated, (tables, schema_sql))) => {
            problems.extend(validated.warnings.into_iter().map(|w| {
                let hint = w.hint;
                Problem::warning(w.file, w.line, w.message).hint(hint)
            }));
            let ages = if has_collision(&tables) {
                match ages(&runtime, &config.table) {
                    Ok(ages) => ages,
                    Err(e) => {
                        problems.push(to_problem(e, package_dir, config));
                        return Err(Error::new(problems));
                    }
                }
            } else {
                Ages::default()
            };
            Ok(Checked {
                ages,
                migrations,
                tables,
                warnings: problems,
                dir: migrations_dir(package_dir, config),
                fingerprints: validated.fingerprints,
                schema_sql,
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

/// The schema after each migration, replayed up only through the real
/// runner into an in-memory database: when each table and column appeared.
fn ages(migrations: &[Migration], table: &str) -> Result<Ages, migrate_runtime::Error> {
    let mut conn =
        migrate_runtime::rusqlite::Connection::open_in_memory().map_err(|cause| migrate_runtime::Error::Database {
            doing: "opening an in-memory database".to_owned(),
            cause,
        })?;
    let migrator = Migrator::new(migrations).table(table);
    let mut ages = Ages::default();
    for m in migrations {
        migrator.migrate_to(&mut conn, m.version())?;
        let schema = Schema::read(&conn, table)?;
        ages.record(m.version(), &schema.tables(&conn)?);
    }
    Ok(ages)
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
        } => Problem::error(file, line, format!("{direction} migration {version} `{name}` fails: {message}"))
            .hint(advice.unwrap_or("fix the statement")),
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
            crate::scan::display_path(&migrations_dir(package_dir, config), package_dir),
            0,
            other.to_string(),
        ),
    }
}
