//! The command line as clap parses it. [`crate::settings`] turns it into the
//! validated settings the commands use.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Cargo runs `cargo-migrate migrate …`: the one `migrate` variant takes the
/// extra argument.
#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo")]
pub enum Cli {
    /// Create, check, apply, inspect and roll back SQL schema migrations.
    Migrate(Migrate),
}

/// `cargo migrate`: the global options and the command.
#[derive(Debug, Args)]
#[command(
    version,
    about = "Create, check, apply, inspect and roll back SQL schema migrations.",
    long_about = "Create, check, apply, inspect and roll back SQL schema migrations.\n\n\
        Migrations are SQL files in the package's migrations directory; `cargo build` checks \
        them and embeds them in the app, which applies them at start-up. These commands \
        work on the same files, with the same checks, tracking table and checksums.",
    after_help = "Database URLs: sqlite:PATH, sqlite://PATH, sqlite::memory: or a plain file path; \
        in sqlite: URLs %XX escapes are decoded and ?mode=ro|rw|rwc|memory is honoured. \
        A relative path in --database or DATABASE_URL is relative to the current directory; \
        in a .env file or [package.metadata.migrate], to that file's directory. \
        PostgreSQL: postgres://USER:PASSWORD@HOST:PORT/DB or postgresql://…, with host=/dir for a unix socket \
        and sslmode=disable|prefer|require|verify-ca|verify-full; the PG* environment variables and ~/.pgpass \
        fill in what the URL leaves out.\n\n\
        Exit status: 0 on success, 1 on error (and from `diff` on drift), 2 on a usage error, \
        3 from `status --exit-code` when the database is not up to date, 130 on Ctrl-C."
)]
pub struct Migrate {
    /// Path to the package's Cargo.toml [default: the package in the current directory]
    #[arg(long, global = true, value_name = "PATH", help_heading = "Package and database")]
    pub manifest_path: Option<PathBuf>,

