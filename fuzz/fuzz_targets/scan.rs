//! `migrate_build::scan::scan(dir, base, width)` on a real directory that
//! the target writes from the fuzz input (in `migrate-fuzz-scan-<pid>` under
//! /dev/shm, or the temporary directory; the next run removes it).
//!
//! Input (via `arbitrary`): the width (1..=19), whether the migrations
//! directory exists (or is a file), and up to 12 entries, each a name (raw
//! bytes, possibly not UTF-8, or built from a version, padding, name and
//! suffix so that valid, duplicate, unpaired and gapped migrations are
//! common), a kind (file, directory, symlink to another entry or to nothing)
//! and contents (raw bytes or one of a few templates: SQL, empty,
//! comment-only, directives, BOM + CRLF, invalid UTF-8).
//!
//! Checks: it never panics; migrations come in strictly increasing version
//! order, each with the right up/down kinds and read from the directory;
//! every non-hidden entry that is a `.sql` file (after following links) is in
//! the result's migrations, or named by a problem, or shares its version
//! with a file named by a problem (a duplicate's first file, an up whose
//! down is broken); when no problem is an error, every such file is in the
//! migrations; every problem's line is 0 or within its file's line count.
#![no_main]

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use migrate_build::scan::{Kind, parse_file_name, scan};

#[derive(Arbitrary, Debug)]
struct Input {
    width: u8,
    dir: DirKind,
    entries: Vec<Entry>,
}

#[derive(Arbitrary, Debug)]
enum DirKind {
    Dir,
    Missing,
    File,
}

#[derive(Arbitrary, Debug)]
struct Entry {
    name: Name,
    kind: EntryKind,
    contents: Contents,
}

#[derive(Arbitrary, Debug)]
enum Name {
    Raw(Vec<u8>),
    Built {
        version: u16,
        /// Extra zero-padding (0..=3) on top of the configured width.
        pad: i8,
        name: u8,
        suffix: Suffix,
    },
}

#[derive(Arbitrary, Debug)]
enum Suffix {
    Up,
    Down,
    UpOnly,
    UpperSql,
    None,
    Bak,
}

#[derive(Arbitrary, Debug)]
enum EntryKind {
    File,
    Dir,
    /// A symlink to the entry with this index (modulo), or a dangling one.
    Symlink(u8),
}

#[derive(Arbitrary, Debug)]
enum Contents {
    Raw(Vec<u8>),
    Template(u8),
}

const NAMES: &[&str] = &[
    "create_users",
    "add_email",
    "x",
    "Add-Email",
    "",
    "a b",
    "trigger_1",
    "up",
];

const TEMPLATES: &[&[u8]] = &[
    b"CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n",
    b"DROP TABLE users;\n",
    b"",
    b"   \n\t\n",
    b"-- only a comment\n",
    b"-- migrate:no-transaction\nVACUUM;\n",
    b"-- migrate:nope\nSELECT 1;\n",
    b"SELECT 1;\n-- migrate:no-transaction\n",
    b"\xef\xbb\xbfCREATE TABLE t (x);\r\nINSERT INTO t VALUES ('a;b');\r\n",
    b"CREATE TABLE t (x);\n\xff\xfe bad bytes\n",
    b"CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  UPDATE t SET x = 1;\nEND;\n",
];

/// The scratch directory of this process is `PREFIX` + its id.
const PREFIX: &str = "migrate-fuzz-scan-";

fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let parent = if shm.is_dir() {
            shm.to_owned()
        } else {
            std::env::temp_dir()
        };
        // libFuzzer ends a run with exit(), which drops nothing: remove what
        // runs that are over left behind.
        if let Ok(entries) = std::fs::read_dir(&parent) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                if let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX))
                    && !Path::new("/proc").join(pid).exists()
                {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = parent.join(format!("{PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    })
}

/// `MIGRATE_FUZZ_DEBUG=1`: print what each input made, to pick seeds.
fn debug() -> bool {
    static DEBUG: OnceLock<bool> = OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("MIGRATE_FUZZ_DEBUG").is_some_and(|v| v == "1"))
}

fn name_bytes(name: &Name, width: usize) -> Vec<u8> {
    match name {
        Name::Raw(bytes) => bytes
            .iter()
            .copied()
            .filter(|&b| b != b'/' && b != 0)
            .take(80)
            .collect(),
        Name::Built {
            version,
            pad,
            name,
            suffix,
        } => {
            let digits = width + usize::from(pad.rem_euclid(4).unsigned_abs());
            let part = NAMES[usize::from(*name) % NAMES.len()];
            let suffix = match suffix {
                Suffix::Up => ".up.sql",
                Suffix::Down => ".down.sql",
                Suffix::UpOnly => ".sql",
                Suffix::UpperSql => ".UP.SQL",
                Suffix::None => "",
                Suffix::Bak => ".sql.bak",
            };
            // Versions 0..=15 mostly, so that pairs, duplicates and gaps occur.
            let v = if *version < 0xF000 { version % 16 } else { *version };
            format!("{v:0digits$}_{part}{suffix}").into_bytes()
        }
    }
}

fn contents_bytes(contents: &Contents) -> Vec<u8> {
    match contents {
        Contents::Raw(bytes) => bytes.clone(),
        Contents::Template(i) => TEMPLATES[usize::from(*i) % TEMPLATES.len()].to_vec(),
    }
}

fuzz_target!(|input: Input| {
    let width = usize::from(input.width % 19) + 1;
    let base = root();
    let dir = base.join("migrations");
    match std::fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&dir).expect("clear the directory"),
        Ok(_) => std::fs::remove_file(&dir).expect("clear the file"),
        Err(_) => {}
    }
    match input.dir {
        DirKind::Missing => {
            let s = scan(&dir, base, width);
            assert!(s.migrations.is_empty() && s.has_errors(), "{s:?}");
            return;
        }
        DirKind::File => {
            std::fs::write(&dir, b"not a directory").expect("write");
            let s = scan(&dir, base, width);
            assert!(s.migrations.is_empty() && s.has_errors(), "{s:?}");
            return;
        }
        DirKind::Dir => std::fs::create_dir(&dir).expect("create the directory"),
    }

    // Write the entries; a name used twice keeps its first entry.
    let mut names: Vec<Vec<u8>> = Vec::new();
    let mut texts: Vec<(PathBuf, String)> = Vec::new();
    for entry in input.entries.iter().take(12) {
        let name = name_bytes(&entry.name, width);
        if name.is_empty() || name == b"." || name == b".." || names.contains(&name) {
            continue;
        }
        let path = dir.join(OsStr::from_bytes(&name));
        match entry.kind {
            EntryKind::File => {
                let contents = contents_bytes(&entry.contents);
                std::fs::write(&path, &contents).expect("write a file");
                texts.push((path, String::from_utf8_lossy(&contents).into_owned()));
            }
            EntryKind::Dir => {
                std::fs::create_dir(&path).expect("create a subdirectory");
                // Sometimes a diesel-style up.sql inside.
                if let Contents::Template(_) = entry.contents {
                    std::fs::write(path.join("up.sql"), b"SELECT 1;").expect("write");
                }
            }
            EntryKind::Symlink(to) => {
                let target = if names.is_empty() || to == u8::MAX {
                    b"missing.sql".to_vec()
                } else {
                    names[usize::from(to) % names.len()].clone()
                };
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path).expect("symlink");
            }
        }
        names.push(name);
    }

    let s = scan(&dir, base, width);
    if debug() {
        eprintln!(
            "scan: {} entries, {} migrations, {} problems",
            names.len(),
            s.migrations.len(),
            s.problems.len()
        );
    }
    let shown = |name: &[u8]| PathBuf::from(format!("migrations/{}", String::from_utf8_lossy(name)));

    // Migrations: in order, with the right kinds, read from the directory.
    for pair in s.migrations.windows(2) {
        assert!(pair[0].version < pair[1].version, "out of order: {:?}", s.migrations);
    }
    let mut in_migrations = BTreeSet::new();
    for m in &s.migrations {
        let up = parse_file_name(m.up.path.file_name().unwrap().to_str().unwrap(), width).unwrap();
        assert!(
            up.kind != Kind::Down && up.version == m.version && up.name == m.name,
            "{m:?}"
        );
        assert!(m.up.path.starts_with(&dir), "{m:?}");
        in_migrations.insert(m.up.path.clone());
        if let Some(down) = &m.down {
            let d = parse_file_name(down.path.file_name().unwrap().to_str().unwrap(), width).unwrap();
            assert!(
                d.kind == Kind::Down && d.version == m.version && d.name == m.name,
                "{m:?}"
            );
            assert_eq!(up.kind, Kind::Up, "{m:?}");
            in_migrations.insert(down.path.clone());
        }
    }

    // Problems: lines within their files.
    for p in &s.problems {
        if let Some((_, text)) = texts
            .iter()
            .find(|(path, _)| shown(path.file_name().unwrap().as_bytes()) == p.file)
        {
            let lines = text.lines().count().max(1);
            assert!(p.line <= lines, "{p} but the file has {lines} lines: {text:?}");
        }
    }
    let named: BTreeSet<&Path> = s.problems.iter().map(|p| p.file.as_path()).collect();
    let named_versions: BTreeSet<u64> = s
        .problems
        .iter()
        .filter_map(|p| p.file.file_name()?.to_str())
        .filter_map(|n| parse_file_name(n, width).ok())
        .map(|f| f.version)
        .collect();

    // Every .sql file is accounted for.
    for name in &names {
        let path = dir.join(OsStr::from_bytes(name));
        let lossy = String::from_utf8_lossy(name);
        if name.starts_with(b".")
            || !lossy.to_ascii_lowercase().ends_with(".sql")
            || !std::fs::metadata(&path).is_ok_and(|m| m.is_file())
        {
            continue;
        }
        let listed = in_migrations.contains(&path);
        if !s.has_errors() {
            assert!(listed, "{lossy:?} is neither a migration nor reported: {s:#?}");
        }
        let by_version = std::str::from_utf8(name)
            .ok()
            .and_then(|n| parse_file_name(n, width).ok())
            .is_some_and(|f| named_versions.contains(&f.version));
        assert!(
            listed || named.contains(shown(name).as_path()) || by_version,
            "{lossy:?} is neither a migration nor reported: {s:#?}"
        );
    }
});
