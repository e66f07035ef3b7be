//! The replay cache of incremental build checks: the replay's database
//! after verified prefixes of the migrations, kept in files between runs
//! (`$OUT_DIR/replay-cache/` for the build script,
//! `target/migrate-check-cache/<package>/` for `cargo migrate check`), so
//! the next check replays only what follows the longest prefix that did
//! not change.
//!
//! A file is named after its prefix's key: a SHA-256 chained over the
//! migrations of the prefix (version, name, file names, both scripts and
//! their directives), starting from one over this crate's version,
//! SQLite's version and the whole configuration. Any change in a
//! migration changes the keys of every prefix that holds it, so a file can
//! only be found by the checks it is valid for. A file that does not read
//! back exactly (wrong magic, key, prefix, length or checksum of its
//! bytes, an image SQLite refuses) is deleted and ignored: the replay then
//! starts from the next shorter prefix, or from nothing.
//!
//! `cargo migrate status`, `diff` and the drift check of `up`, `down` and
//! `redo` start their replay of a database's applied migrations from the
//! longest prefix in `cargo migrate check`'s directory that the replay
//! from nothing would also make ([`replay_cache`]); they only read it:
//! their replays verify nothing (no round trips, no warnings), so they
//! never write a file that a check would trust. A file they find damaged
//! is deleted, as a check deletes it, and the next check writes it again.
//!
//! Which prefixes are kept: every `total / 16` migrations (rounded up; at
//! most 16 along the set) and the whole set, so adding a migration replays one, and an
//! edit replays from the kept prefix before it. Files of other prefixes
//! (an older version of the set) are removed at the end of a check. No
//! prefix that holds a migration whose scripts may leave state on the
//! replay's connection (a `PRAGMA` setting, an `ATTACH`, a `TEMP` object,
//! which no database file holds) is kept or resumed: the runtime says
//! which.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use migrate_runtime::{Migration, ReplayCache, Verified, Warning};
use rusqlite::{Connection, MAIN_DB};
use sha2::{Digest, Sha256};

use crate::config::Config;

const MAGIC: &[u8] = b"cargo-migrate replay cache 1\n";
const EXTENSION: &str = "replay";

/// The replay cache that `cargo migrate check` keeps in `dir` for
/// `migrations` checked with `config`, for the command line's drift
/// replays to start from
/// ([`Migrator::replay_versions_cached`](migrate_runtime::Migrator::replay_versions_cached)).
#[doc(hidden)]
pub fn replay_cache(dir: &Path, config: &Config, migrations: &[Migration]) -> impl ReplayCache + use<> {
    Cache::new(dir, config, migrations)
}

/// The cache of one check: the keys of its prefixes and the directory.
pub(crate) struct Cache {
    dir: PathBuf,
    /// `keys[k - 1]` is the key of the first `k` migrations.
    keys: Vec<[u8; 32]>,
    /// The prefix the check started from.
    pub(crate) resumed: usize,
}

impl Cache {
    /// The cache of `migrations` checked with `config`, in `dir`.
    pub(crate) fn new(dir: &Path, config: &Config, migrations: &[Migration]) -> Self {
        let mut hasher = Sha256::new();
        for part in [env!("CARGO_PKG_VERSION"), rusqlite::version(), &format!("{config:?}")] {
            field(&mut hasher, part.as_bytes());
        }
        let mut key: [u8; 32] = hasher.finalize().into();
        let keys = migrations
            .iter()
            .map(|m| {
                let mut h = Sha256::new();
                h.update(key);
                h.update(m.version().to_le_bytes());
                field(&mut h, m.name().as_bytes());
                for script in std::iter::once(Some(m.up())).chain([m.down()]) {
                    match script {
                        Some(s) => {
                            h.update([1, u8::from(s.no_transaction())]);
                            field(&mut h, s.file().as_bytes());
                            field(&mut h, s.sql().as_bytes());
                        }
                        None => h.update([0]),
                    }
                }
                key = h.finalize().into();
                key
            })
            .collect();
        Self {
            dir: dir.to_owned(),
            keys,
            resumed: 0,
        }
    }

    fn path(&self, prefix: usize) -> PathBuf {
        self.dir.join(format!("{}.{EXTENSION}", hex(&self.keys[prefix - 1])))
    }

