//! `init`: sets a package up for migrations: the directory, a `build.rs`,
//! the two dependencies and the config, keeping the manifest's formatting.
//! Running it again changes nothing.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use toml_edit::{DocumentMut, InlineTable, Item, Table, Value};

use crate::cli::InitArgs;
use crate::database::{Database, Source};
use crate::messages::{say, warning};
use crate::package::{Package, show};
use crate::settings::Settings;

/// The `build.rs` that `init` writes.
const BUILD_RS: &str = "//! Checks the migrations at build time and generates the `migrations` module.\n\
\n\
fn main() -> Result<(), migrate_build::Error> {\n    migrate_build::build()?;\n    Ok(())\n}\n";

/// The line to add to an existing build script's `main`.
const BUILD_LINE: &str = "    migrate_build::build().expect(\"invalid migrations\");";

/// The database `init` configures when none is given.
const DEFAULT_DATABASE: &str = "sqlite:app.db";

/// The repository this binary was built from: while the crates are not
/// published, the dependencies `init` adds are paths into it.
fn built_from() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_owned()
}

/// `init [--path DIR]`.
pub fn run(settings: &Settings, args: &InitArgs) -> Result<()> {
    let package = &settings.package;
    // --database is written to the config: check it first, before changing anything.
    let cwd = &settings.cwd;
    // The flag is written as given: in the manifest a relative path is
    // relative to the package.
    let database = match settings.database_flag.as_deref() {
        Some(url) => {
            let parsed = Database::parse(url, Source::Flag, cwd)?;
            if parsed.postgres_url().is_some() && crate::database::redact(url) != url {
                bail!(
                    "the database URL `{}` (from --database) has a password, and `init` writes the URL into Cargo.toml, which is committed; pass it without the password, and put the full URL in DATABASE_URL (or in a .env file that is not committed)",
                    crate::database::redact(url)
                );
            }
            url.to_owned()
        }
        None => DEFAULT_DATABASE.to_owned(),
    };
    let repo = args.path.as_ref().map(|p| cwd.join(p));
    let mut out = std::io::stdout().lock();
    // Everything that can be refused is decided before anything is written.
    let mut edit = edit_manifest(package, repo.as_deref(), &database)?;
    let root = package.workspace_root.join("Cargo.toml");
    // Cargo reads profiles only from the workspace's root manifest.
    let root_edit = if same_file(&root, &package.manifest) {
        edit.profile(&root)?;
        None
    } else {
        let text = std::fs::read_to_string(&root).with_context(|| format!("cannot read {}", show(&root)))?;
        let mut root_edit = ManifestEdit {
            doc: text.parse().with_context(|| format!("cannot parse {}", show(&root)))?,
            text,
            changes: Vec::new(),
        };
        root_edit.profile(&root)?;
        Some(root_edit)
    };
    let dir = package.migrations_dir();
    if dir.exists() && !dir.is_dir() {
        bail!(
            "{} exists but is not a directory; move it away, or set dir in [package.metadata.migrate]",
            show(&dir)
        );
    }

    if dir.is_dir() {
        say!("{} exists", show(&dir));
    } else {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", show(&dir)))?;
        say!("created {}/", show(&dir));
    }

    edit.write(&package.manifest)?;
    if edit
        .changes
        .iter()
        .any(|c| c.starts_with("added [package.metadata.migrate]"))
    {
        write_snapshot(package)?;
        write_lock(package);
    }
    if let Some(root_edit) = &root_edit {
        root_edit.write(&root)?;
    }

    match &package.build_script {
        Some(path) => {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text.contains("migrate_build::") {
                say!("{} already calls migrate_build", show(path));
            } else {
                say!(
                    "{} exists, so it was left as it is: add this line to its fn main():",
                    show(path)
                );
                writeln!(out, "{BUILD_LINE}\n")?;
                out.flush()?;
            }
        }
        None => {
            let path = package.dir.join("build.rs");
            if path.exists() {
                say!(
                    "{} exists but cargo does not run it (build = false in Cargo.toml?): make it the build script and add this line to its fn main():",
                    show(&path)
                );
                writeln!(out, "{BUILD_LINE}\n")?;
                out.flush()?;
            } else {
                std::fs::write(&path, BUILD_RS).with_context(|| format!("cannot write {}", show(&path)))?;
                say!("created {}", show(&path));
            }
        }
    }

    let configured = package.config.database.as_deref().unwrap_or(&database);
    if is_postgres(configured) {
        writeln!(
            out,
            "// In src/main.rs: the module generated from the migrations, applied at start-up.\n\
             mod migrations {{\n    include!(concat!(env!(\"OUT_DIR\"), \"/migrations.rs\"));\n}}\n\
             \n\
             fn main() -> Result<(), Box<dyn std::error::Error>> {{\n    \
                 use migrate_runtime::postgres::{{Client, NoTls}};\n    \
                 let mut client = Client::connect(&std::env::var(\"DATABASE_URL\")?, NoTls)?;\n    \
                 migrations::migrator().apply_postgres(&mut client)?;\n    \
                 Ok(())\n\
             }}"
        )?;
        out.flush()?;
        say!(
            "next: `cargo migrate new \"create users table\"`, write its SQL, then `cargo build` checks it and `cargo migrate up` applies it"
        );
        return Ok(());
    }
    let file = app_file(configured);
    writeln!(
        out,
        "// In src/main.rs: the module generated from the migrations, applied at start-up.\n\
         mod migrations {{\n    include!(concat!(env!(\"OUT_DIR\"), \"/migrations.rs\"));\n}}\n\
         \n\
         fn main() -> Result<(), Box<dyn std::error::Error>> {{\n    \
             let mut conn = migrate_runtime::rusqlite::Connection::open({file:?})?;\n    \
             migrations::apply(&mut conn)?;\n    \
             Ok(())\n\
         }}"
    )?;
    out.flush()?;
    say!(
        "next: `cargo migrate new \"create users table\"`, write its SQL, then `cargo build` checks it and `cargo migrate up` applies it"
    );
    Ok(())
}