    /// The workspace package whose migrations to use
    #[arg(
        short,
        long,
        global = true,
        value_name = "NAME",
        help_heading = "Package and database"
    )]
    pub package: Option<String>,

    /// The database [default: $DATABASE_URL, else DATABASE_URL in .env, else `database` in [package.metadata.migrate]]
    #[arg(long, global = true, value_name = "URL", help_heading = "Package and database")]
    pub database: Option<String>,

    /// Which backend's migrations, when the package keeps one directory per backend [default: the database URL's; `new`, `check` and `lock` work on every directory]
    #[arg(long, global = true, value_name = "BACKEND", help_heading = "Package and database")]
    pub backend: Option<BackendArg>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `--backend`: `sqlite` or `postgres` (the variants have no doc
/// comments: clap would list them as a long help of every command).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)]
pub enum BackendArg {
    Sqlite,
    #[value(alias = "postgresql")]
    Postgres,
}

impl BackendArg {
    /// The build crate's name for it.
    pub fn backend(self) -> migrate_build::Backend {
        match self {
            Self::Sqlite => migrate_build::Backend::Sqlite,
            Self::Postgres => migrate_build::Backend::Postgres,
        }
    }
}

impl Migrate {
    /// The output format the command was asked for: `--format` of `list`
    /// and `status`, text for the others. Errors are written in it too.
    pub fn format(&self) -> Format {
        match &self.command {
            Command::List(ListArgs { format })
            | Command::Status(StatusArgs { format, .. })
            | Command::Diff(DiffArgs { format, .. })
            | Command::Lint(LintArgs { format, .. }) => *format,
            Command::Schema(SchemaArgs { format, .. }) if *format == SchemaFormat::Json => Format::Json,
            _ => Format::Text,
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set the package up: migrations directory, build.rs, dependencies and config
    Init(InitArgs),
    /// Create the next migration: {version}_{name}.up.sql and .down.sql
    New(NewArgs),
    /// List the migrations on disk
    List(ListArgs),
    /// Show which migrations the database has applied, and which are pending
    Status(StatusArgs),
    /// Apply the pending migrations
    Up(UpArgs),
    /// Roll back applied migrations (the newest one by default)
    Down(DownArgs),
    /// Roll back the newest applied migration and apply it again
    Redo(RedoArgs),
    /// Check the migrations exactly as `cargo build` does (for CI and pre-commit hooks)
    #[command(
        long_about = "Check the migrations exactly as `cargo build` does (for CI and pre-commit hooks).\n\n\
        With --against REF (the base branch in CI, e.g. origin/main), also compare with that git ref: \
        a migration present at REF whose file changed, or that was removed, is an error (databases may \
        have applied it), and so is a new migration numbered at or below REF's newest (it would be \
        applied out of order, or collide at the merge). Uses the `git` binary."
    )]
    Check(CheckArgs),
    /// Move unapplied migrations with a duplicate or out-of-order version to the end
    #[command(
        long_about = "Move unapplied migrations with a duplicate or out-of-order version to the end.\n\n\
        After merging two branches that both added the same version, the migrations that are not \
        applied yet get the next free versions (their .up.sql and .down.sql files are renamed, with \
        `git mv` when git tracks them). With a database (--database, DATABASE_URL or the config's \
        `database` when that file exists) \"applied\" is read from it, and a migration it has applied \
        is never renumbered. Without one, of two files that share a version the one added later \
        (by git history, else by modification time) moves."
    )]
    Renumber(RenumberArgs),
    /// Compare the database's schema with what its applied migrations make (drift)
    #[command(
        long_about = "Compare the database's schema with what its applied migrations make (drift).\n\n\
        The expected schema is the replay, in memory, of exactly the migrations the database's \
        tracking table records. One line per difference, grouped by table; a column dropped and \
        another added at the same position with the same type is reported as a likely rename. \
        Exit status 0: no drift; 1: drift (or an error, whose last line starts with `error:`). \
        Reads the database only, except `--emit`, which records the migration it writes as applied.",
        after_help = "Tables matching the config's `ignore` patterns are left out."
    )]
    Diff(DiffArgs),
    /// Print the schema after the last migration (or of a live database with --database)
    #[command(
        long_about = "Print the schema after the last migration (or of a live database with --database).\n\n\
        Without --database, the schema the migrations make: every migration on disk replayed in an \
        in-memory database (DATABASE_URL and the config's `database` are not used). With --database, \
        that database's schema, read only. As SQL that recreates it (no sqlite3 binary needed), as \
        JSON (the schema model), or as a Mermaid erDiagram, which GitHub renders."
    )]
    Schema(SchemaArgs),
    /// Write migrations/migrate.lock again from the migration files (config `lock_file = true`)
    #[command(
        long_about = "Write migrations/migrate.lock again from the migration files (config `lock_file = true`).\n\n\
        The lock file has a line per migration (version, name, checksums of its up and down files) and a \
        chained total on its first line, so two branches that each add a migration conflict in it when they \
        are merged. `cargo build` and `cargo migrate check` fail when it does not match the files; `new` and \
        `renumber` keep it current. Run this after writing a new migration's SQL, or after a deliberate edit."
    )]
    Lock,
    /// Re-stamp applied migrations whose files changed only in comments or white space
    #[command(
        long_about = "Re-stamp applied migrations whose files changed only in comments or white space.\n\n\
        For each migration the database applied whose checksum no longer matches its file, the applied \
        text is looked up in the file's git history (by its checksum) and compared with the file statement \
        by statement, token by token (comments, white space and the letter case of keywords aside). When \
        they are the same, the tracking table gets the new checksum, and the old one with the time in its \
        column `repaired`. Otherwise nothing is changed, and the error names the first statement that differs."
    )]
    Repair(RepairArgs),
    /// Replace migrations 1 to N with one baseline that makes the same schema
    #[command(
        long_about = "Replace migrations 1 to N with one baseline that makes the same schema.\n\n\
        The baseline, {N}_baseline.sql, holds the schema after migration N as SQL (the schema model's, as \
        `cargo migrate schema` prints it) under the directive `-- migrate:squashes 1-N DIGEST`, which records \
        the versions it replaces and a digest of their names and checksums. Databases at N or later accept \
        it as applied; a new database applies it; one between 1 and N-1 is refused, naming the versions it \
        lacks. Before anything is written, the baseline is replayed and its schema compared with the \
        migrations'. On PostgreSQL the replays run in scratch databases on MIGRATE_CHECK_DATABASE_URL, else \
        on the server of --database, DATABASE_URL or the config's `database`; what the baseline cannot \
        recreate (other schemas, comments, grants, policies, partitions, …) is refused by name."
    )]
    Squash(SquashArgs),
    /// Create, drop or reset the database itself (the SQLite file, or the database on the PostgreSQL server)
    #[command(
        long_about = "Create, drop or reset the database itself (the SQLite file, or the database on the PostgreSQL server).\n\n\
        `create` makes an empty database when there is none (on PostgreSQL, CREATE DATABASE through the \
        server's `postgres` database). `drop` deletes it: the SQLite file with its journal, or DROP DATABASE. \
        `reset` drops, creates and applies every migration. `drop` and `reset` destroy every row: on a \
        PostgreSQL server that is not on this machine they refuse without --force."
    )]
    Database(DatabaseArgs),
    /// Convert another tool's migrations into ours, or take over a database's history from it
    #[command(
        long_about = "Convert another tool's migrations into ours, or take over a database's history from it.\n\n\
        Without --database: reads SRC in that tool's layout and writes the same migrations, in the \
        same order, into the (empty) migrations directory, numbered 1, 2, 3, …, with their downs and \
        no-transaction markers, and the mapping of versions in migrations/imported.toml; then checks \
        them as `cargo migrate check` does. What cannot be converted (code migrations, repeatable \
        migrations, placeholders) is listed file by file, and nothing is written unless --partial.\n\n\
        With --database: reads that tool's tracking table in the database, maps the migrations it \
        applied through migrations/imported.toml (importing SRC first when the directory is empty), \
        checks that the database's schema is exactly what those migrations make, and records them as \
        applied in our tracking table, in one transaction, without running anything. The old \
        tracking table is left as it was. Only --database does this: DATABASE_URL and the config's \
        `database` are not used, so a .env file left by the other tool takes over nothing by surprise."
    )]
    Import(ImportArgs),
    /// Record migrations 1..N as applied in a database made without them, after checking its schema
    #[command(
        long_about = "Record migrations 1..N as applied in a database made without them, after checking its schema.\n\n\
        For a database that no migration tool managed: its schema must be exactly what migrations \
        1 to N make (the replay), else the differences are printed and nothing is recorded. \
        --force records anyway (the rows say so: duration_ms = -2). Nothing is run."
    )]
    Baseline(BaselineArgs),
    /// Lint the migrations: changes that lose data, break running code, or may fail on production data
    #[command(
        long_about = "Lint the migrations: changes that lose data, break running code, or may fail on production data.\n\n\
        Runs the checks of `cargo build` (one pipeline) with the lint on from `lint_from` in \
        [package.metadata.migrate], or from the first migration when it is not set (the build \
        lints only when it is set). Each finding names its rule (MS001…), file and line; errors \
        exit 1. Waive a rule for one migration with `-- migrate:allow MS00N reason` at the top \
        of its up script. On SQLite the rules compare the schema before and after each migration \
        (an in-memory replay); on PostgreSQL they read the statements, knowing the tables the \
        earlier migrations made, and need no server. `--explain ID` says what a rule finds and \
        the safe way."
    )]
    Lint(LintArgs),
}

