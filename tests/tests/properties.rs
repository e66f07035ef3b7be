//! Property tests: file-name parsing, directive parsing, config parsing, the
//! scanner, the statement splitter, checksums, and generated identifiers.

use std::path::Path;

use migrate_build::Config;
use migrate_build::codegen::{column_names, module_names, variant_names};
use migrate_build::naming::Ages;
use migrate_build::scan::{FileName, Kind, SqlFile, directives, parse_file_name, scan};
use migrate_runtime::Checksum;
use migrate_runtime::schema::{Column, Table};
use proptest::prelude::*;

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Up), Just(Kind::Down), Just(Kind::UpOnly)]
}

/// Rust's keywords, which no generated identifier may be.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
    "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self",
    "Self", "static", "struct", "super", "trait", "true", "try", "type", "unsafe", "use", "where", "while", "abstract",
    "become", "box", "do", "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "union",
];

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s != "_"
        && !KEYWORDS.contains(&s)
}

fn found(version: u64, name: &str) -> migrate_build::scan::Found {
    let file = SqlFile::new(
        format!("/p/migrations/{version:04}_{name}.sql"),
        format!("migrations/{version:04}_{name}.sql"),
        "SELECT 1;",
    );
    migrate_build::scan::Found::new(version, name, file, None)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_file_names_round_trip(version in 1u64..=99_999_999, name in "[a-z0-9_]{1,40}", kind in kind(), width in 1usize..=8) {
        let f = FileName { version, name, kind };
        let text = f.to_file_name(width);
        prop_assert_eq!(parse_file_name(&text, width), Ok(f));
    }

    #[test]
    fn any_file_name_parses_to_itself_or_is_refused(text in "\\PC{0,40}", width in 1usize..=6) {
        if let Ok(f) = parse_file_name(&text, width) {
            prop_assert_eq!(f.to_file_name(width), text);
        }
    }

    #[test]
    fn a_suggested_name_is_itself_valid(text in "[0-9]{1,5}[-_ .][A-Za-z0-9 _-]{1,20}\\.(up\\.sql|down\\.sql|sql)", width in 1usize..=6) {
        if let Err(bad) = parse_file_name(&text, width)
            && let Some(suggestion) = bad.rename_to
        {
            prop_assert!(parse_file_name(&suggestion, width).is_ok(), "{} -> {}", text, suggestion);
        }
    }

    #[test]
    fn directives_never_panic_and_report_real_lines(text in "(-- ?(migrate|Migrate|MIGRATE)?:?[a-z -]{0,16}\n|SELECT 1;\n|\n|  \n){0,8}") {
        let mut problems = Vec::new();
        let lines = text.lines().count().max(1);
        let result = directives(&text, "f.sql", &mut problems);
        prop_assert_eq!(result.is_none(), !problems.is_empty());
        for p in &problems {
            prop_assert!(p.line >= 1 && p.line <= lines, "{}", p);
        }
    }

    #[test]
    fn config_parsing_never_panics(text in "\\PC{0,200}") {
        let _ = Config::from_manifest_str(&text, Path::new("Cargo.toml"));
    }

    #[test]
    fn config_values_are_read_back(dir in "[a-z/]{1,20}", table in "[a-z_]{1,20}", width in 1usize..=19) {
        let text = format!("[package]\nname = \"x\"\n\n[package.metadata.migrate]\ndir = {dir:?}\ntable = {table:?}\nwidth = {width}\n");
        let c = Config::from_manifest_str(&text, Path::new("Cargo.toml")).unwrap();
        prop_assert_eq!(c.dir, std::path::PathBuf::from(dir));
        prop_assert_eq!(c.table, table);
        prop_assert_eq!(c.width, width);
    }

    #[test]
    fn statement_lines_are_ordered_and_in_range(sql in "(SELECT '[a-z;]{0,5}';|-- c;\n|/\\* ; \\*/|\n|CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;|\"x;y\"|;){0,12}") {
        let lines = migrate_runtime::statement_lines(&sql);
        let max = sql.lines().count().max(1) + 1;
        prop_assert!(lines.windows(2).all(|w| w[0] <= w[1]));
        prop_assert!(lines.iter().all(|&l| l >= 1 && l <= max));
    }

    #[test]
    fn statements_are_counted_like_sqlite_does(n in 0usize..8, newlines in prop::collection::vec(0usize..3, 8)) {
        let sql: String = (0..n).map(|i| format!("SELECT '{i};';{}", "\n".repeat(newlines[i]))).collect();
        prop_assert_eq!(migrate_runtime::statement_lines(&sql).len(), n);
    }

    #[test]
    fn checksums_ignore_line_endings_and_bom_only(lines in prop::collection::vec("[ -~]{0,20}", 0..10)) {
        let lf = lines.join("\n");
        let crlf = lines.join("\r\n");
        prop_assert_eq!(Checksum::of(&lf), Checksum::of(&crlf));
        prop_assert_eq!(Checksum::of(&lf), Checksum::of(&format!("\u{feff}{lf}")));
        prop_assert_ne!(Checksum::of(&lf), Checksum::of(&format!("{lf} ")));
    }

    #[test]
    fn variant_names_are_unique_identifiers(names in prop::collection::vec("[a-z0-9_]{1,12}", 1..12)) {
        let migrations: Vec<_> = names.iter().enumerate().map(|(i, n)| found(i as u64 + 1, n)).collect();
        let variants = variant_names(&migrations);
        let unique: std::collections::BTreeSet<_> = variants.iter().collect();
        prop_assert_eq!(unique.len(), variants.len(), "{:?}", variants);
        for v in &variants {
            prop_assert!(is_identifier(v), "{}", v);
            prop_assert!(v.starts_with(|c: char| c.is_ascii_uppercase()), "{}", v);
        }
    }

    #[test]
    fn schema_names_are_unique_identifiers(tables in prop::collection::vec(("\\PC{0,12}", prop::collection::vec("\\PC{0,12}", 0..6)), 1..8)) {
        let tables: Vec<Table> = tables
            .into_iter()
            .map(|(name, columns)| Table::new(name, columns.into_iter().map(|c| Column::new(c, "")).collect()))
            .collect();
        let modules = module_names(&tables, &Ages::default());
        let unique: std::collections::BTreeSet<_> = modules.iter().collect();
        prop_assert_eq!(unique.len(), modules.len());
        for (m, t) in modules.iter().zip(&tables) {
            prop_assert!(is_identifier(m), "{:?} -> {}", t.name, m);
            let columns = column_names(t, &Ages::default());
            let unique: std::collections::BTreeSet<_> = columns.iter().collect();
            prop_assert_eq!(unique.len(), columns.len());
            for c in &columns {
                prop_assert!(is_identifier(c) && c != "TABLE", "{}", c);
            }
        }
    }
}

