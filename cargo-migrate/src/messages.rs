//! Everything the CLI says on standard error, written from this one module:
//! plain status lines, `note:`, `warning:` and `error:` lines, the problems
//! of a migrations directory, and the progress of a running migration.
//!
//! A failed write to standard error is ignored (unlike `eprintln!`, which
//! panics): there is nobody left to tell.

use std::fmt;
use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use migrate_build::{Problem, Severity};
use serde::Serialize;

/// The label in front of a line of standard error (and the `severity` of
/// a problem in JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// `note: `: something worth knowing, nothing wrong.
    Note,
    /// `warning: `: probably a mistake, but the command goes on.
    Warning,
    /// `error: `: the command failed.
    Error,
}

impl Label {
    /// The word, as printed before the colon.
    pub fn word(self) -> &'static str {
        match self {
            Self::Note => "note",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }

    /// The label of a problem's severity (anything that does not fail the
    /// build is a warning).
    pub fn of(severity: Severity) -> Self {
        if severity == Severity::Error {
            Self::Error
        } else {
            Self::Warning
        }
    }
}

/// Writes one line to standard error, with `label: ` in front when given.
/// A progress line left open is ended first.
pub fn line(label: Option<Label>, text: impl fmt::Display) {
    if let Some(open) = take_progress() {
        open.end(None);
    }
    let mut err = std::io::stderr().lock();
    let _ = match label {
        Some(label) => writeln!(err, "{}: {text}", label.word()),
        None => writeln!(err, "{text}"),
    };
}

/// A `label: text` line written while a progress line is open (a server's
/// NOTICE during a migration): ends that line, writes this one, and begins
/// the progress line again, so its `done in …` still follows.
pub fn interject(label: Label, text: impl fmt::Display) {
    let open = take_progress().map(|open| {
        let again = (open.text.clone(), open.on_interrupt.clone());
        open.end(None);
        again
    });
    line(Some(label), text);
    if let Some((text, on_interrupt)) = open {
        begin_progress(text, on_interrupt);
    }
}

/// A plain status line on standard error: `applied 2 migrations in 3 ms`.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::messages::line(None, format_args!($($arg)*))
    };
}

/// A `note: …` line on standard error.
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::messages::line(Some($crate::messages::Label::Note), format_args!($($arg)*))
    };
}

/// A `warning: …` line on standard error.
macro_rules! warning {
    ($($arg:tt)*) => {
        $crate::messages::line(Some($crate::messages::Label::Warning), format_args!($($arg)*))
    };
}

pub(crate) use {note, say, warning};

/// Prints each problem on a line of its own: `error: path:line: message (help: …)`.
pub fn problems(problems: &[Problem]) {
    for p in problems {
        line(Some(Label::of(p.severity)), p);
    }
}

/// The problems of a migrations directory (or of a config) that stop a
/// command. The CLI prints each problem, then this error's one line:
/// `error: 2 problems in the migrations`.
#[derive(Debug)]
pub struct Problems {
    /// Every problem, errors and warnings, in file order.
    pub problems: Vec<Problem>,
    /// Where they were found: `the migrations`, `[package.metadata.migrate]`.
    pub place: &'static str,
}

impl Problems {
    /// The problems of `e`, found in `place`.
    pub fn new(e: &migrate_build::Error, place: &'static str) -> Self {
        Self {
            problems: e.problems().to_vec(),
            place,
        }
    }

    /// The problems in the migrations directory.
    pub fn in_migrations(e: migrate_build::Error) -> anyhow::Error {
        Self::new(&e, "the migrations").into()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.problems.iter().filter(|p| p.is_error()).count();
        write!(f, "{} in {}", count(errors, "problem"), self.place)
    }
}

impl std::error::Error for Problems {}

/// Reports the error that ends the command: its problems first, when it
/// carries some, then one `error: …` line (causes joined with `: `, line
/// breaks folded, so it stays one line).
pub fn error(e: &anyhow::Error) {
    if let Some(p) = e.downcast_ref::<Problems>() {
        problems(&p.problems);
    }
    line(Some(Label::Error), one_line(e));
}

/// The error and its causes on one line.
pub fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', "; ")
}

/// The progress line being written: `applying 0002 big_insert … `.
struct Progress {
    text: String,
    /// What to say when Ctrl-C ends the command during this step.
    on_interrupt: String,
    /// The thread that shows the elapsed time on a terminal.
    ticker: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
    /// Whether the ticker rewrote the line (so it ends with `\r` first).
    ticked: Arc<AtomicBool>,
    /// What the step reported last ([`progress_status`]), shown by the
    /// ticker after the text.
    status: Arc<Mutex<String>>,
    /// When [`progress_status`] last rewrote the line.
    shown: Option<Instant>,
}

static PROGRESS: Mutex<Option<Progress>> = Mutex::new(None);

fn take_progress() -> Option<Progress> {
    PROGRESS.lock().unwrap_or_else(PoisonError::into_inner).take()
}