    /// Removes the files of prefixes this set does not keep.
    pub(crate) fn prune(&self) {
        let total = self.keys.len();
        let keep: HashSet<PathBuf> = (1..=total)
            .filter(|&k| k == self.resumed || self.wants(k, total))
            .map(|k| self.path(k))
            .collect();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let ours = path.extension().is_some_and(|e| e == EXTENSION || e == "tmp");
            if ours && !keep.contains(&path) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    /// Reads the file of `prefix` into `conn`: `None` (and the file
    /// deleted) unless it is exactly what this cache wrote for that key.
    fn load(&self, prefix: usize, conn: &mut Connection) -> Option<Verified> {
        let path = self.path(prefix);
        let bytes = std::fs::read(&path).ok()?;
        let verified = decode(&bytes, &self.keys[prefix - 1], prefix).and_then(|(verified, image)| {
            let mut image_conn = Connection::open_in_memory().ok()?;
            image_conn
                .deserialize_read_exact(MAIN_DB, image, image.len(), true)
                .ok()?;
            // Into the replay's own in-memory database, with its settings.
            let backup = rusqlite::backup::Backup::new(&image_conn, conn).ok()?;
            backup.step(-1).ok()?;
            Some(verified)
        });
        if verified.is_none() {
            let _ = std::fs::remove_file(&path);
        }
        verified
    }
}

impl ReplayCache for Cache {
    fn resume(&mut self, conn: &mut Connection, limit: usize) -> Option<Verified> {
        let names: HashSet<std::ffi::OsString> = std::fs::read_dir(&self.dir)
            .ok()?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        for prefix in (1..=self.keys.len().min(limit)).rev() {
            let name = self.path(prefix).file_name().map(ToOwned::to_owned)?;
            if names.contains(&name)
                && let Some(verified) = self.load(prefix, conn)
            {
                self.resumed = prefix;
                return Some(verified);
            }
        }
        None
    }

    fn wants(&self, prefix: usize, total: usize) -> bool {
        let spacing = total.div_ceil(16).max(1);
        prefix == total || prefix.is_multiple_of(spacing)
    }

    fn save(&mut self, conn: &Connection, verified: &Verified) {
        let Ok(image) = conn.serialize(MAIN_DB) else {
            return;
        };
        let head = encode_head(&self.keys[verified.prefix - 1], verified, image.len());
        let mut sum = Sum::default();
        sum.update(&head);
        sum.update(&image);
        let path = self.path(verified.prefix);
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        // A cache that cannot be written is no cache; the check goes on.
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::File::create(&tmp))
            .and_then(|f| {
                let mut f = std::io::BufWriter::new(f);
                f.write_all(&head)?;
                f.write_all(&image)?;
                f.write_all(&sum.finish())?;
                f.flush()
            })
            .and_then(|()| std::fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// A file's checksum, over everything before it: SipHash (std's
/// `DefaultHasher`, whose algorithm may change between Rust releases — a
/// file then fails the check and is replaced). It finds damage; a key
/// inside the file (its prefix's, checked) tells a foreign file.
#[derive(Default)]
struct Sum(std::hash::DefaultHasher);

impl Sum {
    fn update(&mut self, bytes: &[u8]) {
        std::hash::Hasher::write(&mut self.0, bytes);
    }

    fn finish(&self) -> [u8; 8] {
        std::hash::Hasher::finish(&self.0).to_le_bytes()
    }
}

const SUM_LEN: usize = 8;

/// What comes before the image: MAGIC, key, prefix, warnings,
/// fingerprints, the image's length. Then the image, then the [`Sum`] of
/// everything before it.
fn encode_head(key: &[u8; 32], verified: &Verified, image_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(key);
    put_u64(&mut out, verified.prefix as u64);
    put_u64(&mut out, verified.warnings.len() as u64);
    for w in &verified.warnings {
        put_u64(&mut out, w.version);
        put_str(&mut out, w.name.as_bytes());
        put_str(&mut out, w.file.as_bytes());
        put_u64(&mut out, w.line as u64);
        put_str(&mut out, w.message.as_bytes());
        put_str(&mut out, w.hint.as_bytes());
    }
    put_u64(&mut out, verified.fingerprints.len() as u64);
    for (version, fingerprint) in &verified.fingerprints {
        put_u64(&mut out, *version);
        put_str(&mut out, fingerprint.as_bytes());
    }
    put_u64(&mut out, image_len as u64);
    out
}

/// A reader over a cache file's bytes that fails (`None`) at the first
/// thing out of place.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn usize(&mut self) -> Option<usize> {
        usize::try_from(self.u64()?).ok()
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.usize()?;
        self.take(n)
    }

    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
}

/// What [`encode`] wrote for `key` and `prefix`, and the image; `None` for
/// anything else.
fn decode<'a>(bytes: &'a [u8], key: &[u8; 32], prefix: usize) -> Option<(Verified, &'a [u8])> {
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(SUM_LEN)?)?;
    let mut r = Reader(body);
    if r.take(MAGIC.len())? != MAGIC || r.take(32)? != key || r.usize()? != prefix {
        return None;
    }
    // Pushed one by one: a count is never trusted for an allocation.
    let mut warnings = Vec::new();
    for _ in 0..r.usize()? {
        warnings.push(Warning::__new(
            r.u64()?,
            r.string()?,
            r.string()?,
            r.usize()?,
            r.string()?,
            r.string()?,
        ));
    }
    let mut fingerprints = Vec::new();
    for _ in 0..r.usize()? {
        fingerprints.push((r.u64()?, r.string()?));
    }
    let image = r.bytes()?;
    if !r.0.is_empty() {
        return None;
    }
    // Hashed in the two parts `save` hashed.
    let mut expected = Sum::default();
    expected.update(&body[..body.len() - image.len()]);
    expected.update(image);
    if expected.finish() != sum {
        return None;
    }
    Some((
        Verified {
            prefix,
            warnings,
            fingerprints,
        },
        image,
    ))
}

#[cfg(test)]
mod tests;
