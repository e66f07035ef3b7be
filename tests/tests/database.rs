//! `cargo migrate database create|drop|reset` on SQLite files and on a real
//! PostgreSQL server, and the `PG*` environment variables.

use migrate_runtime::postgres::config::Host;
use migrate_runtime::postgres::{Client, Config, NoTls};
use migrate_runtime::rusqlite::Connection;
use tests::pg_database;

/// `cargo migrate ARGS` in `pkg` with `--database url`: (exit code,
/// stdout, stderr).
pub(crate) fn run(pkg: &tests::Package, url: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
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

/// A certificate authority, a server certificate it signed for
/// `localhost` only, and a client certificate it signed for each of
/// `clients` (the common name a server's `clientcert=verify-full` compares
/// with the user name), in PEM: (CA certificate, server certificate,
/// server key, [(client certificate, client key)]).
#[allow(clippy::type_complexity)]
fn authority(clients: &[&str]) -> (String, String, String, Vec<(String, String)>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
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
    let clients = clients
        .iter()
        .map(|name| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(DnType::CommonName, *name);
            let cert = params.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        })
        .collect();
    (ca.pem(), server.pem(), server_key.serialize_pem(), clients)
}

/// [`authority`] without client certificates.
fn certificates() -> (String, String, String) {
    let (ca, cert, key, _) = authority(&[]);
    (ca, cert, key)
}

/// A cluster of its own with TLS on: the server's certificate and key, the
/// `hba` rules put first (with plain TCP refused after them), and `ssl_ca_file`
/// when `client_ca` is given. Returns the server, its admin URL (TCP) and
/// port, once plain connections are refused; `None` on a server we may not
/// reconfigure (`MIGRATE_TEST_POSTGRES_URL`).
fn tls_server(
    cert: &str,
    key: &str,
    client_ca: Option<&str>,
    hba: &str,
) -> Option<(tests::postgres::PrivateServer, String, u16)> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let shared = pg_database!()?;
    // MIGRATE_TEST_POSTGRES_URL: not a server we may reconfigure.
    shared.server().dir.as_ref()?;
    let server = tests::postgres::private_server().expect("a cluster of its own");
    let data = server.dir.as_ref().unwrap().join("data");
    let admin_url = server.url_for("postgres");
    let mut admin = Client::connect(&admin_url, NoTls).unwrap();
    admin.batch_execute("CREATE DATABASE tls_app").unwrap();

    // The server's files, readable by the server's user only, as
    // PostgreSQL requires of the key.
    let owner = std::fs::metadata(&data).unwrap();
    let mut files = vec![("server.crt", cert), ("server.key", key)];
    if let Some(ca) = client_ca {
        files.push(("client_ca.crt", ca));
        admin
            .batch_execute("ALTER SYSTEM SET ssl_ca_file = 'client_ca.crt'")
            .unwrap();
    }
    for (name, text) in files {
        let path = data.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).unwrap();
    }
    let hba_file = data.join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba_file).unwrap();
    std::fs::write(
        &hba_file,
        format!("{hba}\nhostnossl all all 127.0.0.1/32 reject\n{rules}"),
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
    let port = {
        let config: Config = admin_url.parse().unwrap();
        config.get_ports()[0]
    };
    Some((server, admin_url, port))
}

#[test]
fn pg_tls_require_verify_ca_and_verify_full_against_a_server_that_refuses_plain_connections() {
    let (ca, cert, key) = certificates();
    let Some((_server, _, port)) = tls_server(&cert, &key, None, "hostssl all all 127.0.0.1/32 trust") else {
        return;
    };

    let files = tempfile::tempdir().unwrap();
    let ca_file = files.path().join("ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let (other_ca, _, _) = certificates();
    let other_ca_file = files.path().join("other-ca.pem");
    std::fs::write(&other_ca_file, other_ca).unwrap();
    let home = files.path().to_str().unwrap();
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

/// `sslcert`/`sslkey` (and `PGSSLCERT`/`PGSSLKEY`, and libpq's default
/// files) against a server that wants a client certificate whose name is
/// the user's (`clientcert=verify-full`) from the authority of its
/// `ssl_ca_file`.
#[test]
fn pg_tls_client_certificates_from_the_url_the_environment_and_the_default_files() {
    use std::os::unix::fs::PermissionsExt as _;
    let (ca, cert, key, clients) = authority(&["postgres", "intruder"]);
    let Some((_server, _, port)) = tls_server(
        &cert,
        &key,
        Some(&ca),
        "hostssl all all 127.0.0.1/32 trust clientcert=verify-full",
    ) else {
        return;
    };
    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let ca_path = write("ca.pem", &ca);
    let (me_crt, me_key) = (write("me.crt", &clients[0].0), write("me.key", &clients[0].1));
    let (other_crt, other_key) = (write("other.crt", &clients[1].0), write("other.key", &clients[1].1));
    // HOME without ~/.postgresql: no default certificate.
    let home = tempfile::tempdir().unwrap();
    let home_s = home.path().to_str().unwrap();
    let env = [("HOME", home_s)];
    let url = |options: &str| {
        format!("postgres://postgres@localhost:{port}/tls_app?sslmode=verify-full&sslrootcert={ca_path}{options}")
    };
    let pkg = package();

    // No client certificate: the server's refusal.
    let (code, _, err) = run(&pkg, &url(""), &["status"], &env);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("connection requires a valid client certificate"), "{err}");
    assert!(err.contains("give sslcert and sslkey in the URL"), "{err}");

    // In the URL.
    let (code, _, err) = run(&pkg, &url(&format!("&sslcert={me_crt}&sslkey={me_key}")), &["up"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("applied 1 migration"), "{err}");
    // In the environment.
    let env_cert = [
        ("HOME", home_s),
        ("PGSSLCERT", me_crt.as_str()),
        ("PGSSLKEY", me_key.as_str()),
    ];
    let (code, _, err) = run(&pkg, &url(""), &["status"], &env_cert);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 applied, 0 pending"), "{err}");
    // libpq's default files.
    let dot = home.path().join(".postgresql");
    std::fs::create_dir(&dot).unwrap();
    std::fs::copy(&me_crt, dot.join("postgresql.crt")).unwrap();
    std::fs::copy(&me_key, dot.join("postgresql.key")).unwrap();
    let (code, _, err) = run(&pkg, &url(""), &["status"], &env);
    assert_eq!(code, 0, "{err}");
    std::fs::remove_dir_all(&dot).unwrap();

    // A certificate for another user: the server's refusal.
    let (code, _, err) = run(
        &pkg,
        &url(&format!("&sslcert={other_crt}&sslkey={other_key}")),
        &["status"],
        &env,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        // The server gives the reason (not the user's name) in its log only.
        err.contains("\"trust\" authentication failed for user \"postgres\""),
        "{err}"
    );
    assert!(
        err.contains("its common name (CN) must be the URL's user") && !err.contains("password"),
        "{err}"
    );
    // A key others can read, as libpq: refused before connecting.
    std::fs::set_permissions(&me_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = run(
        &pkg,
        &url(&format!("&sslcert={me_crt}&sslkey={me_key}")),
        &["status"],
        &env,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "the client key file {me_key} (sslkey) can be read by others (mode 644); make it private with chmod 600"
        )),
        "{err}"
    );
    // A certificate file that is not there.
    let (code, _, err) = run(&pkg, &url("&sslcert=/nonexistent/me.crt"), &["status"], &env);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot read the client certificate file /nonexistent/me.crt (sslcert); check the path"),
        "{err}"
    );
}