impl Progress {
    /// Stops the ticker and ends the line with `word`, or just the line.
    fn end(mut self, word: Option<&dyn fmt::Display>) {
        if let Some((stop, thread)) = self.ticker.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = thread.join();
        }
        let mut err = std::io::stderr().lock();
        let _ = match word {
            Some(word) if self.ticked.load(Ordering::Relaxed) => {
                // Rewrite the whole line; spaces cover the longest "… 12345 s"
                // or a status.
                let pad = self.status.lock().map_or(0, |s| s.len()) + 12;
                writeln!(err, "\r{} … {word}{:pad$}", self.text, "")
            }
            Some(word) => writeln!(err, "{word}"),
            None => writeln!(err),
        };
    }
}

/// Begins a progress line that a later [`end_progress`] completes:
/// `applying 0001 create_users … `. On a terminal, a step that runs for a
/// second or more shows its elapsed time (`… 12 s`), rewritten in place;
/// piped, nothing more is written. `on_interrupt` is what Ctrl-C says
/// during this step.
pub fn begin_progress(text: String, on_interrupt: String) {
    if let Some(open) = take_progress() {
        open.end(None);
    }
    {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{text} … ");
        let _ = err.flush();
    }
    let ticked = Arc::new(AtomicBool::new(false));
    let status = Arc::new(Mutex::new(String::new()));
    let ticker = std::io::stderr().is_terminal().then(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, ticked, text, status) = (
                Arc::clone(&stop),
                Arc::clone(&ticked),
                text.clone(),
                Arc::clone(&status),
            );
            std::thread::spawn(move || tick(&text, &stop, &ticked, &status))
        };
        (stop, thread)
    });
    *PROGRESS.lock().unwrap_or_else(PoisonError::into_inner) = Some(Progress {
        text,
        on_interrupt,
        ticker,
        ticked,
        status,
        shown: None,
    });
}

/// Shows `status` after the open progress line's text (a backfill's
/// `412000/1000000 rows (41%), 98000 rows/s`): on a terminal, the line is
/// rewritten in place at most ten times a second; piped, nothing is
/// written (the step's last line says what it did).
pub fn progress_status(status: String) {
    let mut slot = PROGRESS.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(open) = slot.as_mut() else {
        return;
    };
    *open.status.lock().unwrap_or_else(PoisonError::into_inner) = status.clone();
    if open.ticker.is_none() || open.shown.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) {
        return;
    }
    open.shown = Some(Instant::now());
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r{} … {status}    ", open.text);
    let _ = err.flush();
    open.ticked.store(true, Ordering::Relaxed);
}

/// Rewrites `text … N s` (or `text … status, N s`) each second from the
/// first second on, until stopped.
fn tick(text: &str, stop: &AtomicBool, ticked: &AtomicBool, status: &Mutex<String>) {
    let start = Instant::now();
    let mut shown = 0;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        let seconds = start.elapsed().as_secs();
        if seconds > shown && !stop.load(Ordering::Relaxed) {
            shown = seconds;
            let status = status.lock().unwrap_or_else(PoisonError::into_inner).clone();
            let mut err = std::io::stderr().lock();
            if status.is_empty() {
                let _ = write!(err, "\r{text} … {seconds} s");
            } else {
                let _ = write!(err, "\r{text} … {status}, {seconds} s    ");
            }
            let _ = err.flush();
            ticked.store(true, Ordering::Relaxed);
        }
    }
}

/// Ends the progress line begun by [`begin_progress`] with `text`
/// (`done in 3 ms`, `failed`); does nothing when no line is open.
pub fn end_progress(text: impl fmt::Display) {
    if let Some(open) = take_progress() {
        open.end(Some(&text));
    }
}

/// Makes Ctrl-C end the command with a line that says what became of the
/// step in progress (SQLite rolls an uncommitted transaction back: a killed
/// process leaves it to the next one that opens the database), and
/// [`exit::INTERRUPTED`](crate::exit::INTERRUPTED).
pub fn on_ctrl_c() {
    let _ = ctrlc::set_handler(|| {
        let said = match take_progress() {
            Some(open) => {
                let said = open.on_interrupt.clone();
                open.end(Some(&"interrupted"));
                said
            }
            None => "interrupted (Ctrl-C)".to_owned(),
        };
        line(None, said);
        std::process::exit(i32::from(crate::exit::INTERRUPTED));
    });
}

/// `1 migration`, `2 migrations`: the one place the CLI pluralizes.
pub fn count(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(count(1, "migration"), "1 migration");
        assert_eq!(count(0, "migration"), "0 migrations");
        assert_eq!(count(2, "problem"), "2 problems");
    }

    #[test]
    fn labels() {
        assert_eq!(Label::of(Severity::Warning).word(), "warning");
        assert_eq!(Label::of(Severity::Error).word(), "error");
        assert_eq!(Label::Note.word(), "note");
    }
}