/// `database`.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// What to do with the database.
    #[command(subcommand)]
    pub action: DatabaseAction,
}

/// `database create|drop|reset`.
#[derive(Debug, Subcommand)]
pub enum DatabaseAction {
    /// Create the database when it does not exist (an empty SQLite file, or CREATE DATABASE)
    Create,
    /// Drop the database and everything in it (the SQLite file and its journal, or DROP DATABASE)
    Drop(DropArgs),
    /// Drop the database, create it again and apply every migration
    Reset(ResetArgs),
}

/// `database drop`.
#[derive(Debug, Args)]
pub struct DropArgs {
    /// Drop a database on a PostgreSQL server that is not on this machine, and end the other sessions connected to it
    #[arg(long)]
    pub force: bool,
}

/// `database reset`.
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// Reset a database on a PostgreSQL server that is not on this machine, and end the other sessions connected to it
    #[arg(long)]
    pub force: bool,

    /// Options of the runner.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `squash`.
#[derive(Debug, Args)]
pub struct SquashArgs {
    /// The last version to squash: migrations 1 to this one become one baseline
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub to: u64,

    /// Print the baseline and say which files it would replace, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `repair`.
#[derive(Debug, Args)]
pub struct RepairArgs {
    /// Say what would be repaired, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also compare with this git ref (a branch, tag or commit): applied-elsewhere migrations must be unchanged, new ones numbered above its newest
    #[arg(long, value_name = "REF")]
    pub against: Option<String>,
}

/// The tools `import` converts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Tool {
    // Plain comments: the names say it.
    Sqlx,
    Diesel,
    Refinery,
    Dbmate,
    Goose,
    GolangMigrate,
    Flyway,
    RusqliteMigration,
}