proptest! {
    // The scanner writes real files: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_sql_file_is_a_migration_or_named_by_a_problem(
        files in prop::collection::btree_map("[0-9]{0,5}[_-]?[a-zA-Z_]{0,6}(\\.up|\\.down)?\\.(sql|sq|txt|sql\\.bak)", "(SELECT 1;|CREATE TABLE t (x);|-- c|| )", 0..8)
    ) {
        let dir = tests::scratch();
        let m = dir.path().join("migrations");
        std::fs::create_dir_all(&m).unwrap();
        for (name, text) in &files {
            std::fs::write(m.join(name), text).unwrap();
        }
        let result = scan(&m, dir.path(), 4);
        // Hidden files (`.sql`, an editor's `.x.sql`) are ignored by design.
        for name in files.keys().filter(|n| n.ends_with(".sql") && !n.starts_with('.')) {
            let shown = format!("migrations/{name}");
            let in_migration = result.migrations.iter().any(|f| f.up.display == shown || f.down.as_ref().is_some_and(|d| d.display == shown));
            let in_problem = result.problems.iter().any(|p| p.file.to_string_lossy() == shown || p.message.contains(name.as_str()));
            prop_assert!(in_migration || in_problem, "{} is neither a migration nor a problem: {:?}", name, result.problems);
        }
        let versions: Vec<u64> = result.migrations.iter().map(|f| f.version).collect();
        prop_assert!(versions.windows(2).all(|w| w[0] < w[1]), "ordered and unique: {:?}", versions);
    }
}
