//! A small recruit tracker: the example app of cargo-migrate.
//!
//! At start-up it applies the migrations embedded by its build script (see
//! `build.rs` and `migrations/`) to its SQLite database, says what it
//! applied, and then does its job:
//!
//! ```text
//! cargo run -p example-app -- add --first-name Ada --surname Lovelace --id-number 1815 \
//!     --email ada@example.com --chat-name ada --github-name adal
//! cargo run -p example-app -- list
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use migrate_runtime::rusqlite::{self, Connection, params};

mod migrations {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

use migrations::schema::recruits;

/// The columns `add` writes and `list` shows after the id, in this order.
const FIELDS: [&str; 6] = [
    recruits::FIRST_NAME,
    recruits::SURNAME,
    recruits::ID_NUMBER,
    recruits::PERSONAL_EMAIL_ADDRESS,
    recruits::CHAT_NAME,
    recruits::GITHUB_NAME,
];

/// Keeps track of recruits in an SQLite database.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The SQLite database file (created when it does not exist). The
    /// default, `recruits.db` in the example-app package directory, is also
    /// the `database` of its `[package.metadata.migrate]`, so
    /// `cargo migrate -p example-app status` looks at the same file.
    #[arg(long, global = true, env = "RECRUITS_DB", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/recruits.db"))]
    database: PathBuf,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Adds a recruit.
    Add {
        /// First name.
        #[arg(long)]
        first_name: String,
        /// Surname.
        #[arg(long)]
        surname: String,
        /// National ID number (unique).
        #[arg(long)]
        id_number: String,
        /// Personal email address (unique).
        #[arg(long)]
        email: String,
        /// Name in the team chat.
        #[arg(long)]
        chat_name: Option<String>,
        /// GitHub user name.
        #[arg(long)]
        github_name: Option<String>,
    },
    /// Lists every recruit (the default).
    List,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Adds a recruit (first name, surname, ID number, email; chat and GitHub
/// names) and returns its id.
fn add(
    conn: &Connection,
    recruit: [&str; 4],
    chat_name: Option<&str>,
    github_name: Option<&str>,
) -> rusqlite::Result<i64> {
    let sql = format!(
        "INSERT INTO {} ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        recruits::TABLE,
        FIELDS.join(", ")
    );
    let [first_name, surname, id_number, email] = recruit;
    conn.execute(
        &sql,
        params![first_name, surname, id_number, email, chat_name, github_name],
    )?;
    Ok(conn.last_insert_rowid())
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let mut conn = Connection::open(&cli.database)
        .map_err(|e| format!("cannot open the database {}: {e}", cli.database.display()))?;
    conn.pragma_update(None, "foreign_keys", true)?;

    let report = migrations::apply(&mut conn)?;
    for step in report.applied() {
        eprintln!(
            "migrated {}: applied {:04} {} ({} ms)",
            cli.database.display(),
            step.version,
            step.name,
            step.duration.as_millis()
        );
    }
    if report.is_empty() {
        eprintln!(
            "{} is up to date (version {}, {})",
            cli.database.display(),
            migrations::Version::LATEST.number(),
            migrations::Version::LATEST.name()
        );
    }

    match cli.command.unwrap_or(Command::List) {
        Command::Add {
            first_name,
            surname,
            id_number,
            email,
            chat_name,
            github_name,
        } => {
            let recruit = [&first_name, &surname, &id_number, &email].map(String::as_str);
            let id = add(&conn, recruit, chat_name.as_deref(), github_name.as_deref())
                .map_err(|e| format!("cannot add {first_name} {surname}: {e} (ID numbers and emails are unique)"))?;
            println!("added {first_name} {surname} (#{id})");
        }
        Command::List => {
            let sql = format!(
                "SELECT {}, {} FROM {} ORDER BY {}",
                recruits::ID,
                FIELDS.join(", "),
                recruits::TABLE,
                recruits::ID,
            );
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map([], |r| {
                Ok(format!(
                    "#{} {} {} id={} email={} chat={} github={}",
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                    r.get::<_, Option<String>>(6)?.unwrap_or_default(),
                ))
            })?;
            let mut n = 0;
            for row in rows {
                println!("{}", row?);
                n += 1;
            }
            if n == 0 {
                println!("no recruits yet: add one with `example-app add --help`");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_address_belongs_to_one_recruit() {
        // A database of this test's own, with every migration applied.
        let conn = migrations::test_db();
        add(&conn, ["Ada", "Lovelace", "1815", "ada@example.com"], None, None).unwrap();
        let again = add(&conn, ["Ada", "Byron", "1816", "ada@example.com"], None, None);
        assert!(again.is_err(), "0004 makes personal email addresses unique");
    }

    #[test]
    fn each_test_starts_from_an_empty_table() {
        let conn = migrations::test_db();
        let count = |conn: &Connection| {
            conn.query_row(&format!("SELECT count(*) FROM {}", recruits::TABLE), [], |r| {
                r.get::<_, i64>(0)
            })
        };
        assert_eq!(count(&conn).unwrap(), 0);
        add(&conn, ["Grace", "Hopper", "1906", "grace@example.com"], None, None).unwrap();
        assert_eq!(count(&conn).unwrap(), 1);
        assert_eq!(count(&migrations::test_db()).unwrap(), 0, "another test's database");
        assert!(migrations::migrator().pending(&conn).unwrap().is_empty());
    }
}