/// `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The tool the migrations (and databases) come from
    #[arg(long, value_enum, value_name = "TOOL")]
    pub from: Tool,

    /// The directory in that tool's layout [default: its usual place: migrations, db/migrations (dbmate), sql (flyway)]
    #[arg(value_name = "SRC")]
    pub src: Option<std::path::PathBuf>,

    /// Write the migrations that can be converted even when others cannot (they are listed)
    #[arg(long)]
    pub partial: bool,

    /// How long to wait for another process's lock on the database (with --database), in seconds
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub lock_timeout: u64,
}

/// `baseline`.
#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// The newest migration the database already has: 1..=VERSION are recorded as applied
    #[arg(long, value_name = "VERSION", value_parser = clap::value_parser!(u64).range(1..))]
    pub version: u64,

    /// Record even when the schema differs from what the migrations make (the differences are printed as warnings)
    #[arg(long)]
    pub force: bool,

    /// How long to wait for another process's lock on the database, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub lock_timeout: u64,
}

/// `lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Explain a rule (what it finds, why, the safe alternative) and exit
    #[arg(long, value_name = "ID")]
    pub explain: Option<String>,
}

/// `diff`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("action").args(["sql", "emit"])))]
pub struct DiffArgs {
    /// Output format (of the differences; not of --sql or --emit)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Print the SQL that would bring the database back to its migrations' schema, and run nothing
    #[arg(long, conflicts_with_all = ["emit", "format"])]
    pub sql: bool,

    /// Adopt the hand changes: write the next migration NAME that makes them, and record it as applied in the database
    #[arg(long, value_name = "NAME", conflicts_with = "format")]
    pub emit: Option<String>,

    /// With --sql or --emit: write DROP statements (and table rebuilds that lose columns) as live SQL instead of commented out
    #[arg(long, requires = "action")]
    pub allow_drop: bool,

    /// How long to wait while another process commits a write to the database, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub lock_timeout: u64,
}

/// Formats of `schema`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum SchemaFormat {
    // The CREATE statements that recreate it.
    #[default]
    Sql,
    // The schema model.
    Json,
    // A Mermaid erDiagram.
    Mermaid,
}

/// `schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = SchemaFormat::Sql)]
    pub format: SchemaFormat,

    /// Write the schema snapshot file (config `snapshot`) instead of printing
    #[arg(long, conflicts_with = "format")]
    pub write: bool,
}

/// `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The cargo-migrate repository to take migrate-runtime and migrate-build from (path dependencies)
    /// [default: the repository this binary was built from]
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
}

/// `new`.
#[derive(Debug, Args)]
#[command(
    after_help = "Recipes (--recipe) write the numbered steps of a change that one migration cannot make safely, \
each with its down, from the schema after the last migration:\n  \
cargo migrate new --recipe add-required-unique-column TABLE COLUMN [--type TEXT] [--backfill SQL_EXPR]\n  \
cargo migrate new --recipe rename-column TABLE OLD NEW"
)]
pub struct NewArgs {
    /// What the migration does, in a few words ("create users table"); it becomes the file name in snake_case
    #[arg(value_name = "NAME", required_unless_present = "recipe")]
    pub name: Option<String>,

    /// With --recipe: the recipe's other arguments (COLUMN, or OLD NEW)
    #[arg(value_name = "ARGS")]
    pub args: Vec<String>,

    /// Write a single up-only {version}_{name}.sql (an irreversible migration)
    #[arg(long, conflicts_with = "recipe")]
    pub no_down: bool,

    /// Write the steps of a multi-step change (NAME and ARGS are then the recipe's arguments)
    #[arg(long, value_enum, value_name = "RECIPE")]
    pub recipe: Option<Recipe>,

    /// add-required-unique-column: the new column's type [default: TEXT]
    #[arg(long = "type", value_name = "TYPE", requires = "recipe")]
    pub column_type: Option<String>,

    /// add-required-unique-column: the SQL expression that fills the column in existing rows [default: a placeholder unique per row]
    #[arg(long, value_name = "SQL_EXPR", requires = "recipe")]
    pub backfill: Option<String>,
}

