//! The file-name grammar: `{version}_{name}.up.sql`, `.down.sql`, `.sql`.
//!
//! Pure functions on names, with no file system access, so that `cargo
//! migrate new` and `renumber` use the same rules as the scan.

use std::fmt;

/// What a migration file is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// `{version}_{name}.up.sql`
    Up,
    /// `{version}_{name}.down.sql`
    Down,
    /// `{version}_{name}.sql`: an up migration without a down (irreversible).
    UpOnly,
}

/// A parsed migration file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileName {
    /// The version number.
    pub version: u64,
    /// The name part (`[a-z0-9_]+`).
    pub name: String,
    /// Up, down or up-only.
    pub kind: Kind,
}

impl FileName {
    /// The file name for `version` and `name`, zero-padded to `width`
    /// (at most [`MAX_WIDTH`] digits).
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_build::file_name::{FileName, Kind};
    ///
    /// let f = FileName { version: 3, name: "add_email".into(), kind: Kind::Up };
    /// assert_eq!(f.to_file_name(4), "0003_add_email.up.sql");
    /// ```
    pub fn to_file_name(&self, width: usize) -> String {
        let suffix = match self.kind {
            Kind::Up => ".up.sql",
            Kind::Down => ".down.sql",
            Kind::UpOnly => ".sql",
        };
        let width = width.min(MAX_WIDTH);
        format!("{:0width$}_{}{suffix}", self.version, self.name)
    }
}

/// Whether `name` can be the name part of a migration file: non-empty, and
/// only `a-z`, `0-9` and `_`.
///
/// # Examples
///
/// ```
/// use migrate_build::file_name::is_name;
///
/// assert!(is_name("add_email_2"));
/// assert!(!is_name("Add-Email"));
/// assert!(!is_name(""));
/// ```
#[must_use]
pub fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether `version` looks like a timestamp, as sqlx, diesel and
/// golang-migrate number migrations: 12 or 14 digits that read as a
/// plausible `YYYYMMDDhhmm[ss]` (years 1970 to 2199).
///
/// # Examples
///
/// ```
/// use migrate_build::file_name::is_timestamp;
///
/// assert!(is_timestamp(20240101120000));
/// assert!(is_timestamp(202402150930));
/// assert!(!is_timestamp(42));
/// assert!(!is_timestamp(20241301120000)); // month 13
/// ```
#[must_use]
pub fn is_timestamp(version: u64) -> bool {
    let digits = version.to_string();
    let seconds = match digits.len() {
        12 => false,
        14 => true,
        _ => return false,
    };
    let field = |at: usize| digits[at..at + 2].parse::<u32>().unwrap_or(99);
    let year: u32 = digits[..4].parse().unwrap_or(0);
    (1970..2200).contains(&year)
        && (1..=12).contains(&field(4))
        && (1..=31).contains(&field(6))
        && field(8) < 24
        && field(10) < 60
        && (!seconds || field(12) < 61)
}

/// The widest zero-padding: `i64::MAX` has 19 digits.
pub const MAX_WIDTH: usize = 19;

/// The pattern every migration file follows, for messages.
pub const PATTERN: &str = "{version}_{name}.up.sql, {version}_{name}.down.sql or {version}_{name}.sql, with a zero-padded version and a name of a-z, 0-9 and _";

