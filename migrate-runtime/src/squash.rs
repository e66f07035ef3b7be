//! Squash baselines: a migration that replaces migrations `1..=N` with the
//! schema they make (`cargo migrate squash --to N`). Its up file starts
//! with the directive
//!
//! ```sql
//! -- migrate:squashes 1-7 5a0c…(64 hex digits)
//! ```
//!
//! naming the versions it replaces (it has the last one's version) and a
//! [digest](Squash::digest) of their versions, names and checksums as a
//! database that applied them records them. A database that applied all of
//! them, as recorded, has in effect applied the baseline; one that applied
//! only some is refused with the versions it lacks; a new one applies the
//! baseline.
//!
//! A baseline squashed again (`cargo migrate squash --to M` over a set that
//! starts with a baseline of `1..=S`) also carries, for each baseline it
//! replaces, the directive
//!
//! ```sql
//! -- migrate:earlier-squash 1-3 5a0c…(digest) baseline 9f1e…(its checksum)
//! ```
//!
//! so that a database that applied the original migrations of that earlier
//! squash is first seen as having applied the earlier baseline, and then
//! matched against this one's digest (computed over the earlier baseline's
//! row and the migrations after it).

use std::borrow::Cow;
use std::fmt;

use crate::plan::matches;
use crate::{Applied, Checksum, Error, Migration, Result};

/// What a squash baseline replaces: versions `first..=last`, as recorded
/// by a database that applied them (their [`digest`](Self::digest)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Squash {
    /// The first version replaced (1).
    pub first: u64,
    /// The last version replaced: the baseline's own version.
    pub last: u64,
    /// The [`digest`](Self::digest) of the replaced migrations.
    pub digest: Checksum,
}

/// The directive's name.
const DIRECTIVE: &str = "-- migrate:squashes";

impl Squash {
    /// The squash directive among the comment lines at the top of `sql`, if
    /// there is one: the squash, or what is wrong with it.
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::{Checksum, Squash};
    /// let digest = Checksum::of("x");
    /// let sql = format!("-- migrate:squashes 1-7 {digest}\nCREATE TABLE t (x);\n");
    /// let squash = Squash::of(&sql).unwrap().unwrap();
    /// assert_eq!((squash.first, squash.last), (1, 7));
    /// assert!(Squash::of("CREATE TABLE t (x);").is_none());
    /// assert!(Squash::of("-- migrate:squashes 7\n").unwrap().is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// The directive's problem, when it does not read `-- migrate:squashes
    /// FIRST-LAST DIGEST`.
    pub fn of(sql: &str) -> Option<std::result::Result<Self, String>> {
        for line in sql.trim_start_matches('\u{feff}').lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if !line.starts_with("--") {
                return None;
            }
            if let Some(rest) = line.strip_prefix(DIRECTIVE)
                && (rest.is_empty() || rest.starts_with(char::is_whitespace))
            {
                return Some(Self::parse(rest));
            }
        }
        None
    }

    fn parse(args: &str) -> std::result::Result<Self, String> {
        let bad =
            || format!("`{DIRECTIVE}{args}` does not read `{DIRECTIVE} FIRST-LAST DIGEST` (DIGEST: 64 hex digits)");
        let mut words = args.split_whitespace();
        let (Some(range), Some(digest), None) = (words.next(), words.next(), words.next()) else {
            return Err(bad());
        };
        let (first, last) = range.split_once('-').ok_or_else(bad)?;
        let number = |s: &str| s.parse::<u64>().ok().filter(|_| s.bytes().all(|b| b.is_ascii_digit()));
        let (Some(first), Some(last), Some(digest)) = (number(first), number(last), Checksum::parse(digest)) else {
            return Err(bad());
        };
        if first == 0 || first > last {
            return Err(format!("`{DIRECTIVE} {first}-{last}` is not a range of versions"));
        }
        Ok(Self { first, last, digest })
    }

    /// The digest of replaced migrations as a database records them:
    /// SHA-256 ([`Checksum::of`]) of a line `VERSION NAME CHECKSUM` per
    /// migration, in version order.
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::{Checksum, Squash};
    /// let a = Checksum::of("CREATE TABLE a (x);").to_string();
    /// let d = Squash::digest([(1, "create_a", a.as_str())]);
    /// assert_eq!(d, Checksum::of(&format!("1 create_a {a}\n")));
    /// ```
    pub fn digest<'a>(rows: impl IntoIterator<Item = (u64, &'a str, &'a str)>) -> Checksum {
        let text: String = rows
            .into_iter()
            .map(|(version, name, checksum)| format!("{version} {name} {}\n", checksum.to_ascii_lowercase()))
            .collect();
        Checksum::of(&text)
    }
}

