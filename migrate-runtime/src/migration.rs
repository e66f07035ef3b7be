//! The [`Migration`] type and its checksum.

use std::borrow::Cow;
use std::fmt;

use sha2::{Digest, Sha256};

/// SHA-256 of a migration file, taken after removing a leading UTF-8 byte
/// order mark and normalizing `\r\n` to `\n`, so a checkout with CRLF line
/// endings does not look modified.
///
/// Build time (`migrate-build`) and run time use this one function.
///
/// # Examples
///
/// ```
/// use migrate_runtime::Checksum;
///
/// let unix = Checksum::of("CREATE TABLE t (id INTEGER);\n");
/// let windows = Checksum::of("\u{feff}CREATE TABLE t (id INTEGER);\r\n");
/// assert_eq!(unix, windows);
/// assert_eq!(unix.to_string().len(), 64);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Checksum([u8; 32]);

impl Checksum {
    /// The checksum of a migration file's text.
    #[must_use]
    pub fn of(text: &str) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut hasher = Sha256::new();
        let mut rest = text.as_bytes();
        // Feed the text in runs that end before each "\r\n", dropping the '\r'.
        while let Some(at) = rest.windows(2).position(|w| w == b"\r\n") {
            hasher.update(&rest[..at]);
            rest = &rest[at + 1..];
        }
        hasher.update(rest);
        Self(hasher.finalize().into())
    }

    /// The checksum from its 64 lowercase or uppercase hex digits.
    ///
    /// A `const fn`, so generated code can hold checksums in `static`s; in a
    /// constant context a malformed string is a compile error.
    ///
    /// # Panics
    ///
    /// When `hex` is not exactly 64 hex digits.
    #[must_use]
    pub const fn from_hex(hex: &str) -> Self {
        let hex = hex.as_bytes();
        assert!(hex.len() == 64, "a checksum is 64 hex digits");
        let mut bytes = [0u8; 32];
        let mut i = 0;
        while i < 32 {
            bytes[i] = (hex_digit(hex[2 * i]) << 4) | hex_digit(hex[2 * i + 1]);
            i += 1;
        }
        Self(bytes)
    }

    /// Parses 64 hex digits, or returns `None`.
    pub fn parse(hex: &str) -> Option<Self> {
        Self::parse_bytes(hex.as_bytes())
    }

    /// [`parse`](Self::parse) for ASCII bytes.
    pub(crate) fn parse_bytes(hex: &[u8]) -> Option<Self> {
        if hex.len() != 64 || !hex.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            bytes[i] = (hex_digit(pair[0]) << 4) | hex_digit(pair[1]);
        }
        Some(Self(bytes))
    }

    /// Whether `hex` (64 hex digits, either case) spells this checksum;
    /// compares without decoding, for the start-up check of every row.
    #[cfg_attr(not(feature = "rusqlite"), allow(dead_code))]
    pub(crate) fn eq_hex(&self, hex: &[u8]) -> bool {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        hex.len() == 64
            && self.0.iter().zip(hex.chunks_exact(2)).all(|(b, pair)| {
                DIGITS[usize::from(b >> 4)] == pair[0].to_ascii_lowercase()
                    && DIGITS[usize::from(b & 0xf)] == pair[1].to_ascii_lowercase()
            })
    }

    /// The 64 lowercase hex digits, as [`Display`](fmt::Display) writes them.
    pub(crate) fn hex(&self) -> Hex {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (pair, b) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0xf)];
        }
        Hex(out)
    }

    /// The 32 bytes of the digest.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

const fn hex_digit(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => panic!("a checksum is 64 hex digits"),
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hex().as_str())
    }
}

/// A checksum's 64 lowercase hex digits, without allocating.
pub(crate) struct Hex([u8; 64]);

impl Hex {
    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII digits and letters are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({self})")
    }
}

/// One SQL file of a migration: its text, where it came from, and how to run it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    sql: Cow<'static, str>,
    file: Cow<'static, str>,
    no_transaction: bool,
    batch: Option<u64>,
}

impl Script {
    /// A script from its SQL and the path shown in errors (relative to the
    /// package, e.g. `migrations/0001_create_users.up.sql`).
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::Script;
    ///
    /// let s = Script::new("CREATE TABLE t (id INTEGER);", "migrations/0001_t.up.sql");
    /// assert!(!s.no_transaction());
    /// ```
    #[must_use]
    pub fn new(sql: impl Into<Cow<'static, str>>, file: impl Into<Cow<'static, str>>) -> Self {
        Self {
            sql: sql.into(),
            file: file.into(),
            no_transaction: false,
            batch: None,
        }
    }

    /// Runs the script outside a transaction (the `-- migrate:no-transaction`
    /// directive), for statements such as `VACUUM` that SQLite refuses inside one.
    #[must_use]
    pub fn with_no_transaction(mut self, no_transaction: bool) -> Self {
        self.no_transaction = no_transaction;
        self
    }

    #[doc(hidden)]
    #[must_use]
    pub const fn __from_static(sql: &'static str, file: &'static str, no_transaction: bool) -> Self {
        Self {
            sql: Cow::Borrowed(sql),
            file: Cow::Borrowed(file),
            no_transaction,
            batch: None,
        }
    }

