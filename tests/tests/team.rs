//! Team workflow (issue 14): `migrations/migrate.lock` makes two branches
//! that each add a migration conflict in git, and `check --against REF`
//! compares with the base branch. Real git repositories in throw-away
//! packages, the real CLI.

use std::cell::Cell;
use std::process::Output;

use tests::Package;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A package with `lock_file = true` in a git repository whose commits
/// get increasing dates (so "added later" is well defined).
pub(crate) struct Repo {
    pub(crate) pkg: Package,
    clock: Cell<u32>,
}

impl Repo {
    pub(crate) fn new() -> Self {
        let pkg = Package::new();
        let manifest = pkg.read("Cargo.toml") + "\n[package.metadata.migrate]\nlock_file = true\n";
        pkg.write("Cargo.toml", manifest);
        pkg.write(".gitignore", "target/\n*.db\n");
        let repo = Self {
            pkg,
            clock: Cell::new(0),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    /// Runs git; panics when it fails.
    pub(crate) fn git(&self, args: &[&str]) -> Output {
        let out = self.git_may_fail(args);
        assert!(out.status.success(), "git {args:?}: {}{}", stdout(&out), stderr(&out));
        out
    }

    pub(crate) fn git_may_fail(&self, args: &[&str]) -> Output {
        self.clock.set(self.clock.get() + 1);
        let date = format!("2020-01-01T00:{:02}:00Z", self.clock.get());
        std::process::Command::new("git")
            .args(args)
            .current_dir(self.pkg.path())
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.pkg.path())
            .output()
            .expect("run git")
    }

    pub(crate) fn commit_all(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-qm", message]);
    }

    /// `cargo migrate ARGS`: (exit code, stdout, stderr).
    pub(crate) fn migrate(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.pkg.migrate().args(args).output().expect("run cargo-migrate");
        (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
    }

    pub(crate) fn ok(&self, args: &[&str]) -> (String, String) {
        let (code, o, e) = self.migrate(args);
        assert_eq!(code, 0, "cargo migrate {args:?}: {o}{e}");
        (o, e)
    }

    /// `cargo migrate new NAME`, then its SQL written and locked: what a
    /// developer does for each migration.
    pub(crate) fn add(&self, name: &str, up: &str, down: &str) -> String {
        let (o, _) = self.ok(&["new", name]);
        let up_path = o.lines().next().expect("new prints the up file").to_owned();
        let down_path = o.lines().nth(1).expect("new prints the down file").to_owned();
        self.pkg.write(&up_path, up);
        self.pkg.write(&down_path, down);
        self.ok(&["lock"]);
        up_path
    }

    pub(crate) fn lock(&self) -> String {
        self.pkg.read("migrations/migrate.lock")
    }
}

/// A repository on `main` with migrations 0001 to 0005, locked and committed.
fn five() -> Repo {
    let repo = Repo::new();
    for i in 1..=5 {
        repo.add(
            &format!("create t{i}"),
            &format!("CREATE TABLE t{i} (id INTEGER PRIMARY KEY);\n"),
            &format!("DROP TABLE t{i};\n"),
        );
    }
    repo.commit_all("five migrations");
    repo
}

#[test]
fn two_branches_adding_0006_conflict_in_the_lock_file() {
    let repo = five();
    repo.git(&["checkout", "-q", "-b", "alice"]);
    repo.add(
        "add phone",
        "ALTER TABLE t1 ADD phone TEXT;\n",
        "ALTER TABLE t1 DROP COLUMN phone;\n",
    );
    repo.commit_all("alice: phone");
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["checkout", "-q", "-b", "bob"]);
    repo.add(
        "add email",
        "ALTER TABLE t1 ADD email TEXT;\n",
        "ALTER TABLE t1 DROP COLUMN email;\n",
    );
    repo.commit_all("bob: email");
    // Each branch passes its own checks.
    repo.ok(&["check"]);
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", "alice"]);
    repo.git(&["checkout", "-q", "bob"]);

    // The migration files have different names, so only the lock file
    // tells git that the branches collide.
    let merge = repo.git_may_fail(&["merge", "main"]);
    assert!(!merge.status.success(), "the merge must fail: {}", stdout(&merge));
    assert!(
        stdout(&merge).contains("CONFLICT (content): Merge conflict in migrations/migrate.lock"),
        "{}",
        stdout(&merge)
    );
    let status = stdout(&repo.git(&["status", "--porcelain"]));
    assert!(status.contains("UU migrations/migrate.lock"), "{status}");
    assert!(
        repo.lock().starts_with("<<<<<<< HEAD\nmigrate.lock v1 total="),
        "{}",
        repo.lock()
    );

    // The duplicate version is what `check` reports, with the command to run.
    let (code, _, e) = repo.migrate(&["check"]);
    assert_eq!(code, 1);
    assert!(e.contains("duplicate version 6"), "{e}");
    assert!(e.contains("cargo migrate renumber"), "{e}");

    // renumber moves bob's migration (added later) and writes the lock again.
    let (_, e) = repo.ok(&["renumber"]);
    assert!(e.contains("0006 add_email → 0007"), "{e}");
    assert!(
        e.contains("wrote migrations/migrate.lock for the renumbered migrations"),
        "{e}"
    );
    let lock = repo.lock();
    assert!(!lock.contains("<<<<<<<"), "{lock}");
    let lines: Vec<&str> = lock.lines().collect();
    assert!(lines[6].starts_with("0006 add_phone up="), "{lock}");
    assert!(lines[7].starts_with("0007 add_email up="), "{lock}");
    let (_, e) = repo.ok(&["check", "--against", "main"]);
    assert!(
        e.contains("checked 7 migrations in migrations, and against main: ok"),
        "{e}"
    );
    repo.commit_all("merge main");
}

#[test]
fn the_build_and_check_fail_when_a_locked_migration_changes() {
    let repo = Repo::new();
    repo.add(
        "create users",
        "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
        "DROP TABLE users;\n",
    );
    let up = repo.add(
        "add phone",
        "ALTER TABLE users ADD phone TEXT;\n",
        "ALTER TABLE users DROP COLUMN phone;\n",
    );
    let (ok, e) = repo.pkg.build();
    assert!(ok, "{e}");
    repo.pkg
        .write(&up, "ALTER TABLE users ADD phone TEXT NOT NULL DEFAULT '';\n");
    let expected = "migrations/migrate.lock:3: 0002_add_phone changed since the lock was written (its up file) (help: if the change is intended and no database has applied the old text, run `cargo migrate lock`; otherwise restore the file and put the change in a new migration)";
    let (code, _, e) = repo.migrate(&["check"]);
    assert_eq!(code, 1);
    assert!(e.contains(&format!("error: {expected}\n")), "{e}");
    let (ok, e) = repo.pkg.build();
    assert!(!ok);
    assert!(e.contains(expected), "{e}");
    // `lock` accepts the change.
    let (_, e) = repo.ok(&["lock"]);
    assert!(e.contains("wrote migrations/migrate.lock (2 migrations)"), "{e}");
    repo.ok(&["check"]);
}

#[test]
fn a_new_migration_is_a_warning_until_its_sql_is_locked() {
    let repo = Repo::new();
    let (o, e) = repo.ok(&["new", "create users"]);
    assert!(
        e.contains("created migrations/migrate.lock with 0001 create_users"),
        "{e}"
    );
    repo.pkg
        .write(o.lines().next().unwrap(), "CREATE TABLE users (id INTEGER);\n");
    repo.pkg.write(o.lines().nth(1).unwrap(), "DROP TABLE users;\n");
    let (_, e) = repo.ok(&["check"]);
    assert!(
        e.contains("warning: migrations/migrate.lock:2: 0001_create_users is locked as the empty template of `cargo migrate new`: its SQL is not locked yet (help: run `cargo migrate lock` before you commit it)"),
        "{e}"
    );
    // `new` keeps the other lines as they are: a hand edit is still caught.
    repo.ok(&["lock"]);
    repo.pkg.write(
        "migrations/0001_create_users.up.sql",
        "CREATE TABLE users (id INTEGER, x);\n",
    );
    repo.ok(&["new", "add phone"]);
    repo.pkg.write(
        "migrations/0002_add_phone.up.sql",
        "ALTER TABLE users ADD phone TEXT;\n",
    );
    repo.pkg.write(
        "migrations/0002_add_phone.down.sql",
        "ALTER TABLE users DROP COLUMN phone;\n",
    );
    let (code, _, e) = repo.migrate(&["check"]);
    assert_eq!(code, 1);
    assert!(
        e.contains("0001_create_users changed since the lock was written"),
        "{e}"
    );
}

#[test]
fn a_lock_file_edited_into_nonsense_is_one_line_with_its_line_and_a_hint() {
    let repo = Repo::new();
    repo.add(
        "create users",
        "CREATE TABLE users (id INTEGER);\n",
        "DROP TABLE users;\n",
    );
    repo.add(
        "add phone",
        "ALTER TABLE users ADD phone TEXT;\n",
        "ALTER TABLE users DROP COLUMN phone;\n",
    );
    let good = repo.lock();
    for (bad, expected) in [
        (
            good.replacen(" up=", " up ", 2),
            "error: migrations/migrate.lock:2: line 2 is not a migration's line `VERSION NAME up=CHECKSUM down=CHECKSUM|-`",
        ),
        (
            good.replacen("0002 add_phone", "0002 add_phones", 1),
            "error: migrations/migrate.lock:1: the total on line 1 does not match the lines below it: the lock file was edited by hand",
        ),
        (
            format!("hello\n{good}"),
            "error: migrations/migrate.lock:1: line 1 is not the lock file's header `migrate.lock v1 total=CHECKSUM`",
        ),
    ] {
        repo.pkg.write("migrations/migrate.lock", &bad);
        let (code, o, e) = repo.migrate(&["check"]);
        assert_eq!((code, o.as_str()), (1, ""), "{e}");
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 2, "{e}");
        assert!(lines[0].starts_with(expected), "{e}");
        assert!(
            lines[0].contains("(help: run `cargo migrate lock` to write it again"),
            "{e}"
        );
        assert_eq!(lines[1], "error: 1 problem in the migrations");
        // Nothing changed.
        assert_eq!(repo.lock(), bad);
    }
    repo.ok(&["lock"]);
    assert_eq!(repo.lock(), good);
}

