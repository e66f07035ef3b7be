//! The README's Rust code, compiled and run: its `build.rs` and
//! `src/main.rs` blocks become a real package (a testbox), which must build
//! and migrate a database. A README that drifts from the API fails here.

/// The ```` ```rust ```` blocks of `text` whose first line is the comment
/// `// <path>`, as (path, code).
fn rust_blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "```rust" {
            continue;
        }
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        if let Some(path) = body.first().and_then(|l| l.strip_prefix("// ")) {
            out.push((path.trim().to_owned(), body.join("\n") + "\n"));
        }
    }
    out
}

#[test]
fn the_readme_build_rs_and_main_rs_build_and_migrate() {
    let readme = std::fs::read_to_string(tests::workspace_dir().join("README.md")).unwrap();
    let blocks = rust_blocks(&readme);
    let paths: Vec<&str> = blocks.iter().map(|(p, _)| p.as_str()).collect();
    assert!(
        paths.contains(&"build.rs") && paths.contains(&"src/main.rs"),
        "the README shows build.rs and src/main.rs: {paths:?}"
    );
    let pkg = tests::Package::named("readme_box");
    let mut files: Vec<(String, String)> = Vec::new();
    for (path, code) in blocks {
        // `// src/main.rs, continued` goes on from the block before.
        match path.strip_suffix(", continued") {
            Some(before) => {
                let file = files.iter_mut().find(|(p, _)| p == before).expect("continues a block");
                file.1.push('\n');
                file.1.push_str(&code);
            }
            None => files.push((path, code)),
        }
    }
    for (path, code) in &files {
        pkg.write(path, code);
    }
    pkg.write(
        "migrations/0001_create_users.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n",
    );
    let (ok, stderr) = pkg.build();
    assert!(ok, "the README's code does not build:\n{stderr}");
    let out = pkg.run(&[]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("applied 1 create_users"), "{text}");
    let conn = migrate_runtime::rusqlite::Connection::open(pkg.path().join("app.db")).unwrap();
    assert_eq!(tests::user_tables(&conn), vec!["_migrations", "users"]);
    // The testing section's #[test], with test_db().
    let out = pkg.cargo(&["test", "--quiet"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("test result: ok. 1 passed"), "{text}");
}
