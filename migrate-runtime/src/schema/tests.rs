use super::*;

#[test]
fn normalize_ignores_formatting_only() {
    assert_eq!(
        normalize("CREATE TABLE \"users\" (\n  id INTEGER, -- the key\n  name TEXT\n)"),
        normalize("create table users (id integer,name text)")
    );
    assert_ne!(
        normalize("CREATE TABLE t (a TEXT DEFAULT 'X')"),
        normalize("CREATE TABLE t (a TEXT DEFAULT 'x')")
    );
    assert_ne!(normalize("CREATE TABLE t (a)"), normalize("CREATE TABLE t (a, b)"));
}

#[test]
fn difference_names_objects() {
    let conn = Connection::open_in_memory().unwrap();
    let before = Schema::read(&conn, "_migrations").unwrap();
    conn.execute_batch("CREATE TABLE a (x); CREATE INDEX a_x ON a (x); CREATE TABLE _migrations (v)")
        .unwrap();
    let after = Schema::read(&conn, "_migrations").unwrap();
    let diff = before.difference(&after).unwrap();
    assert_eq!(diff, "index `a_x` was left behind; table `a` was left behind");
    assert_eq!(after.difference(&after), None);
    let tables = after.tables(&conn).unwrap();
    assert_eq!(tables.len(), 1);
    assert_eq!(tables[0].columns[0].name, "x");
}

fn schemas(before: &str, after: &str) -> (Schema, Schema) {
    let read = |sql: &str| {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        Schema::read(&conn, "_migrations").unwrap()
    };
    (read(before), read(after))
}

#[test]
fn column_order_alone_is_told_apart() {
    let (a, b) = schemas(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT, UNIQUE (email))",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT NOT NULL, UNIQUE (email))",
    );
    let c = a.compare(&b);
    assert!(c.differences.is_empty(), "{c:?}");
    assert_eq!(
        c.reordered,
        ["table `users` with its columns in another order: (id, email, name) before, (id, name, email) after"]
    );
    assert!(a.difference(&b).is_some(), "still a difference for the public API");
    // What a down that re-adds a dropped column gives back.
    let (a, b) = schemas(
        "CREATE TABLE t (a INTEGER, b TEXT DEFAULT 'x', c BLOB, CHECK (a > 0))",
        "CREATE TABLE t (a INTEGER, b TEXT DEFAULT 'x', c BLOB, CHECK (a > 0));\
         ALTER TABLE t DROP COLUMN b; ALTER TABLE t ADD COLUMN b TEXT DEFAULT 'x';",
    );
    let c = a.compare(&b);
    assert!(c.differences.is_empty(), "{c:?}");
    assert_eq!(c.reordered.len(), 1, "{c:?}");
}

#[test]
fn differences_are_column_by_column() {
    let (a, b) = schemas(
        "CREATE TABLE users (id INTEGER, email TEXT NOT NULL, x BLOB, \"full name\" TEXT, CHECK (id > 0))",
        "CREATE TABLE users (id INTEGER, email INTEGER, \"full name\" TEXT, y, CHECK (id > 1))",
    );
    assert_eq!(
        a.difference(&b).unwrap(),
        "column users.email: TEXT NOT NULL → INTEGER; column users.x missing; column users.y left behind; \
         table `users`: constraint `check (id > 0)` missing; table `users`: constraint `check (id > 1)` left behind"
    );
    // Around the list: whole statements.
    let (a, b) = schemas("CREATE TABLE t (x INTEGER)", "CREATE TABLE t (x INTEGER) STRICT");
    assert!(
        a.difference(&b)
            .unwrap()
            .starts_with("table `t` was `CREATE TABLE t (x INTEGER)`")
    );
}
