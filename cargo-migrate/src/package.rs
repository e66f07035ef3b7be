//! Which package the commands work on: `--manifest-path`, `-p`, or the
//! current directory, resolved by `cargo metadata --no-deps` (so commands
//! that only read the manifest never need its dependencies).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use migrate_build::{Backend, Config};

/// The package, its migration settings, and where things are.
#[derive(Debug)]
pub struct Package {
    /// The directory of its `Cargo.toml`.
    pub dir: PathBuf,
    /// Its `Cargo.toml`.
    pub manifest: PathBuf,
    /// The workspace's root directory.
    pub workspace_root: PathBuf,
    /// Its build script, when it has one.
    pub build_script: Option<PathBuf>,
    /// `[package.metadata.migrate]`: the settings of the migrations the
    /// command works on (see [`Package::select`]).
    pub config: Config,
    /// Every migrations directory's settings: one, or one per backend
    /// ([`Config::sets_from_manifest`]).
    pub sets: Vec<Config>,
    /// Where `check` keeps its replay cache:
    /// `<target dir>/migrate-check-cache/<package name>`.
    pub check_cache: PathBuf,
}

impl Package {
    /// Finds the package: by name with `package`, else the one whose
    /// manifest is `manifest_path`, else the one whose directory holds `cwd`.
    ///
    /// # Errors
    ///
    /// When cargo cannot read the manifest, no package matches, or the
    /// package's `[package.metadata.migrate]` is invalid.
    pub fn resolve(manifest_path: Option<&Path>, package: Option<&str>, cwd: &Path) -> Result<Self> {
        let mut command = cargo_metadata::MetadataCommand::new();
        command.no_deps().current_dir(cwd);
        if let Some(path) = manifest_path {
            if !path.exists() {
                bail!(
                    "--manifest-path {}: no such file; give the path of a package's Cargo.toml",
                    path.display()
                );
            }
            command.manifest_path(path);
        }
        let metadata = command.exec().map_err(metadata_error)?;
        let members = metadata.workspace_packages();
        let names = || members.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ");
        let found = if let Some(name) = package {
            members
                .iter()
                .copied()
                .find(|p| p.name.as_str() == name)
                .ok_or_else(|| {
                    anyhow!(
                        "-p {name}: there is no package `{name}` in the workspace; its packages are: {}",
                        names()
                    )
                })?
        } else if let Some(path) = manifest_path {
            let path = absolute(cwd, path);
            let path = std::fs::canonicalize(&path).unwrap_or(path);
            members
                .iter()
                .copied()
                .find(|p| std::fs::canonicalize(&p.manifest_path).is_ok_and(|m| m == path))
                .or_else(|| only(&members))
                .ok_or_else(|| {
                    anyhow!(
                        "{} is a workspace manifest without a package; choose a package with -p NAME: {}",
                        path.display(),
                        names()
                    )
                })?
        } else {
            let cwd = std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_owned());
            members
                .iter()
                .filter_map(|p| {
                    let dir = std::fs::canonicalize(p.manifest_path.parent()?).ok()?;
                    cwd.starts_with(&dir).then_some((dir.components().count(), p))
                })
                .max_by_key(|(depth, _)| *depth)
                .map(|(_, p)| *p)
                .or_else(|| only(&members))
                .ok_or_else(|| {
                    anyhow!(
                        "the current directory is in a workspace but not in one of its packages; choose one with -p NAME: {}",
                        names()
                    )
                })?
        };
        let manifest = PathBuf::from(found.manifest_path.clone());
        let dir = manifest
            .parent()
            .context("the package's manifest has no directory")?
            .to_owned();
        let sets = Config::sets_from_manifest(&manifest)
            .map_err(|e| crate::messages::Problems::new(&e, "[package.metadata.migrate]"))?;
        let config = sets[0].clone();
        let build_script = found
            .targets
            .iter()
            .find(|t| t.is_custom_build())
            .map(|t| PathBuf::from(t.src_path.clone()));
        Ok(Self {
            dir,
            manifest,
            workspace_root: metadata.workspace_root.clone().into(),
            build_script,
            config,
            sets,
            check_cache: PathBuf::from(metadata.target_directory.clone())
                .join("migrate-check-cache")
                .join(found.name.as_str()),
        })
    }

    /// Whether the package keeps one migrations directory per backend.
    pub fn per_backend(&self) -> bool {
        self.sets.len() > 1
    }

    /// Works on `backend`'s migrations from now on.
    ///
    /// # Errors
    ///
    /// When the package has no migrations for `backend`.
    pub fn select(&mut self, backend: Backend) -> Result<()> {
        match self.sets.iter().find(|c| c.backend() == backend) {
            Some(config) => {
                self.config = config.clone();
                Ok(())
            }
            None => bail!(
                "this package has no migrations for {}: its migrations are {} (help: drop --backend, or give a database of that kind)",
                backend.name(),
                self.describe_sets()
            ),
        }
    }

    /// `sqlite (migrations/sqlite) and postgres (migrations/postgresql)`.
    pub fn describe_sets(&self) -> String {
        let each: Vec<String> = self
            .sets
            .iter()
            .map(|c| {
                let dir = migrate_build::migrations_dir(&self.dir, c);
                format!("{} ({})", c.backend().name(), show(&dir))
            })
            .collect();
        each.join(" and ")
    }

    /// The migrations directory.
    pub fn migrations_dir(&self) -> PathBuf {
        migrate_build::migrations_dir(&self.dir, &self.config)
    }

    /// The migrations directory, or an error saying how to create it when
    /// it does not exist.
    ///
    /// # Errors
    ///
    /// When the directory does not exist.
    pub fn existing_migrations_dir(&self) -> Result<PathBuf> {
        let dir = self.migrations_dir();
        if !dir.is_dir() && self.per_backend() {
            bail!(
                "the {} migrations directory {} does not exist; create it (`mkdir -p {}`), or set dir in [package.metadata.migrate.{}]",
                self.config.backend().name(),
                show(&dir),
                show(&dir),
                self.config.backend().name()
            );
        }
        if !dir.is_dir() {
            bail!(
                "the migrations directory {} does not exist; create it with `cargo migrate init` (or set dir in [package.metadata.migrate])",
                show(&dir)
            );
        }
        Ok(dir)
    }

    /// A version number zero-padded to the configured width: `0003`.
    pub fn version(&self, version: u64) -> String {
        format!("{version:0width$}", width = self.config.width)
    }
}

/// `path` relative to the current directory when inside it.
pub fn show(path: &Path) -> String {
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| path.to_owned());
    shown.display().to_string()
}

fn only<'a>(members: &[&'a cargo_metadata::Package]) -> Option<&'a cargo_metadata::Package> {
    match members {
        [one] => Some(one),
        _ => None,
    }
}

fn absolute(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    }
}

/// Cargo's own one-line message, without its `error: ` prefix.
fn metadata_error(e: cargo_metadata::Error) -> anyhow::Error {
    match e {
        cargo_metadata::Error::CargoMetadata { stderr } => {
            let message = stderr
                .lines()
                .find_map(|l| l.strip_prefix("error: "))
                .unwrap_or(stderr.trim())
                .trim()
                .to_owned();
            anyhow!(
                "cannot read the package: {message}; run in a cargo package (or a workspace) or pass --manifest-path"
            )
        }
        other => anyhow!("cannot run `cargo metadata`: {other}; is cargo installed and on PATH?"),
    }
}