/// Parses a migration file name such as `0003_add_email.up.sql`.
///
/// `width` is the configured zero-padding: a version must have exactly that
/// many digits, or more without a leading zero once it outgrows them.
///
/// # Errors
///
/// A message saying what is wrong with the name and, where one can be
/// guessed, the name it should have.
///
/// # Examples
///
/// ```
/// use migrate_build::file_name::{parse_file_name, Kind};
///
/// let f = parse_file_name("0003_add_email.up.sql", 4)?;
/// assert_eq!((f.version, f.name.as_str(), f.kind), (3, "add_email", Kind::Up));
/// assert!(parse_file_name("3-add-email.sql", 4).is_err());
/// # Ok::<(), migrate_build::file_name::BadName>(())
/// ```
pub fn parse_file_name(file_name: &str, width: usize) -> Result<FileName, BadName> {
    let width = width.min(MAX_WIDTH);
    if let Some(bad) = other_conventions(file_name, width) {
        return Err(bad);
    }
    let (stem, kind) = if let Some(s) = file_name.strip_suffix(".up.sql") {
        (s, Kind::Up)
    } else if let Some(s) = file_name.strip_suffix(".down.sql") {
        (s, Kind::Down)
    } else if let Some(s) = file_name.strip_suffix(".sql") {
        (s, Kind::UpOnly)
    } else {
        return Err(BadName::new(
            format!("`{file_name}` is not a migration file name"),
            None,
        ));
    };
    let bad = |message: String| BadName::new(message, guess_name(stem, kind, width));
    let digits_end = stem.find(|c: char| !c.is_ascii_digit()).unwrap_or(stem.len());
    let (digits, rest) = stem.split_at(digits_end);
    if digits.is_empty() {
        return Err(bad(format!("`{file_name}` has no version number")));
    }
    let Some(name) = rest.strip_prefix('_') else {
        return Err(bad(format!("`{file_name}` does not start with a version and `_`")));
    };
    if !is_name(name) {
        return Err(bad(format!(
            "`{file_name}` has an invalid name `{name}`: names use only a-z, 0-9 and _"
        )));
    }
    let version: u64 = digits
        .parse()
        .ok()
        .filter(|&v| i64::try_from(v).is_ok())
        .ok_or_else(|| {
            bad(format!(
                "`{file_name}`: version {digits} is too large (at most {})",
                i64::MAX
            ))
        })?;
    if version == 0 {
        return Err(bad(format!(
            "`{file_name}`: version 0 is not allowed, versions start at 1"
        )));
    }
    let natural = version.to_string().len();
    if digits.len() != width.max(natural) {
        return Err(bad(format!(
            "`{file_name}`: version `{digits}` is not zero-padded to {width} digits"
        )));
    }
    Ok(FileName {
        version,
        name: name.to_owned(),
        kind,
    })
}

/// Why a file name is not a migration file name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BadName {
    /// What is wrong.
    pub message: String,
    /// The name it should probably have, when one can be guessed.
    pub rename_to: Option<String>,
}

impl BadName {
    fn new(message: String, rename_to: Option<String>) -> Self {
        Self { message, rename_to }
    }

    /// What to do: rename it to the guessed name, or follow the pattern.
    pub fn hint(&self) -> String {
        match &self.rename_to {
            Some(name) => format!("rename it to `{name}`"),
            None => format!("name migrations {PATTERN}"),
        }
    }
}

impl fmt::Display for BadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.hint())
    }
}

/// Names that follow another convention, with the rename: an upper-case
/// extension (`0001_a.SQL`), or refinery's and Flyway's `V1__name.sql` and
/// `U1__name.sql`.
fn other_conventions(file_name: &str, width: usize) -> Option<BadName> {
    let lower = file_name.to_ascii_lowercase();
    for suffix in [".up.sql", ".down.sql", ".sql"] {
        if lower.ends_with(suffix) && !file_name.ends_with(suffix) {
            let fixed = format!("{}{suffix}", &file_name[..file_name.len() - suffix.len()]);
            let rename_to = match parse_file_name(&fixed, width) {
                Ok(f) => Some(f.to_file_name(width)),
                Err(bad) => bad.rename_to,
            };
            return Some(BadName::new(
                format!("`{file_name}` has an upper-case extension: migration files end in `{suffix}`"),
                rename_to,
            ));
        }
    }
    let stem = file_name.strip_suffix(".sql")?;
    if stem.ends_with(".up") || stem.ends_with(".down") {
        return None;
    }
    let (kind, rest) = match stem.split_at_checked(1)? {
        ("V", rest) => (Kind::UpOnly, rest),
        ("U", rest) => (Kind::Down, rest),
        _ => return None,
    };
    let (digits, name) = rest.split_once("__")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let version = digits
        .parse::<u64>()
        .ok()
        .filter(|&v| v > 0 && i64::try_from(v).is_ok());
    let name = heck::ToSnakeCase::to_snake_case(name);
    let rename_to = version
        .filter(|_| is_name(&name))
        .map(|version| FileName { version, name, kind }.to_file_name(width));
    let message = match kind {
        Kind::Down => format!(
            "`{file_name}` is a Flyway-style undo migration: cargo-migrate names them {{version}}_{{name}}.down.sql, and the V file of the same version {{version}}_{{name}}.up.sql"
        ),
        _ => format!(
            "`{file_name}` is a refinery/Flyway-style name: cargo-migrate names migrations {{version}}_{{name}}.sql"
        ),
    };
    Some(BadName::new(message, rename_to))
}