/// Whether `url` names a PostgreSQL database.
fn is_postgres(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// The file name the app opens, from the configured database URL.
fn app_file(url: &str) -> String {
    let path = url
        .strip_prefix("sqlite:")
        .map_or(url, |r| r.strip_prefix("//").unwrap_or(r));
    if path.is_empty() || path == ":memory:" {
        "app.db".to_owned()
    } else {
        path.to_owned()
    }
}

/// A manifest with what `init` adds where it is missing, formatting kept.
struct ManifestEdit {
    /// The text as read.
    text: String,
    /// The document, edited.
    doc: DocumentMut,
    /// What changed or was there already, one line each.
    changes: Vec<String>,
}

impl ManifestEdit {
    /// Adds `[profile.dev.package.libsqlite3-sys] opt-level = 2` when the
    /// manifest (the workspace's root) has no such section: the build
    /// script replays every migration on the bundled SQLite, which cargo
    /// otherwise compiles unoptimized in dev builds. A package override is
    /// what reaches the build script's copy too: build scripts and apps
    /// share one optimized libsqlite3-sys (`[profile.dev.build-override]`
    /// would compile SQLite twice, the app's copy still unoptimized).
    fn profile(&mut self, manifest: &Path) -> Result<()> {
        let present = self
            .doc
            .get("profile")
            .and_then(|p| p.get("dev"))
            .and_then(|d| d.get("package"))
            .and_then(|p| p.get(SQLITE_PACKAGE))
            .is_some();
        if present {
            self.changes
                .push(format!("[profile.dev.package.{SQLITE_PACKAGE}] exists"));
            return Ok(());
        }
        let implicit = |item: &mut Item| {
            if item.is_none() {
                let mut t = Table::new();
                t.set_implicit(true);
                *item = Item::Table(t);
            }
        };
        let mut item = &mut self.doc["profile"];
        let mut name = "profile".to_owned();
        for key in ["dev", "package"] {
            implicit(item);
            item = item
                .as_table_like_mut()
                .with_context(|| format!("[{name}] in {} is not a table", show(manifest)))?
                .entry(key)
                .or_insert(Item::None);
            name = format!("{name}.{key}");
        }
        implicit(item);
        let mut sqlite = Table::new();
        sqlite.insert("opt-level", toml_edit::value(2));
        item.as_table_like_mut()
            .with_context(|| format!("[{name}] in {} is not a table", show(manifest)))?
            .insert(SQLITE_PACKAGE, Item::Table(sqlite));
        self.changes.push(format!(
            "added [profile.dev.package.{SQLITE_PACKAGE}] opt-level = 2, so the bundled SQLite that the build script checks the migrations with is compiled optimized"
        ));
        Ok(())
    }

    /// Writes the manifest when it changed, and says what changed.
    fn write(&self, manifest: &Path) -> Result<()> {
        let new_text = self.doc.to_string();
        if new_text != self.text {
            std::fs::write(manifest, new_text).with_context(|| format!("cannot write {}", show(manifest)))?;
        }
        for change in &self.changes {
            say!("{}: {change}", show(manifest));
        }
        Ok(())
    }
}

/// The package whose compilation `init`'s profile override speeds up.
const SQLITE_PACKAGE: &str = "libsqlite3-sys";

/// Whether `a` and `b` name the same file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn edit_manifest(package: &Package, repo: Option<&Path>, database: &str) -> Result<ManifestEdit> {
    let manifest = &package.manifest;
    let text = std::fs::read_to_string(manifest).with_context(|| format!("cannot read {}", show(manifest)))?;
    let mut doc: DocumentMut = text
        .parse()
        .with_context(|| format!("cannot parse {}", show(manifest)))?;
    let workspace_deps = workspace_dependencies(package)?;
    let mut changes = Vec::new();
    for (table, krate) in [
        ("dependencies", "migrate-runtime"),
        ("build-dependencies", "migrate-build"),
    ] {
        if has_dependency(&doc, table, krate) {
            changes.push(format!("{krate} is already in [{table}]"));
            continue;
        }
        let mut value = InlineTable::new();
        let how = if workspace_deps.iter().any(|d| d == krate) {
            value.insert("workspace", true.into());
            "from [workspace.dependencies]".to_owned()
        } else {
            let root = repository(repo)?;
            let path = root.join(krate);
            value.insert("path", path.display().to_string().into());
            format!("path = {}", path.display())
        };
        if krate == "migrate-runtime" && is_postgres(database) {
            let mut features = toml_edit::Array::new();
            features.push("postgres");
            value.insert("features", Value::Array(features));
        }
        value.fmt();
        let deps = doc
            .entry(table)
            .or_insert_with(toml_edit::table)
            .as_table_like_mut()
            .with_context(|| format!("[{table}] in {} is not a table", show(manifest)))?;
        deps.insert(krate, Item::Value(Value::InlineTable(value)));
        changes.push(format!("added {krate} to [{table}] ({how})"));
    }
    if has_config(&doc) {
        changes.push("[package.metadata.migrate] exists".to_owned());
    } else {
        add_config(&mut doc, package, database)?;
        changes.push(format!(
            "added [package.metadata.migrate] with database = {database:?}, the database of `cargo migrate` commands, and snapshot = {:?}, the schema file `cargo build` checks, and lock_file = true (migrations/migrate.lock)",
            snapshot(package).display().to_string()
        ));
    }
    Ok(ManifestEdit { text, doc, changes })
}