impl fmt::Display for Squash {
    /// The directive: `-- migrate:squashes 1-7 DIGEST`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{DIRECTIVE} {}-{} {}", self.first, self.last, self.digest)
    }
}

/// An earlier squash baseline that a baseline replaces (squashed again):
/// the directive `-- migrate:earlier-squash FIRST-LAST DIGEST NAME
/// CHECKSUM`, which `cargo migrate squash` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EarlierSquash {
    /// What the earlier baseline replaced (its version is `squash.last`).
    pub squash: Squash,
    /// The earlier baseline's name, as a database that applied it records it.
    pub name: String,
    /// The earlier baseline's checksum, as recorded.
    pub checksum: Checksum,
}

/// The earlier-squash directive's name.
const EARLIER: &str = "-- migrate:earlier-squash";

impl EarlierSquash {
    /// The earlier-squash directives among the comment lines at the top of
    /// `sql`, each parsed or with what is wrong with it.
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::{Checksum, EarlierSquash};
    /// let (d, c) = (Checksum::of("a"), Checksum::of("b"));
    /// let sql = format!("-- migrate:squashes 1-7 {d}\n-- migrate:earlier-squash 1-3 {d} baseline {c}\nSELECT 1;\n");
    /// let earlier = EarlierSquash::all(&sql);
    /// assert_eq!(earlier.len(), 1);
    /// assert_eq!(earlier[0].as_ref().unwrap().squash.last, 3);
    /// assert!(EarlierSquash::all("-- migrate:earlier-squash 1-3\n")[0].is_err());
    /// ```
    pub fn all(sql: &str) -> Vec<std::result::Result<Self, String>> {
        let mut out = Vec::new();
        for line in sql.trim_start_matches('\u{feff}').lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if !line.starts_with("--") {
                break;
            }
            if let Some(rest) = line.strip_prefix(EARLIER)
                && (rest.is_empty() || rest.starts_with(char::is_whitespace))
            {
                out.push(Self::parse(rest));
            }
        }
        out
    }

    fn parse(args: &str) -> std::result::Result<Self, String> {
        let bad = || {
            format!(
                "`{EARLIER}{args}` does not read `{EARLIER} FIRST-LAST DIGEST NAME CHECKSUM` (DIGEST, CHECKSUM: 64 hex digits)"
            )
        };
        let words: Vec<&str> = args.split_whitespace().collect();
        let [range, digest, name, checksum] = words[..] else {
            return Err(bad());
        };
        let squash = Squash::parse(&format!(" {range} {digest}")).map_err(|_| bad())?;
        let checksum = Checksum::parse(checksum).ok_or_else(bad)?;
        Ok(Self {
            squash,
            name: name.to_owned(),
            checksum,
        })
    }
}

impl fmt::Display for EarlierSquash {
    /// The directive: `-- migrate:earlier-squash 1-3 DIGEST NAME CHECKSUM`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{EARLIER} {}-{} {} {} {}",
            self.squash.first, self.squash.last, self.squash.digest, self.name, self.checksum
        )
    }
}

impl EarlierSquash {
    /// `baseline` as an earlier squash of the baseline that replaces it
    /// (`None` when it is not a squash baseline).
    #[must_use]
    pub fn of_baseline(baseline: &Migration) -> Option<Self> {
        Some(Self {
            squash: baseline.squash()?,
            name: baseline.name().to_owned(),
            checksum: baseline.checksum(),
        })
    }
}

impl Migration {
    /// The earlier baselines this squash baseline replaces (well-formed
    /// `-- migrate:earlier-squash` directives), oldest first.
    #[must_use]
    pub fn earlier_squashes(&self) -> Vec<EarlierSquash> {
        let mut all: Vec<EarlierSquash> = EarlierSquash::all(self.up().sql())
            .into_iter()
            .filter_map(std::result::Result::ok)
            .collect();
        all.sort_by_key(|e| e.squash.last);
        all
    }
}

impl Migration {
    /// What this migration replaces, when it is a squash baseline (a
    /// well-formed `-- migrate:squashes` directive at the top of its up
    /// script; the build refuses a malformed one).
    #[must_use]
    pub fn squash(&self) -> Option<Squash> {
        Squash::of(self.up().sql()).and_then(std::result::Result::ok)
    }
}

