//! Problems found in a migrations directory, and the error that carries them.

use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Severity {
    /// Fails the build.
    Error,
    /// Printed, but the build goes on.
    Warning,
}

/// One problem: where it is, what it is, and what to do about it.
///
/// Built with [`Problem::error`] or [`Problem::warning`], and [`Problem::hint`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The file, as shown to the user (relative to the package when inside it).
    pub file: PathBuf,
    /// 1-based line, or 0 when the problem is about the whole file.
    pub line: usize,
    /// What is wrong.
    pub message: String,
    /// What to do next.
    pub hint: Option<String>,
}

impl Problem {
    /// An error at `file:line`.
    #[must_use]
    pub fn error(file: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            file: file.into(),
            line,
            message: message.into(),
            hint: None,
        }
    }

    /// A warning at `file:line`.
    #[must_use]
    pub fn warning(file: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(file, line, message)
        }
    }

    /// Adds what to do next.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Whether this problem fails the build.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `path:line` (or just `path` when there is no line).
    pub fn location(&self) -> String {
        if self.line == 0 {
            self.file.display().to_string()
        } else {
            format!("{}:{}", self.file.display(), self.line)
        }
    }
}

impl fmt::Display for Problem {
    /// One line: `path:line: message (help: hint)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location(), self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (help: {hint})")?;
        }
        Ok(())
    }
}

/// The problems that stop a build: every one found, not just the first.
///
/// Its `Debug` is the readable report, so a build script's
/// `fn main() -> Result<(), migrate_build::Error>` prints well.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    problems: Vec<Problem>,
}

impl Error {
    pub(crate) fn new(problems: Vec<Problem>) -> Self {
        Self { problems }
    }

    pub(crate) fn io(path: &Path, doing: &str, e: &std::io::Error) -> Self {
        Self::new(vec![Problem::error(path, 0, format!("{doing}: {e}"))])
    }

    /// Every problem, errors and warnings, in file order.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.problems.iter().filter(|p| p.is_error()).count();
        writeln!(
            f,
            "{errors} {} in the migrations:",
            if errors == 1 { "problem" } else { "problems" }
        )?;
        for p in &self.problems {
            let label = if p.is_error() { "error" } else { "warning" };
            writeln!(f, "  {label}: {p}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}