/// Whether `[table]` has `krate`, by its name or renamed (`package = "…"`).
fn has_dependency(doc: &DocumentMut, table: &str, krate: &str) -> bool {
    let alias = if table == "build-dependencies" {
        "build_dependencies"
    } else {
        table
    };
    [table, alias].into_iter().any(|t| {
        doc.get(t).and_then(Item::as_table_like).is_some_and(|deps| {
            deps.iter()
                .any(|(name, value)| name == krate || value.get("package").and_then(Item::as_str) == Some(krate))
        })
    })
}

fn has_config(doc: &DocumentMut) -> bool {
    doc.get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("migrate"))
        .is_some()
}

fn add_config(doc: &mut DocumentMut, package: &Package, database: &str) -> Result<()> {
    let manifest = show(&package.manifest);
    let package_table = doc
        .get_mut("package")
        .and_then(Item::as_table_like_mut)
        .with_context(|| format!("{manifest} has no [package]"))?;
    let metadata = package_table.entry("metadata").or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    let metadata = metadata
        .as_table_like_mut()
        .with_context(|| format!("package.metadata in {manifest} is not a table"))?;
    let mut migrate = Table::new();
    migrate.insert("dir", toml_edit::value(package.config.dir.display().to_string()));
    migrate.insert("database", toml_edit::value(database));
    migrate.insert("snapshot", toml_edit::value(snapshot(package).display().to_string()));
    migrate.insert("lock_file", toml_edit::value(true));
    migrate.insert("lint_from", toml_edit::value(lint_from(package)));
    metadata.insert("migrate", Item::Table(migrate));
    Ok(())
}