/// The recipes of `new --recipe`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Recipe {
    // Plain comments, not doc comments: clap would turn them into a long
    // list in --help; the after_help of `new` shows each recipe's arguments.
    // TABLE COLUMN: add nullable, backfill, unique index, NOT NULL (four migrations).
    AddRequiredUniqueColumn,
    // TABLE OLD NEW: an expand (new column, triggers keeping both in step, backfill) and its contract.
    RenameColumn,
}

/// Output formats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    // Plain comments, not doc comments: clap would show them as a long list
    // in --help where `[possible values: text, json]` says it all.
    // Aligned columns for people.
    #[default]
    Text,
    // One JSON object for scripts.
    Json,
}

/// `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Exit with status 3 when a migration is pending, modified or unknown (for CI; 1 is a failure)
    #[arg(long)]
    pub exit_code: bool,

    /// How long to wait while another process commits a write to the database, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub lock_timeout: u64,
}

/// The options of the commands that change the database.
#[derive(Clone, Debug, Args)]
pub struct RunArgs {
    /// Apply a pending migration even when a higher version is already applied
    #[arg(long)]
    pub allow_out_of_order: bool,

    /// Go on when the database has applied migrations that are not on disk
    #[arg(long)]
    pub allow_unknown: bool,

    /// Go on when an applied migration's file or name changed since it was applied
    #[arg(long)]
    pub allow_modified: bool,

    /// How long to wait for another process's lock on the database, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub lock_timeout: u64,

    /// Go on when the database's schema is not what its applied migrations make (the differences are printed as warnings)
    #[arg(long)]
    pub allow_drift: bool,
}

/// `up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Apply the pending migrations up to and including this version
    #[arg(long, value_name = "VERSION", value_parser = clap::value_parser!(u64).range(1..))]
    pub to: Option<u64>,

    /// Print the SQL that would run, and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Apply contract migrations (`-- migrate:phase contract`) too, which
    /// `up` otherwise holds: run it once every running instance has the
    /// new code
    #[arg(long)]
    pub contract: bool,

    /// Options of the runner.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `down`.
#[derive(Debug, Args)]
pub struct DownArgs {
    /// Roll back every migration above this version (0 rolls back all of them)
    #[arg(long, value_name = "VERSION", conflicts_with = "steps")]
    pub to: Option<u64>,

    /// Roll back this many migrations, newest first [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<u64>,

    /// Options of the runner.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `redo`.
#[derive(Debug, Args)]
pub struct RedoArgs {
    /// Options of the runner.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `renumber`.
#[derive(Debug, Args)]
pub struct RenumberArgs {
    /// Say what would be renamed, and rename nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Renumber every migration 1, 2, 3, … in its current order (timestamp versions, gaps)
    #[arg(long)]
    pub consecutive: bool,
    /// The migrations at this git ref (the base branch) keep their versions; the others that collide with them move to the end
    #[arg(long, value_name = "REF", conflicts_with = "consecutive")]
    pub against: Option<String>,
}

/// The arguments cargo passes, made to work when the binary is run directly
/// too: `cargo-migrate status` is read as `cargo-migrate migrate status`.
pub fn normalize_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut args: Vec<_> = args.into_iter().collect();
    if args.get(1).is_none_or(|a| a != "migrate") {
        args.insert(1.min(args.len()), "migrate".into());
    }
    args
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn runs_directly_and_under_cargo() {
        let parse = |args: &[&str]| Cli::try_parse_from(normalize_args(args.iter().map(Into::into)));
        let Cli::Migrate(m) = parse(&["cargo-migrate", "migrate", "status"]).unwrap();
        assert!(matches!(m.command, Command::Status(_)));
        let Cli::Migrate(m) = parse(&["cargo-migrate", "up", "--to", "3"]).unwrap();
        assert!(matches!(m.command, Command::Up(UpArgs { to: Some(3), .. })));
        let Cli::Migrate(m) = parse(&["cargo-migrate", "migrate", "down", "--database", "x.db"]).unwrap();
        assert_eq!(m.database.as_deref(), Some("x.db"));
    }

    #[test]
    fn down_takes_to_or_steps() {
        let parse = |args: &[&str]| Cli::try_parse_from(normalize_args(args.iter().map(Into::into)));
        assert!(parse(&["cargo-migrate", "down", "--to", "0", "--steps", "2"]).is_err());
        assert!(parse(&["cargo-migrate", "down", "--steps", "0"]).is_err());
        assert!(parse(&["cargo-migrate", "down", "--to", "0"]).is_ok());
    }
}