#[test]
fn init_turns_the_lock_file_on() {
    let pkg = Package::bare();
    pkg.write("migrations/0001_a.sql", "CREATE TABLE a (x);\n");
    let out = pkg.migrate().arg("init").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        pkg.read("Cargo.toml").contains("lock_file = true"),
        "{}",
        pkg.read("Cargo.toml")
    );
    let lock = pkg.read("migrations/migrate.lock");
    assert!(lock.lines().nth(1).unwrap().starts_with("0001 a up="), "{lock}");
    assert!(
        stderr(&out).contains("created migrations/migrate.lock"),
        "{}",
        stderr(&out)
    );
    let out = pkg.migrate().arg("check").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn check_against_main_catches_an_edited_merged_migration_and_a_too_low_number() {
    let repo = five();
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.add(
        "add phone",
        "ALTER TABLE t1 ADD phone TEXT;\n",
        "ALTER TABLE t1 DROP COLUMN phone;\n",
    );
    repo.commit_all("feature: phone");
    // Meanwhile main gets 0006 and 0007 from other branches.
    repo.git(&["checkout", "-q", "main"]);
    repo.add("create t6", "CREATE TABLE t6 (x);\n", "DROP TABLE t6;\n");
    repo.add("create t7", "CREATE TABLE t7 (x);\n", "DROP TABLE t7;\n");
    repo.commit_all("main: 6 and 7");
    repo.git(&["checkout", "-q", "feature"]);

    let (code, o, e) = repo.migrate(&["check", "--against", "main"]);
    assert_eq!((code, o.as_str()), (1, ""), "{e}");
    assert_eq!(
        e,
        "error: migrations/0006_add_phone.up.sql: new migration 0006 add_phone is numbered at or below 0007 create_t7, the newest at main: it would collide with, or be applied out of order after, the migrations merged there (help: merge main into this branch (`git merge main`), then run `cargo migrate renumber --against main` to move it after 0007)\n\
         error: 1 problem in the migrations\n"
    );

    // An edit to a migration that is on main.
    repo.pkg.write(
        "migrations/0003_create_t3.up.sql",
        "CREATE TABLE t3 (id INTEGER PRIMARY KEY);\nCREATE INDEX t3_id ON t3 (id);\n",
    );
    repo.ok(&["lock"]);
    let (code, _, e) = repo.migrate(&["check", "--against", "main"]);
    assert_eq!(code, 1);
    assert!(
        e.contains("error: migrations/0003_create_t3.up.sql:2: migration 0003 create_t3 changed since main, where databases may have applied it (help: restore it with `git checkout main -- migrations/0003_create_t3.up.sql` and put the change in a new migration"),
        "{e}"
    );
    assert!(e.contains("error: 2 problems in the migrations"), "{e}");
    // Without --against, the branch is consistent in itself.
    repo.ok(&["check"]);

    // Merging main and renumbering fixes the number; restoring, the edit.
    repo.git(&["checkout", "main", "--", "migrations/0003_create_t3.up.sql"]);
    repo.ok(&["lock"]);
    let merge = repo.git_may_fail(&["merge", "-q", "main"]);
    assert!(!merge.status.success(), "the lock file conflicts");
    // main's migrations keep their versions, whatever the commit dates say.
    let (o, e) = repo.ok(&["renumber", "--against", "main"]);
    assert!(
        o.contains("renamed migrations/0006_add_phone.up.sql → migrations/0008_add_phone.up.sql (git mv)"),
        "{o}"
    );
    assert!(
        e.contains("moved 1 migration (not at main) to the end: 0006 add_phone → 0008"),
        "{e}"
    );
    let (_, e) = repo.ok(&["check", "--against", "main"]);
    assert!(
        e.contains("checked 8 migrations in migrations, and against main: ok"),
        "{e}"
    );
}

#[test]
fn check_against_a_missing_ref_or_outside_git_is_one_line() {
    let repo = five();
    let (code, o, e) = repo.migrate(&["check", "--against", "no-such-branch"]);
    assert_eq!((code, o.as_str()), (1, ""));
    assert_eq!(
        e,
        "error: the git ref `no-such-branch` does not exist in this repository; name a branch, tag or commit that does (`git branch -a` lists the branches; in CI, fetch the base branch first, e.g. `git fetch origin main` and --against origin/main)\n"
    );
    let (code, _, e) = repo.migrate(&["check", "--against=--upload-pack=x"]);
    assert_eq!(code, 1, "{e}");
    assert!(e.contains("does not exist"), "{e}");

    let plain = Package::new();
    plain.write("migrations/0001_a.sql", "CREATE TABLE a (x);\n");
    // Scratch packages live under this repository's target/: stop git's
    // search for a repository at the package.
    let ceiling = plain.path().parent().unwrap();
    let out = plain
        .migrate()
        .args(["check", "--against", "main"])
        .env("GIT_CEILING_DIRECTORIES", ceiling)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.starts_with("error: ") && e.contains("is not in a git repository, and `cargo migrate check --against` reads the migrations from git; run it in a clone of the repository"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
}