/// The `lint_from` a new config gets: the version the package's next
/// migration gets (1 in a new package), so the build lints every migration
/// written from now on and does not re-judge the ones already there.
fn lint_from(package: &Package) -> i64 {
    migrate_build::load(&package.dir, &package.config)
        .ok()
        .and_then(|l| l.migrations.last().map(|m| m.version.saturating_add(1)))
        .and_then(|v| i64::try_from(v).ok())
        .unwrap_or(1)
}

/// The schema snapshot a new config gets: `schema.sql` in the migrations
/// directory, relative to the package.
fn snapshot(package: &Package) -> PathBuf {
    package.config.dir.join("schema.sql")
}

/// Writes the schema snapshot of a config `init` just added, unless the
/// file exists: the schema the migrations make (empty without any), as the
/// build compares it.
fn write_snapshot(package: &Package) -> Result<()> {
    let mut config = package.config.clone();
    config.snapshot = Some(snapshot(package));
    let Some(path) = migrate_build::snapshot_path(&package.dir, &config) else {
        return Ok(());
    };
    if path.exists() {
        say!("{} exists", show(&path));
        return Ok(());
    }
    match migrate_build::schema_snapshot(&package.dir, &config) {
        Ok(text) => {
            std::fs::write(&path, text).with_context(|| format!("cannot write {}", show(&path)))?;
            say!(
                "created {}: the schema the migrations make, which `cargo build` checks; update it with `cargo migrate schema --write` and review it with each migration",
                show(&path)
            );
        }
        Err(_) => warning!(
            "did not write {}: the migrations have problems (see `cargo migrate check`); write it with `cargo migrate schema --write` once they are fixed",
            show(&path)
        ),
    }
    Ok(())
}

/// Writes the lock file of a config `init` just added (`lock_file =
/// true`), for the migrations already there.
fn write_lock(package: &Package) {
    let dir = package.migrations_dir();
    // The config as `init` wrote it: the snapshot it just created is not
    // a migration file.
    let mut config = package.config.clone();
    config.snapshot = Some(snapshot(package));
    let written = migrate_build::load(&package.dir, &config)
        .and_then(|loaded| migrate_build::lockfile::write(&dir, &loaded.migrations, package.config.width));
    match written {
        Ok((path, _)) => say!(
            "created {}: a line per migration, so two branches that add one conflict when merged; `new` keeps it current, `cargo migrate lock` writes it again",
            show(&path)
        ),
        Err(_) => warning!(
            "did not write {}: the migrations have problems (see `cargo migrate check`); write it with `cargo migrate lock` once they are fixed",
            show(&migrate_build::lockfile::path(&dir))
        ),
    }
}

/// The crates the workspace lists in `[workspace.dependencies]`.
fn workspace_dependencies(package: &Package) -> Result<Vec<String>> {
    let root = package.workspace_root.join("Cargo.toml");
    let Ok(text) = std::fs::read_to_string(&root) else {
        return Ok(Vec::new());
    };
    let doc: DocumentMut = text.parse().with_context(|| format!("cannot parse {}", show(&root)))?;
    Ok(doc
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(Item::as_table_like)
        .map(|deps| deps.iter().map(|(k, _)| k.to_owned()).collect())
        .unwrap_or_default())
}

/// The cargo-migrate repository to depend on, checked.
fn repository(given: Option<&Path>) -> Result<PathBuf> {
    let root = given.map_or_else(built_from, Path::to_path_buf);
    let flag = if given.is_some() {
        "--path"
    } else {
        "the repository this binary was built from,"
    };
    for krate in ["migrate-runtime", "migrate-build"] {
        if !root.join(krate).join("Cargo.toml").is_file() {
            bail!(
                "{flag} {} has no {krate}/Cargo.toml; point --path at a checkout of the cargo-migrate repository (the crates are not published yet)",
                root.display()
            );
        }
    }
    Ok(std::fs::canonicalize(&root).unwrap_or(root))
}
