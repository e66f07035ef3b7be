//! The progress of `up`, `down` and `redo`, as the runtime reports it.

use anyhow::Result;
use migrate_runtime::{Direction, Event, Script};

use super::project::{Project, runtime_error};
use crate::messages::{self, note, say};

/// Prints each migration as it starts and how long it took, on stderr:
/// `applying 0001 create_users … done in 3 ms`.
pub(super) struct Progress<'a> {
    project: &'a Project<'a>,
    /// The last report of the running backfill (`-- migrate:batch`):
    /// rows walked, rows updated, batches.
    backfill: std::cell::Cell<Option<(u64, u64, u64)>>,
}

impl<'a> Progress<'a> {
    /// Progress of the migrations of `project`.
    pub(super) fn new(project: &'a Project<'a>) -> Self {
        Self {
            project,
            backfill: std::cell::Cell::new(None),
        }
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
                let on_interrupt = if let Some(rows) = script.and_then(Script::batch) {
                    format!(
                        "interrupted (Ctrl-C) while {verb} {what}, a batched backfill (-- migrate:batch {rows}): the batches committed so far stay done, with their progress; run the same command again to resume after the last one (it is recorded as applied when its last batch is done). The migrations before it are unchanged"
                    )
                } else if script.is_some_and(Script::no_transaction) {
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
            Event::Backfill {
                rows_done,
                rows_total,
                rows_updated,
                batches,
                rate,
                ..
            } => {
                if self.backfill.get().is_none() && batches > 0 {
                    messages::interject(
                        messages::Label::Note,
                        format_args!(
                            "resuming the backfill after batch {batches}: {rows_done} of {rows_total} rows were done by an earlier run"
                        ),
                    );
                }
                self.backfill.set(Some((rows_done, rows_updated, batches)));
                let percent = (rows_done * 100).checked_div(rows_total).unwrap_or(100);
                messages::progress_status(format!(
                    "{rows_done}/{rows_total} rows ({percent}%), {rows_updated} updated, {} rows/s",
                    rate.round()
                ));
            }
            Event::Finished { duration, .. } => {
                let rows = self
                    .backfill
                    .take()
                    .map(|(walked, updated, batches)| {
                        let batches = if batches == 1 {
                            "1 batch".to_owned()
                        } else {
                            format!("{batches} batches")
                        };
                        format!(" ({walked} rows in {batches}, {updated} updated)")
                    })
                    .unwrap_or_default();
                messages::end_progress(format_args!("done in {}{rows}", crate::output::duration(duration)));
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
