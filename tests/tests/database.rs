//! `cargo migrate database create|drop|reset` on SQLite files and on a real
//! PostgreSQL server, and the `PG*` environment variables.

use migrate_runtime::postgres::config::Host;
use migrate_runtime::postgres::{Client, Config, NoTls};
use migrate_runtime::rusqlite::Connection;
use tests::pg_database;

/// `cargo migrate ARGS` in `pkg` with `--database url`: (exit code,
/// stdout, stderr).
fn run(pkg: &tests::Package, url: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = pkg.migrate();
    cmd.arg("--database").arg(url).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn package() -> tests::Package {
    let pkg = tests::Package::new();
    pkg.write(
        "migrations/0001_users.up.sql",
        "CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL);\n",
    );
    pkg.write("migrations/0001_users.down.sql", "DROP TABLE users;\n");
    pkg
}

#[test]
fn sqlite_create_drop_reset_and_what_drop_refuses() {
    let pkg = package();
    let db = pkg.path().join("app.db");
    let url = "sqlite:app.db";

    let (code, _, err) = run(&pkg, url, &["database", "create"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("created the database file app.db"), "{err}");
    assert!(db.is_file());
    let (code, _, err) = run(&pkg, url, &["database", "create"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("already exists; nothing to do"), "{err}");

    let (code, _, err) = run(&pkg, url, &["up"], &[]);
    assert_eq!(code, 0, "{err}");
    Connection::open(&db)
        .unwrap()
        .execute("INSERT INTO users VALUES (1, 'a@example.com')", [])
        .unwrap();

    // Another process writing: refused, nothing deleted.
    let writer = Connection::open(&db).unwrap();
    writer
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO users VALUES (2, 'b@example.com');")
        .unwrap();
    let (code, _, err) = run(&pkg, url, &["database", "drop"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("another process has it open and is writing to it") && err.contains("nothing was deleted"),
        "{err}"
    );
    writer.execute_batch("COMMIT").unwrap();
    drop(writer);
    assert!(db.is_file());

    // Reset: the rows are gone, the schema is back.
    let (code, _, err) = run(&pkg, url, &["database", "reset"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("dropped the database: deleted app.db"), "{err}");
    assert!(err.contains("applied 1 migration"), "{err}");
    let conn = Connection::open(&db).unwrap();
    assert_eq!(tests::applied_versions(&conn), [1]);
    let rows: i64 = conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 0);
    drop(conn);

    // Drop, with a leftover journal; then again: nothing to drop.
    std::fs::write(pkg.path().join("app.db-journal"), "").unwrap();
    let (code, _, err) = run(&pkg, url, &["database", "drop"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("deleted app.db, app.db-journal"), "{err}");
    assert!(!db.exists());
    let (code, _, err) = run(&pkg, url, &["database", "drop"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("does not exist; nothing to drop"), "{err}");

    // A file that is not an SQLite database is never deleted.
    pkg.write("notes.db", "my notes\n");
    let (code, _, err) = run(&pkg, "notes.db", &["database", "drop"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not an SQLite database"), "{err}");
    assert_eq!(pkg.read("notes.db"), "my notes\n");

    let (code, _, err) = run(&pkg, "sqlite::memory:", &["database", "create"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("an in-memory database lives only as long as one command"),
        "{err}"
    );
}

fn exists(admin: &mut Client, name: &str) -> bool {
    admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .unwrap()
        .is_some()
}

/// Drops the database `name` when the test ends, however it ends.
struct DropAfter(String, String);

impl Drop for DropAfter {
    fn drop(&mut self) {
        if let Ok(mut admin) = Client::connect(&self.0, NoTls) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.1));
        }
    }
}

#[test]
fn pg_create_drop_reset_refuse_a_remote_server_and_connected_sessions() {
    let Some(db) = pg_database!() else { return };
    let pkg = package();
    let name = format!("{}_created", db.name);
    let admin_url = db.server().url_for("postgres");
    let _cleanup = DropAfter(admin_url.clone(), name.clone());
    let url = db.server().url_for(&name);
    let mut admin = Client::connect(&admin_url, NoTls).unwrap();

    let (code, _, err) = run(&pkg, &url, &["database", "create"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("created the database `{name}`")), "{err}");
    assert!(exists(&mut admin, &name));
    let (code, _, err) = run(&pkg, &url, &["database", "create"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("already exists on the server; nothing to do"), "{err}");

    let (code, _, err) = run(&pkg, &url, &["up"], &[]);
    assert_eq!(code, 0, "{err}");
    let mut app = Client::connect(&url, NoTls).unwrap();
    app.batch_execute("INSERT INTO users VALUES (1, 'a@example.com')")
        .unwrap();

    // A session is connected: refused, nothing dropped.
    let (code, _, err) = run(&pkg, &url, &["database", "drop"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("other sessions are connected to it") && err.contains("--force"),
        "{err}"
    );
    assert!(exists(&mut admin, &name));
    drop(app);

    let (code, _, err) = run(&pkg, &url, &["database", "reset"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("applied 1 migration"), "{err}");
    let mut app = Client::connect(&url, NoTls).unwrap();
    let rows: i64 = app.query_one("SELECT count(*) FROM users", &[]).unwrap().get(0);
    assert_eq!(rows, 0, "reset drops the rows");

    // --force ends the sessions still connected.
    let (code, _, err) = run(&pkg, &url, &["database", "drop", "--force"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(!exists(&mut admin, &name));
    assert!(app.is_closed() || app.simple_query("SELECT 1").is_err());
    let (code, _, err) = run(&pkg, &url, &["database", "drop"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("does not exist on the server; nothing to drop"), "{err}");

    // Another machine: refused before connecting (192.0.2.1 is TEST-NET-1,
    // where nothing answers).
    let (code, _, err) = run(&pkg, "postgres://u@192.0.2.1/app", &["database", "reset"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("refusing to drop the database `app` on host `192.0.2.1`") && err.contains("--force"),
        "{err}"
    );
}

#[test]
fn pg_what_the_url_leaves_out_comes_from_the_pg_environment_variables() {
    let Some(db) = pg_database!() else { return };
    let pkg = package();
    let config: Config = db.url.parse().unwrap();
    let Host::Tcp(host) = &config.get_hosts()[0] else {
        panic!("the test server listens on TCP")
    };
    let port = config.get_ports()[0].to_string();
    let user = config.get_user().unwrap();
    let env = [
        ("PGHOST", host.as_str()),
        ("PGPORT", port.as_str()),
        ("PGUSER", user),
        ("PGDATABASE", db.name.as_str()),
        ("PGAPPNAME", "env-test"),
    ];
    let (code, _, err) = run(&pkg, "postgres://", &["up"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("applied 1 migration"), "{err}");
    let versions: Vec<i64> = db
        .client()
        .query("SELECT version FROM _migrations", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1]);

    // The URL's host wins over PGHOST, PGPORT fills its port.
    let url = format!("postgres://{host}/{}", db.name);
    let (code, _, err) = run(
        &pkg,
        &url,
        &["status"],
        &[("PGHOST", "192.0.2.1"), ("PGPORT", &port), ("PGUSER", user)],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 applied, 0 pending"), "{err}");

    let (code, _, err) = run(&pkg, &url, &["status"], &[("PGPORT", "nope"), ("PGUSER", user)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("PGPORT=`nope` is not a port number"), "{err}");
}

/// A certificate authority and a server certificate it signed for
/// `localhost` only, in PEM: (CA certificate, server certificate, server
/// key).
fn certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    (ca.pem(), server.pem(), server_key.serialize_pem())
}

#[test]
fn pg_tls_require_verify_ca_and_verify_full_against_a_server_that_refuses_plain_connections() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let Some(_shared) = pg_database!() else { return };
    if _shared.server().dir.is_none() {
        // MIGRATE_TEST_POSTGRES_URL: not a server we may reconfigure.
        return;
    }
    let server = tests::postgres::private_server().expect("a cluster of its own");
    let data = server.dir.as_ref().unwrap().join("data");
    let admin_url = server.url_for("postgres");
    let mut admin = Client::connect(&admin_url, NoTls).unwrap();
    admin.batch_execute("CREATE DATABASE tls_app").unwrap();

    // The server's certificate and key (the key readable by the server's
    // user only, as PostgreSQL requires), TLS on, and plain TCP refused.
    let (ca, cert, key) = certificates();
    let owner = std::fs::metadata(&data).unwrap();
    for (name, text) in [("server.crt", &cert), ("server.key", &key)] {
        let path = data.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).unwrap();
    }
    let hba = data.join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n{rules}"),
    )
    .unwrap();
    admin.batch_execute("ALTER SYSTEM SET ssl = on").unwrap();
    admin.query("SELECT pg_reload_conf()", &[]).unwrap();
    drop(admin);
    // The reload is asynchronous: wait until plain connections are refused.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while Client::connect(&admin_url, NoTls).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not reload its configuration"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let files = tempfile::tempdir().unwrap();
    let ca_file = files.path().join("ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let (other_ca, _, _) = certificates();
    let other_ca_file = files.path().join("other-ca.pem");
    std::fs::write(&other_ca_file, other_ca).unwrap();
    let home = files.path().to_str().unwrap();
    let port = {
        let config: Config = admin_url.parse().unwrap();
        config.get_ports()[0]
    };
    let url = |host: &str, options: &str| format!("postgres://postgres@{host}:{port}/tls_app?{options}");
    let pkg = package();
    let ca_path = ca_file.to_str().unwrap();
    // HOME without ~/.postgresql/root.crt, so no default root applies.
    let env = [("HOME", home)];

    // Plain TCP: refused by the server, with the sslmode to use.
    let (code, _, err) = run(&pkg, &url("127.0.0.1", "sslmode=disable"), &["status"], &env);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no encryption") && err.contains("add sslmode=require"),
        "{err}"
    );

    // prefer (the default) and require: encrypted, unverified.
    let (code, _, err) = run(&pkg, &url("127.0.0.1", ""), &["status"], &env);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&pkg, &url("127.0.0.1", "sslmode=require"), &["up"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("applied 1 migration"), "{err}");

    // verify-full: the chain and the name.
    let full = url("localhost", &format!("sslmode=verify-full&sslrootcert={ca_path}"));
    let (code, _, err) = run(&pkg, &full, &["status"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 applied, 0 pending"), "{err}");
    // The same through PGSSLMODE and PGSSLROOTCERT.
    let env_full = [("HOME", home), ("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", ca_path)];
    let (code, _, err) = run(&pkg, &url("localhost", ""), &["status"], &env_full);
    assert_eq!(code, 0, "{err}");
    // A host the certificate is not for: refused; verify-ca accepts it.
    let wrong_name = url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={ca_path}"));
    let (code, _, err) = run(&pkg, &wrong_name, &["status"], &env);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("certificate was not accepted"), "{err}");
    let ca_only = url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca_path}"));
    let (code, _, err) = run(&pkg, &ca_only, &["status"], &env);
    assert_eq!(code, 0, "{err}");
    // Another authority: refused, also by require once roots are given.
    for mode in ["verify-full", "require"] {
        let other = url(
            "localhost",
            &format!("sslmode={mode}&sslrootcert={}", other_ca_file.display()),
        );
        let (code, _, err) = run(&pkg, &other, &["status"], &env);
        assert_eq!(code, 1, "{mode}: {err}");
        assert!(err.contains("certificate was not accepted"), "{mode}: {err}");
    }
    // verify-full without roots: what to add.
    let (code, _, err) = run(&pkg, &url("localhost", "sslmode=verify-full"), &["status"], &env);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("sslmode=verify-full needs the certificate of the authority"),
        "{err}"
    );
}
