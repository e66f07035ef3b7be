//! The progress of `up`, `down` and `redo`, as the runtime reports it.

use anyhow::Result;
use migrate_runtime::{Direction, Event, Script};

use super::project::{Project, runtime_error};
use crate::messages::{self, note, say};

/// Prints each migration as it starts and how long it took, on stderr:
/// `applying 0001 create_users … done in 3 ms`.
pub(super) struct Progress<'a> {
    project: &'a Project<'a>,
}

impl<'a> Progress<'a> {
    /// Progress of the migrations of `project`.
    pub(super) fn new(project: &'a Project<'a>) -> Self {
        Self { project }
    }

    /// Says what the runtime reports: waiting for a lock, a migration
    /// started (with what Ctrl-C would leave), a migration finished.
    pub(super) fn event(&self, event: &Event<'_>) {
        match *event {
            Event::Waiting { timeout } => {
                say!(
                    "waiting up to {}s for another process's lock on the database …",
                    timeout.as_secs()
                );
            }
            Event::Started { migration, direction } => {
                let (verb, script) = match direction {
                    Direction::Up => ("applying", Some(migration.up())),
                    Direction::Down => ("rolling back", migration.down()),
                };
                let what = format!(
                    "migration {} {}",
                    self.project.version(migration.version()),
                    migration.name()
                );
                let on_interrupt = if script.is_some_and(Script::no_transaction) {
                    format!(
                        "interrupted (Ctrl-C) while {verb} {what}, which runs outside a transaction (-- migrate:no-transaction): the statements that finished stay done, and it is not recorded; check the database before running it again. The migrations before it are unchanged"
                    )
                } else {
                    let stays = match direction {
                        Direction::Up => "not applied",
                        Direction::Down => "still applied",
                    };
                    let rolls_back = if self.project.database.postgres_url().is_some() {
                        "the server rolls it back"
                    } else {
                        "SQLite rolls it back; the next command that opens the database finishes that"
                    };
                    format!(
                        "interrupted (Ctrl-C) while {verb} {what}: its transaction was not committed, so it is {stays} ({rolls_back}). The migrations before it are unchanged"
                    )
                };
                let text = format!(
                    "{verb} {} {}",
                    self.project.version(migration.version()),
                    migration.name()
                );
                messages::begin_progress(text, on_interrupt);
            }
            Event::InvalidIndexes { indexes } => {
                note!(
                    "{} INVALID (a CREATE INDEX CONCURRENTLY failed or was interrupted, or one is being built right now): it takes writes but answers no query; drop it with DROP INDEX CONCURRENTLY and build it again",
                    indexes.join(", ")
                );
            }
            Event::Notice { notice, .. } => {
                let mut text = format!("{}: {}", notice.severity, notice.message);
                for (what, value) in [("detail", &notice.detail), ("hint", &notice.hint)] {
                    if let Some(value) = value {
                        text.push_str(&format!(" ({what}: {value})"));
                    }
                }
                messages::interject(messages::Label::Note, format_args!("the server said: {text}"));
            }
            Event::Held { migration } => {
                let of = migration
                    .contract_of()
                    .map(|v| format!(" of {}", self.project.version(v)))
                    .unwrap_or_default();
                note!(
                    "held {} {}: a contract migration{of} (-- migrate:phase contract), not applied, nor anything after it; {}",
                    self.project.version(migration.version()),
                    migration.name(),
                    migrate_runtime::CONTRACT_HINT
                );
            }
            Event::Finished { duration, .. } => {
                messages::end_progress(format_args!("done in {}", crate::output::duration(duration)));
            }
            Event::Drift { differences } => {
                // PostgreSQL: the runtime's check, with --allow-drift or drift = "warn".
                for d in super::drift::sorted(differences) {
                    messages::warning!("drift: {d}");
                }
                messages::warning!(
                    "the database's schema is not what its applied migrations make; going on (--allow-drift, or drift = \"warn\" in [package.metadata.migrate])"
                );
            }
            _ => {}
        }
    }

    /// Ends a line left open by a failed migration, and words a lock
    /// timeout in the CLI's terms.
    pub(super) fn finish<T>(&self, result: migrate_runtime::Result<T>) -> Result<T> {
        result.map_err(|e| {
            messages::end_progress("failed");
            runtime_error(e, self.project)
        })
    }
}