    /// Runs the script as a batched backfill (the `-- migrate:batch N`
    /// directive): its one `UPDATE … WHERE …` statement runs over ranges of
    /// `rows` keys (SQLite: rowids; PostgreSQL: the integer primary key),
    /// one short transaction per range, with its progress recorded so an
    /// interrupted run resumes after the last committed batch. Implies
    /// [`with_no_transaction`](Self::with_no_transaction).
    ///
    /// # Panics
    ///
    /// When `rows` is 0 (in a constant context, a compile error).
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::Script;
    ///
    /// let s = Script::new("UPDATE users SET email = lower(email) WHERE email <> lower(email);", "migrations/0004_lower_emails.sql")
    ///     .with_batch(1000);
    /// assert_eq!(s.batch(), Some(1000));
    /// assert!(s.no_transaction());
    /// ```
    #[must_use]
    pub const fn with_batch(mut self, rows: u64) -> Self {
        assert!(rows >= 1, "a batch has at least one row");
        self.batch = Some(rows);
        self.no_transaction = true;
        self
    }

    /// The rows per batch of a batched backfill (`-- migrate:batch N`).
    pub fn batch(&self) -> Option<u64> {
        self.batch
    }

    /// The SQL text, without a leading byte order mark.
    pub fn sql(&self) -> &str {
        self.sql.strip_prefix('\u{feff}').unwrap_or(&self.sql)
    }

    /// The file this SQL came from, as shown in errors.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Whether the script runs outside a transaction.
    pub fn no_transaction(&self) -> bool {
        self.no_transaction || self.batch.is_some()
    }

    /// Each statement's 1-based line in the file, in order; comments and
    /// white space are not statements.
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::Script;
    ///
    /// let s = Script::new("-- only a comment\nCREATE TABLE a (x);\nCREATE TABLE b (y);", "f.sql");
    /// assert_eq!(s.statement_lines(), vec![2, 3]);
    /// assert!(Script::new("-- nothing\n", "f.sql").statement_lines().is_empty());
    /// ```
    pub fn statement_lines(&self) -> Vec<usize> {
        crate::statement_lines(self.sql())
    }
}

/// The phase of a zero-downtime change (`-- migrate:phase expand|contract`):
/// an expand adds what the new code needs while the old code still runs;
/// its contract removes what only the old code used, once every running
/// instance has the new code. [`Migrator::apply`](crate::Migrator::apply)
/// holds contract migrations until it is told to run them
/// ([`Migrator::contract`](crate::Migrator::contract)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// `-- migrate:phase expand`: only adds.
    Expand,
    /// `-- migrate:phase contract`: removes what its expand superseded.
    Contract,
}

impl Phase {
    /// The directive's word: `expand` or `contract`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(migrate_runtime::Phase::Contract.as_str(), "contract");
    /// ```
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Expand => "expand",
            Self::Contract => "contract",
        }
    }
}

impl std::str::FromStr for Phase {
    type Err = String;

    /// Parses the directive's word.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "expand" => Ok(Self::Expand),
            "contract" => Ok(Self::Contract),
            other => Err(format!("unknown phase `{other}`: expected `expand` or `contract`")),
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One schema migration: a version, a name, the up SQL, an optional down SQL
/// and the checksum of the up file.
///
/// Generated code builds these in a `static` slice; tools that read files at
/// run time use [`Migration::new`].
///
/// # Examples
///
/// ```
/// use migrate_runtime::{Migration, Script};
///
/// let m = Migration::new(1, "create_users", Script::new("CREATE TABLE users (id INTEGER PRIMARY KEY);", "0001_create_users.up.sql"))
///     .with_down(Script::new("DROP TABLE users;", "0001_create_users.down.sql"));
/// assert_eq!(m.version(), 1);
/// assert!(m.down().is_some());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    version: u64,
    name: Cow<'static, str>,
    up: Script,
    down: Option<Script>,
    checksum: Checksum,
    schema: Option<&'static str>,
    phase: Option<Phase>,
    contract_of: Option<u64>,
}

impl Migration {
    /// A migration without a down script; the checksum is computed from `up`.
    ///
    /// # Panics
    ///
    /// When `version` is 0 or above `i64::MAX` (SQLite stores versions as
    /// signed 64-bit integers, and 0 means "no migration").
    #[must_use]
    pub fn new(version: u64, name: impl Into<Cow<'static, str>>, up: Script) -> Self {
        assert!(
            version >= 1 && i64::try_from(version).is_ok(),
            "a migration version is between 1 and i64::MAX"
        );
        let checksum = Checksum::of(&up.sql);
        Self {
            version,
            name: name.into(),
            up,
            down: None,
            checksum,
            schema: None,
            phase: None,
            contract_of: None,
        }
    }

    /// Adds the script that undoes this migration.
    #[must_use]
    pub fn with_down(mut self, down: Script) -> Self {
        self.down = Some(down);
        self
    }