/// The history as the code sees it: when the first migration is a squash
/// baseline and the database applied every migration it replaces, as the
/// squash recorded them, those rows count as one row of the baseline.
///
/// # Errors
///
/// [`Error::SquashedPartly`] when the database applied only some of them,
/// [`Error::SquashMismatch`] when it applied them differently.
pub(crate) fn normalize<'h>(migrations: &[Migration], original: &'h [Applied]) -> Result<Cow<'h, [Applied]>> {
    let Some((baseline, squash)) = migrations.first().and_then(|m| m.squash().map(|s| (m, s))) else {
        return Ok(Cow::Borrowed(original));
    };
    // A history of an earlier squash's originals, as its baseline's row.
    let earlier = baseline.earlier_squashes();
    let mut collapsed: Cow<'h, [Applied]> = Cow::Borrowed(original);
    for e in &earlier {
        if let Some(rows) = collapse(&collapsed, e) {
            collapsed = Cow::Owned(rows);
        }
    }
    let covered = |v: u64| {
        earlier.iter().any(|e| {
            v <= e.squash.last
                && collapsed.iter().any(|a| {
                    a.version == e.squash.last && a.name == e.name && Checksum::parse(&a.checksum) == Some(e.checksum)
                })
        })
    };
    let history: &[Applied] = &collapsed;
    let inside: Vec<&Applied> = history.iter().filter(|a| a.version <= squash.last).collect();
    match inside.as_slice() {
        // A new database, and one made from this baseline: as they are.
        [] => return Ok(Cow::Borrowed(original)),
        [one] if one.version == squash.last && matches(baseline, one) => return Ok(Cow::Borrowed(original)),
        _ => {}
    }
    let missing: Vec<u64> = (squash.first..=squash.last)
        .filter(|v| !inside.iter().any(|a| a.version == *v) && !covered(*v))
        .collect();
    let file = baseline.up().file().to_owned();
    if !missing.is_empty() {
        return Err(Error::SquashedPartly {
            version: squash.last,
            name: baseline.name().to_owned(),
            file,
            first: squash.first,
            missing,
        });
    }
    let digest = Squash::digest(
        inside
            .iter()
            .filter(|a| a.version >= squash.first)
            .map(|a| (a.version, a.name.as_str(), a.checksum.as_str())),
    );
    if digest != squash.digest {
        return Err(Error::SquashMismatch {
            version: squash.last,
            name: baseline.name().to_owned(),
            file,
            first: squash.first,
        });
    }
    let last = inside.last().copied().cloned();
    let mut out: Vec<Applied> = Vec::with_capacity(history.len());
    if let Some(mut row) = last {
        row.name = baseline.name().to_owned();
        row.checksum = baseline.checksum().to_string();
        out.push(row);
    }
    out.extend(history.iter().filter(|a| a.version > squash.last).cloned());
    Ok(Cow::Owned(out))
}