/// The name a malformed file name was probably meant to be.
fn guess_name(stem: &str, kind: Kind, width: usize) -> Option<String> {
    let digits: String = stem.chars().take_while(char::is_ascii_digit).collect();
    let version = digits.parse::<u64>().ok().filter(|&v| i64::try_from(v).is_ok())?;
    let name = heck::ToSnakeCase::to_snake_case(stem[digits.len()..].trim_start_matches(['_', '-', ' ', '.']));
    if version == 0 || !is_name(&name) {
        return None;
    }
    Some(FileName { version, name, kind }.to_file_name(width))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        let f = parse_file_name("0001_create_users.down.sql", 4).unwrap();
        assert_eq!((f.version, f.kind), (1, Kind::Down));
        let f = parse_file_name("12345_big.sql", 4).unwrap();
        assert_eq!((f.version, f.kind), (12345, Kind::UpOnly));
        assert_eq!(parse_file_name("000001_x.sql", 6).unwrap().version, 1);
    }

    #[test]
    fn rejects_with_guesses() {
        let e = parse_file_name("3-add-email.sql", 4).unwrap_err();
        assert_eq!(e.rename_to.as_deref(), Some("0003_add_email.sql"), "{e}");
        let e = parse_file_name("0003_Add-Email.up.sql", 4).unwrap_err();
        assert_eq!(e.rename_to.as_deref(), Some("0003_add_email.up.sql"), "{e}");
        let e = parse_file_name("3_add.sql", 4).unwrap_err();
        assert!(e.message.contains("not zero-padded to 4 digits"), "{e}");
        assert!(parse_file_name("00003_add.sql", 4).is_err());
        assert!(
            parse_file_name("0000_zero.sql", 4)
                .unwrap_err()
                .message
                .contains("version 0")
        );
        assert!(parse_file_name("0003_.sql", 4).is_err());
        assert!(
            parse_file_name("99999999999999999999_x.sql", 4)
                .unwrap_err()
                .message
                .contains("too large")
        );
        assert!(parse_file_name("0003_add_email.up.sql.bak", 4).is_err());
    }

    #[test]
    fn suggests_renames_for_other_conventions() {
        let guess = |name: &str| parse_file_name(name, 4).unwrap_err().rename_to;
        assert_eq!(guess("0001_a.SQL").as_deref(), Some("0001_a.sql"));
        assert_eq!(guess("0001_a.UP.SQL").as_deref(), Some("0001_a.up.sql"));
        assert_eq!(guess("0001_a.down.Sql").as_deref(), Some("0001_a.down.sql"));
        assert_eq!(guess("1-Add-Email.SQL").as_deref(), Some("0001_add_email.sql"));
        assert_eq!(guess("V1__create_users.sql").as_deref(), Some("0001_create_users.sql"));
        assert_eq!(guess("V12__AddEmail.sql").as_deref(), Some("0012_add_email.sql"));
        assert_eq!(
            guess("U1__create_users.sql").as_deref(),
            Some("0001_create_users.down.sql")
        );
        let e = parse_file_name("U1__create_users.sql", 4).unwrap_err();
        assert!(e.message.contains("the V file of the same version"), "{e}");
        let e = parse_file_name("0001_a.SQL", 4).unwrap_err();
        assert!(e.message.contains("upper-case extension"), "{e}");
        // Not a refinery name: the usual messages.
        assert!(guess("V0__x.sql").is_none());
        assert!(
            parse_file_name("Vx__y.sql", 4)
                .unwrap_err()
                .message
                .contains("no version number")
        );
    }

    #[test]
    fn fuzz_regressions() {
        // fuzz/regressions/file_name: a huge width, a version past i64::MAX.
        assert!(parse_file_name("\u{2d}|3q.sql", usize::MAX).is_err());
        let e = parse_file_name("\u{1}9223372036857475807ax.sql", 4).unwrap_err();
        assert!(e.rename_to.is_none(), "{e}");
        let e = parse_file_name("9223372036857475807-ax.sql", 4).unwrap_err();
        assert!(e.rename_to.is_none(), "{e}");
    }
}
