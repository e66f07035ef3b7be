//! The `git` binary, for the commands that look at version control:
//! `renumber` (which file was added later, `git mv`), `check --against`
//! (the migrations at a ref) and `repair` (the text a database applied).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::package::show;

/// The git work tree a directory is in.
pub struct Git {
    dir: PathBuf,
}

/// One file of a directory at a ref.
pub struct TreeFile {
    /// The file's name (no directory).
    pub name: String,
    /// Its blob.
    pub object: String,
}

impl Git {
    /// The work tree `dir` is in, if it is in one (and git is installed).
    pub fn find(dir: &Path) -> Option<Self> {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["rev-parse", "--is-inside-work-tree"])
            .output()
            .ok()?;
        (out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "true")
            .then(|| Self { dir: dir.to_owned() })
    }

    /// The work tree `dir` is in, or an error saying that `doing` needs one.
    ///
    /// # Errors
    ///
    /// When `dir` is not in a git work tree, or git cannot be run.
    pub fn require(dir: &Path, doing: &str) -> Result<Self> {
        if Command::new("git").arg("--version").output().is_err() {
            bail!("{doing} runs the `git` binary, which was not found; install git, or put it on PATH");
        }
        Self::find(dir).with_context(|| {
            format!(
                "{} is not in a git repository, and {doing} reads the migrations from git; run it in a clone of the repository",
                show(dir)
            )
        })
    }

    fn git(&self) -> Command {
        let mut c = Command::new("git");
        c.arg("-C").arg(&self.dir);
        c
    }

    /// Runs git with `args`: its standard output, or its error.
    fn output(&self, args: &[&str]) -> Result<Vec<u8>> {
        let out = self
            .git()
            .args(args)
            .output()
            .with_context(|| format!("cannot run git {}", args.join(" ")))?;
        if !out.status.success() {
            bail!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out.stdout)
    }

    /// Whether git tracks `path`.
    pub fn tracks(&self, path: &Path) -> bool {
        self.git()
            .args(["ls-files", "--error-unmatch", "--"])
            .arg(path)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// When `path` was added: the commit time, in seconds since the epoch,
    /// of the first commit that added it, in `HEAD`'s history or, during a
    /// merge, in the merged branch's (`MERGE_HEAD`), whose files are not
    /// committed here yet.
    pub fn added(&self, path: &Path) -> Option<i64> {
        let merging = self
            .git()
            .args(["rev-parse", "--verify", "--quiet", "MERGE_HEAD"])
            .output()
            .is_ok_and(|o| o.status.success());
        let mut log = self.git();
        log.args(["log", "--diff-filter=A", "--format=%ct", "HEAD"]);
        if merging {
            log.arg("MERGE_HEAD");
        }
        let out = log.arg("--").arg(path).output().ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .min()
    }

    /// `git mv from to`.
    ///
    /// # Errors
    ///
    /// When git refuses.
    pub fn mv(&self, from: &Path, to: &Path) -> Result<()> {
        let out = self
            .git()
            .args(["mv", "--"])
            .arg(from)
            .arg(to)
            .output()
            .context("cannot run git mv")?;
        if !out.status.success() {
            bail!(
                "git mv {} {} failed: {}",
                show(from),
                show(to),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// `git rm -q path`.
    ///
    /// # Errors
    ///
    /// When git refuses.
    pub fn rm(&self, path: &Path) -> Result<()> {
        let path = path.to_string_lossy();
        self.output(&["rm", "-q", "--", &path]).map(drop)
    }

    /// `git add path`.
    ///
    /// # Errors
    ///
    /// When git refuses.
    pub fn add(&self, path: &Path) -> Result<()> {
        let path = path.to_string_lossy();
        self.output(&["add", "--", &path]).map(drop)
    }

    /// The commit `reference` names, or an error saying it does not exist.
    ///
    /// # Errors
    ///
    /// When there is no such branch, tag or commit.
    pub fn commit(&self, reference: &str) -> Result<String> {
        let spec = format!("{reference}^{{commit}}");
        let out = self
            .git()
            .args(["rev-parse", "--verify", "--quiet", "--end-of-options", &spec])
            .output()
            .context("cannot run git rev-parse")?;
        if !out.status.success() || reference.starts_with('-') {
            bail!(
                "the git ref `{reference}` does not exist in this repository; name a branch, tag or commit that does (`git branch -a` lists the branches; in CI, fetch the base branch first, e.g. `git fetch origin main` and --against origin/main)"
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The newest common ancestor of `HEAD` and `commit` (where this
    /// branch forked from it), when there is one.
    pub fn fork_point(&self, commit: &str) -> Option<String> {
        let out = self.output(&["merge-base", "HEAD", commit]).ok()?;
        let base = String::from_utf8_lossy(&out).trim().to_owned();
        (!base.is_empty()).then_some(base)
    }

    /// The path of `dir` (a directory in the work tree) from the top of the
    /// work tree, with `/` separators and a trailing `/` (empty at the top).
    ///
    /// # Errors
    ///
    /// When git cannot say.
    pub fn prefix(dir: &Path) -> Result<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["rev-parse", "--show-prefix"])
            .output()
            .context("cannot run git rev-parse")?;
        if !out.status.success() {
            bail!("cannot find {} in the git work tree", show(dir));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The files (not subdirectories) of the directory `prefix` (see
    /// [`Self::prefix`]) at `commit`; empty when it does not exist there.
    ///
    /// # Errors
    ///
    /// When git fails.
    pub fn files_at(&self, commit: &str, prefix: &str) -> Result<Vec<TreeFile>> {
        let mut args = vec!["ls-tree", "-z", "--full-tree", commit];
        if !prefix.is_empty() {
            args.extend(["--", prefix]);
        }
        let out = self.output(&args)?;
        let mut files = Vec::new();
        for record in out.split(|&b| b == 0).filter(|r| !r.is_empty()) {
            let record = String::from_utf8_lossy(record);
            let Some((meta, path)) = record.split_once('\t') else {
                continue;
            };
            let mut meta = meta.split(' ');
            let (_mode, kind, object) = (meta.next(), meta.next(), meta.next());
            if kind != Some("blob") {
                continue;
            }
            let name = path.rsplit('/').next().unwrap_or(path).to_owned();
            files.push(TreeFile {
                name,
                object: object.unwrap_or_default().to_owned(),
            });
        }
        Ok(files)
    }

    /// The contents of blobs, in the order given, read by one `git
    /// cat-file --batch`.
    ///
    /// # Errors
    ///
    /// When git fails or a blob is missing.
    pub fn blobs(&self, objects: &[&str]) -> Result<Vec<Vec<u8>>> {
        if objects.is_empty() {
            return Ok(Vec::new());
        }
        let mut child = self
            .git()
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot run git cat-file")?;
        let mut stdin = child.stdin.take().context("cannot write to git cat-file")?;
        let input: String = objects.iter().map(|o| format!("{o}\n")).collect();
        // Written by a thread: git's output can fill the pipe before all
        // the input is read.
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let mut out = Vec::new();
        child
            .stdout
            .take()
            .context("cannot read git cat-file")?
            .read_to_end(&mut out)
            .context("cannot read git cat-file")?;
        let _ = writer.join();
        child.wait().context("git cat-file failed")?;
        let mut blobs = Vec::with_capacity(objects.len());
        let mut rest = out.as_slice();
        for object in objects {
            let header_end = rest
                .iter()
                .position(|&b| b == b'\n')
                .context("git cat-file stopped early")?;
            let header = String::from_utf8_lossy(&rest[..header_end]).into_owned();
            let size: usize = header
                .split(' ')
                .nth(2)
                .and_then(|s| s.parse().ok())
                .with_context(|| format!("git cannot read object {object}: {header}"))?;
            let body = rest
                .get(header_end + 1..header_end + 1 + size)
                .context("git cat-file stopped early")?;
            blobs.push(body.to_vec());
            rest = rest.get(header_end + 2 + size..).unwrap_or_default();
        }
        Ok(blobs)
    }

    /// The commits that changed `path` (newest first) with the file's blob
    /// in each: where `repair` looks for the text a database applied.
    ///
    /// # Errors
    ///
    /// When git fails.
    pub fn history_of(&self, path: &Path) -> Result<Vec<(String, String)>> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let dir = path.parent().unwrap_or(Path::new("."));
        let prefix = Self::prefix(dir)?;
        let full = format!("{prefix}{name}");
        let log = self.output(&["log", "--format=%H", "--", &format!(":(top){full}")])?;
        let mut out = Vec::new();
        for commit in String::from_utf8_lossy(&log).lines() {
            let tree = self.output(&["ls-tree", "--full-tree", commit, "--", &full])?;
            let tree = String::from_utf8_lossy(&tree);
            if let Some(object) = tree.split_whitespace().nth(2) {
                out.push((commit.to_owned(), object.to_owned()));
            }
        }
        Ok(out)
    }
}