/// `history` with the rows of `e`'s original migrations (all of them, as
/// its digest says) replaced by its baseline's row; `None` when it has
/// none of them, or not exactly those.
fn collapse(history: &[Applied], e: &EarlierSquash) -> Option<Vec<Applied>> {
    let inside: Vec<&Applied> = history.iter().filter(|a| a.version <= e.squash.last).collect();
    let complete = (e.squash.first..=e.squash.last).all(|v| inside.iter().any(|a| a.version == v));
    let digest = Squash::digest(
        inside
            .iter()
            .filter(|a| a.version >= e.squash.first)
            .map(|a| (a.version, a.name.as_str(), a.checksum.as_str())),
    );
    if !complete || digest != e.squash.digest {
        return None;
    }
    let mut row = (*inside.last()?).clone();
    row.name.clone_from(&e.name);
    row.checksum = e.checksum.to_string();
    let mut out = vec![row];
    out.extend(history.iter().filter(|a| a.version > e.squash.last).cloned());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Script;

    fn row(version: u64, name: &str, sql: &str) -> Applied {
        Applied {
            version,
            name: name.to_owned(),
            checksum: Checksum::of(sql).to_string(),
            applied_at: "2026-01-01T00:00:00.000Z".to_owned(),
            duration_ms: 0,
        }
    }

    /// Migrations 1 to 3 as applied, and a baseline squashing them, then 4.
    fn setup() -> (Vec<Applied>, Vec<Migration>) {
        let old = vec![
            row(1, "a", "CREATE TABLE a (x);"),
            row(2, "b", "CREATE TABLE b (x);"),
            row(3, "c", "CREATE TABLE c (x);"),
        ];
        let digest = Squash::digest(old.iter().map(|a| (a.version, a.name.as_str(), a.checksum.as_str())));
        let squash = Squash {
            first: 1,
            last: 3,
            digest,
        };
        let baseline = format!("{squash}\nCREATE TABLE a (x);\nCREATE TABLE b (x);\nCREATE TABLE c (x);\n");
        let code = vec![
            Migration::new(3, "squashed", Script::new(baseline, "migrations/0003_squashed.sql")),
            Migration::new(4, "d", Script::new("CREATE TABLE d (x);", "migrations/0004_d.sql")),
        ];
        (old, code)
    }

    #[test]
    fn histories_before_and_after_the_squash() {
        let (old, code) = setup();
        assert_eq!(code[0].squash().map(|s| (s.first, s.last)), Some((1, 3)));
        // A new database, and one made from the baseline: as they are.
        assert!(matches!(normalize(&code, &[]), Ok(Cow::Borrowed(_))));
        let from_baseline = vec![Applied {
            name: "squashed".into(),
            checksum: code[0].checksum().to_string(),
            ..old[2].clone()
        }];
        assert!(matches!(normalize(&code, &from_baseline), Ok(Cow::Borrowed(_))));
        // At 3 and beyond: one row of the baseline.
        let at_3 = normalize(&code, &old).unwrap();
        assert_eq!(at_3.len(), 1);
        assert!(matches(&code[0], &at_3[0]));
        let mut beyond = old.clone();
        beyond.push(row(4, "d", "CREATE TABLE d (x);"));
        let normalized = normalize(&code, &beyond).unwrap();
        assert_eq!(normalized.iter().map(|a| a.version).collect::<Vec<_>>(), [3, 4]);
        // Between: the versions it lacks.
        match normalize(&code, &old[..1]) {
            Err(Error::SquashedPartly { missing, .. }) => assert_eq!(missing, [2, 3]),
            other => panic!("{other:?}"),
        }
        // Applied differently.
        let mut changed = old.clone();
        changed[1].checksum = Checksum::of("CREATE TABLE b (y);").to_string();
        assert!(matches!(normalize(&code, &changed), Err(Error::SquashMismatch { .. })));
    }

    #[test]
    fn a_squash_over_a_squash_accepts_both_histories() {
        let (old, code) = setup();
        let b1 = &code[0];
        let d = row(4, "d", "CREATE TABLE d (x);");
        let e = row(5, "e", "CREATE TABLE e (x);");
        // Squashed again to 5: the digest of the rows as a database made
        // from the first baseline records them.
        let from_b1 = vec![
            Applied {
                name: b1.name().to_owned(),
                checksum: b1.checksum().to_string(),
                ..old[2].clone()
            },
            d.clone(),
            e.clone(),
        ];
        let digest = Squash::digest(
            from_b1
                .iter()
                .map(|a| (a.version, a.name.as_str(), a.checksum.as_str())),
        );
        let earlier = EarlierSquash::of_baseline(b1).unwrap();
        let text = format!(
            "{}\n{earlier}\nCREATE TABLE a (x);\n",
            Squash {
                first: 1,
                last: 5,
                digest
            }
        );
        let b2 = vec![Migration::new(
            5,
            "baseline",
            Script::new(text, "migrations/0005_baseline.sql"),
        )];
        assert_eq!(b2[0].earlier_squashes(), [earlier]);
        let one_row = |h: &[Applied]| {
            let n = normalize(&b2, h).unwrap();
            assert_eq!(n.len(), 1);
            assert!(matches(&b2[0], &n[0]));
        };
        one_row(&from_b1);
        let mut originals = old.clone();
        originals.extend([d.clone(), e.clone()]);
        one_row(&originals);
        // Partly: the versions lacking, whichever way the database was made.
        match normalize(&b2, &from_b1[..2]) {
            Err(Error::SquashedPartly { missing, .. }) => assert_eq!(missing, [5]),
            other => panic!("{other:?}"),
        }
        match normalize(&b2, &originals[..2]) {
            Err(Error::SquashedPartly { missing, .. }) => assert_eq!(missing, [3, 4, 5]),
            other => panic!("{other:?}"),
        }
        // An original applied differently is not the earlier squash.
        let mut changed = originals.clone();
        changed[0].checksum = Checksum::of("CREATE TABLE a (y);").to_string();
        assert!(normalize(&b2, &changed).is_err());
    }

    #[test]
    fn malformed_directives() {
        for bad in [
            "-- migrate:squashes",
            "-- migrate:squashes 1-3",
            "-- migrate:squashes 3-1 0000000000000000000000000000000000000000000000000000000000000000",
            "-- migrate:squashes 1-x 0000000000000000000000000000000000000000000000000000000000000000",
            "-- migrate:squashes 1-3 00",
        ] {
            assert!(Squash::of(bad).unwrap().is_err(), "{bad}");
        }
        assert!(Squash::of("SELECT 1;\n-- migrate:squashes 1-3 00\n").is_none());
        assert!(Squash::of("-- migrate:squashesx\n").is_none());
    }
}