    #[doc(hidden)]
    #[must_use]
    pub const fn __from_static(
        version: u64,
        name: &'static str,
        up: Script,
        down: Option<Script>,
        checksum: Checksum,
    ) -> Self {
        Self::from_static(version, name, up, down, checksum, None)
    }

    /// Adds the fingerprint ([`model::fingerprint`](crate::model::fingerprint))
    /// of the schema right after this migration, which the build computes
    /// in its replay: at start-up, [`Migrator::apply`](crate::Migrator::apply)
    /// compares the database's schema at its newest applied version with it
    /// and notices drift.
    #[must_use]
    pub fn with_schema_fingerprint(mut self, fingerprint: &'static str) -> Self {
        self.schema = Some(fingerprint);
        self
    }

    #[doc(hidden)]
    #[must_use]
    pub const fn __from_static_with_schema(
        version: u64,
        name: &'static str,
        up: Script,
        down: Option<Script>,
        checksum: Checksum,
        schema: &'static str,
    ) -> Self {
        Self::from_static(version, name, up, down, checksum, Some(schema))
    }

    const fn from_static(
        version: u64,
        name: &'static str,
        up: Script,
        down: Option<Script>,
        checksum: Checksum,
        schema: Option<&'static str>,
    ) -> Self {
        Self {
            version,
            name: Cow::Borrowed(name),
            up,
            down,
            checksum,
            schema,
            phase: None,
            contract_of: None,
        }
    }

    /// Marks the migration as an expand or a contract
    /// (`-- migrate:phase …`, which generated code carries over).
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::{Migration, Phase, Script};
    ///
    /// let m = Migration::new(8, "drop_name", Script::new("ALTER TABLE users DROP COLUMN name;", "0008_drop_name.sql"))
    ///     .with_phase(Phase::Contract)
    ///     .with_contract_of(7);
    /// assert_eq!(m.phase(), Some(Phase::Contract));
    /// assert_eq!(m.contract_of(), Some(7));
    /// ```
    #[must_use]
    pub const fn with_phase(mut self, phase: Phase) -> Self {
        self.phase = Some(phase);
        self
    }

    /// Names the expand migration this contract completes
    /// (`-- migrate:contract-of NNNN`).
    #[must_use]
    pub const fn with_contract_of(mut self, expand: u64) -> Self {
        self.contract_of = Some(expand);
        self
    }

    /// The migration's phase, when it has one.
    pub fn phase(&self) -> Option<Phase> {
        self.phase
    }

    /// Whether this is a contract migration, which
    /// [`Migrator::apply`](crate::Migrator::apply) holds unless
    /// [`Migrator::contract`](crate::Migrator::contract) is set.
    pub fn is_contract(&self) -> bool {
        self.phase == Some(Phase::Contract)
    }

    /// The version of the expand migration this contract completes.
    pub fn contract_of(&self) -> Option<u64> {
        self.contract_of
    }

    /// The fingerprint of the schema right after this migration, when the
    /// build recorded it.
    pub fn schema_fingerprint(&self) -> Option<&'static str> {
        self.schema
    }

    /// The version number (1, 2, …).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The name, as in the file name (`create_users`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The up script.
    pub fn up(&self) -> &Script {
        &self.up
    }

    /// The down script, if the migration can be rolled back.
    pub fn down(&self) -> Option<&Script> {
        self.down.as_ref()
    }

    /// The checksum of the up file.
    pub fn checksum(&self) -> Checksum {
        self.checksum
    }

    /// `version` as SQLite stores it.
    pub(crate) fn version_i64(&self) -> i64 {
        // Checked in the constructors; generated code only uses versions that
        // migrate-build has checked.
        i64::try_from(self.version).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for Migration {
    /// `0003 add_email` style: the version and the name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.version, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_ignores_bom_and_crlf_only() {
        let a = Checksum::of("a\nb\n");
        assert_eq!(a, Checksum::of("\u{feff}a\r\nb\r\n"));
        assert_ne!(a, Checksum::of("a\nb"));
        assert_ne!(a, Checksum::of("a\rb\n"), "a lone CR is content");
        // Known SHA-256 of "a\nb\n" (`printf 'a\nb\n' | sha256sum`).
        assert_eq!(
            a.to_string(),
            "911169ddaaf146aff539f58c26c489af3b892dff0fe283c1c264c65ae5aa59a2"
        );
        assert_eq!(Checksum::parse(&a.to_string()), Some(a));
        assert_eq!(Checksum::parse("xyz"), None);
        assert!(a.eq_hex(a.to_string().as_bytes()));
        assert!(a.eq_hex(a.to_string().to_uppercase().as_bytes()));
        assert!(!a.eq_hex(Checksum::of("other").to_string().as_bytes()));
        assert!(!a.eq_hex(b"short"));
    }

    #[test]
    fn crlf_split_across_runs() {
        assert_eq!(Checksum::of("\r\n\r\n"), Checksum::of("\n\n"));
        // "\r\r\n" is a lone CR (kept) followed by a CRLF (made LF).
        let raw: [u8; 32] = Sha256::digest(b"\r\n").into();
        assert_eq!(Checksum::of("\r\r\n").as_bytes(), &raw);
    }
}
