//! The `PG*` environment variables and `~/.pgpass`, as libpq reads them, for
//! what a `postgres://` URL leaves out: users of `psql`, `pg_dump` and
//! `createdb` set `PGHOST`, `PGUSER`, … once, and `cargo migrate
//! --database postgres://` (or `postgres:///app`) uses them too.
//!
//! (`PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT` and `PGSSLKEY` are read with
//! the URL's TLS options, in `crate::tls`.) Which variables, and that a value in the URL wins over the environment:
//! PostgreSQL 15 documentation, "34.15. Environment Variables"; the password
//! file's format and lookup: "34.16. The Password File". The defaults when
//! neither gives a value (the user's login name, a database named after the
//! user, the local unix socket): "34.1.2. Parameter Key Words".

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use migrate_runtime::postgres::Config;
use migrate_runtime::postgres::config::{Host, TargetSessionAttrs};

/// Fills in what `config` leaves out from the environment (`var` reads a
/// variable), then libpq's defaults.
///
/// # Errors
///
/// A variable whose value is not valid (a port that is not a number, an
/// `sslmode` we do not support), naming the variable.
pub fn fill(config: &mut Config, var: impl Fn(&str) -> Option<String>) -> Result<()> {
    let var = |name: &str| var(name).filter(|v| !v.is_empty());
    if config.get_hosts().is_empty() {
        if let Some(hosts) = var("PGHOST") {
            for host in hosts.split(',') {
                config.host(host.trim());
            }
        } else {
            config.host(&default_host(&var));
        }
    }
    if config.get_ports().is_empty()
        && let Some(ports) = var("PGPORT")
    {
        for port in ports.split(',') {
            let Ok(port) = port.trim().parse::<u16>() else {
                bail!("PGPORT=`{ports}` is not a port number (or a comma-separated list of them); fix or unset it");
            };
            config.port(port);
        }
    }
    if config.get_user().is_none() {
        let user = var("PGUSER")
            .or_else(|| var("USER"))
            .or_else(|| var("LOGNAME"))
            .or_else(login_name);
        let Some(user) = user else {
            bail!(
                "the database URL names no user, and neither PGUSER nor USER is set; write postgres://USER@HOST/DATABASE"
            );
        };
        config.user(&user);
    }
    if config.get_dbname().is_none() {
        let dbname = var("PGDATABASE").or_else(|| config.get_user().map(str::to_owned));
        if let Some(dbname) = dbname {
            config.dbname(&dbname);
        }
    }
    if config.get_application_name().is_none() {
        config.application_name(&var("PGAPPNAME").unwrap_or_else(|| "cargo-migrate".to_owned()));
    }
    if config.get_connect_timeout().is_none()
        && let Some(secs) = var("PGCONNECT_TIMEOUT")
    {
        let Ok(secs) = secs.trim().parse::<u64>() else {
            bail!("PGCONNECT_TIMEOUT=`{secs}` is not a number of seconds; fix or unset it");
        };
        // libpq: "zero, negative, or not specified means wait indefinitely".
        if secs > 0 {
            config.connect_timeout(Duration::from_secs(secs.max(2)));
        }
    }
    if config.get_options().is_none()
        && let Some(options) = var("PGOPTIONS")
    {
        config.options(&options);
    }
    if let Some(attrs) = var("PGTARGETSESSIONATTRS") {
        match attrs.as_str() {
            "any" => config.target_session_attrs(TargetSessionAttrs::Any),
            "read-write" => config.target_session_attrs(TargetSessionAttrs::ReadWrite),
            other => bail!("PGTARGETSESSIONATTRS=`{other}` is not supported; use any or read-write, or unset it"),
        };
    }
    if config.get_password().is_none() {
        if let Some(password) = var("PGPASSWORD") {
            config.password(password);
        } else if let Some(password) = passfile(&var).and_then(|file| password_from_file(&file, config)) {
            config.password(password);
        }
    }
    Ok(())
}

/// `url` with `PGPORT` written into its hosts when it names hosts without
/// a port: the driver gives such a host port 5432 at once, which would hide
/// that the URL left the port to the environment.
///
/// # Errors
///
/// `PGPORT` is not a port number (or a comma-separated list of them).
pub fn url_with_env_port(url: &str, var: impl Fn(&str) -> Option<String>) -> Result<String> {
    let Some(ports) = var("PGPORT").filter(|p| !p.is_empty()) else {
        return Ok(url.to_owned());
    };
    if ports.split(',').any(|p| p.trim().parse::<u16>().is_err()) {
        bail!("PGPORT=`{ports}` is not a port number (or a comma-separated list of them); fix or unset it");
    }
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return Ok(url.to_owned());
    };
    let end = url[start..].find(['/', '?']).map_or(url.len(), |i| start + i);
    let hosts_start = url[start..end].rfind('@').map_or(start, |i| start + i + 1);
    let hosts = &url[hosts_start..end];
    let has_port = |host: &str| match host.strip_prefix('[') {
        Some(v6) => v6.contains("]:"),
        None => host.contains(':'),
    };
    if hosts.is_empty() || hosts.split(',').any(has_port) {
        return Ok(url.to_owned());
    }
    let ports: Vec<&str> = ports.split(',').map(str::trim).collect();
    let with_ports: Vec<String> = hosts
        .split(',')
        .enumerate()
        .map(|(i, host)| format!("{host}:{}", ports.get(i).or(ports.last()).copied().unwrap_or_default()))
        .collect();
    Ok(format!(
        "{}{}{}",
        &url[..hosts_start],
        with_ports.join(","),
        &url[end..]
    ))
}

/// The name of the user this process runs as (libpq asks the system,
/// not the environment, when `PGUSER` is unset): its uid, from the owner
/// of `/proc/self`, looked up in `/etc/passwd`.
fn login_name() -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let uid = std::fs::metadata("/proc/self").ok()?.uid().to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.get(2) == Some(&uid.as_str())).then(|| fields[0].to_owned())
    })
}

/// libpq's default host: the unix socket directory when the server's
/// socket is there (Debian's `/var/run/postgresql`, upstream's `/tmp`),
/// else `localhost`.
fn default_host(var: &impl Fn(&str) -> Option<String>) -> String {
    let port = var("PGPORT").and_then(|p| p.split(',').next()?.trim().parse::<u16>().ok());
    let socket = format!(".s.PGSQL.{}", port.unwrap_or(5432));
    ["/var/run/postgresql", "/tmp"]
        .into_iter()
        .find(|dir| Path::new(dir).join(&socket).exists())
        .unwrap_or("localhost")
        .to_owned()
}

/// `PGPASSFILE`, else `~/.pgpass`.
fn passfile(var: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    var("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| Path::new(&home).join(".pgpass")))
}

/// The password for `config`'s first host, port, database and user in a
/// password file: `hostname:port:database:username:password` lines, `*`
/// matching anything, `\:` and `\\` escaped, `#` comments; the first
/// matching line wins. libpq ignores a file that others may read, and so
/// do we (saying so).
fn password_from_file(file: &Path, config: &Config) -> Option<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(file).ok()?;
    if meta.permissions().mode() & 0o077 != 0 {
        crate::messages::note!(
            "the password file {} is ignored: its group or others may read it; run chmod 0600 on it",
            file.display()
        );
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        // libpq matches a socket directory as `localhost` when it is the
        // default one; any socket matches `localhost` here.
        Some(Host::Unix(_)) | None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432).to_string();
    let wanted = [
        host.as_str(),
        port.as_str(),
        config.get_dbname().unwrap_or_default(),
        config.get_user().unwrap_or_default(),
    ];
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .find_map(|line| {
            let fields = split_fields(line);
            let [host, port, db, user, password] = fields.as_slice() else {
                return None;
            };
            [host, port, db, user]
                .iter()
                .zip(wanted)
                .all(|(field, want)| field.as_str() == "*" || field.as_str() == want)
                .then(|| password.clone().into_bytes())
        })
}

/// The `:`-separated fields of a password file line, `\` escaping the next
/// character.
fn split_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut().expect("one field at least").push(next);
                }
            }
            ':' => fields.push(String::new()),
            c => fields.last_mut().expect("one field at least").push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(url: &str, env: &[(&str, &str)]) -> Result<Config> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let mut config: Config = url_with_env_port(url, var)?.parse()?;
        fill(&mut config, var)?;
        Ok(config)
    }

    #[test]
    fn pgport_goes_to_hosts_the_url_gives_no_port() {
        let port = |name: &str| (name == "PGPORT").then(|| "6000".to_owned());
        assert_eq!(
            url_with_env_port("postgres://u:p@h/d?x=1", port).unwrap(),
            "postgres://u:p@h:6000/d?x=1"
        );
        assert_eq!(
            url_with_env_port("postgres://a,b/d", port).unwrap(),
            "postgres://a:6000,b:6000/d"
        );
        assert_eq!(url_with_env_port("postgres://h:5/d", port).unwrap(), "postgres://h:5/d");
        assert_eq!(
            url_with_env_port("postgres://[::1]:5/d", port).unwrap(),
            "postgres://[::1]:5/d"
        );
        assert_eq!(
            url_with_env_port("postgres://[::1]/d", port).unwrap(),
            "postgres://[::1]:6000/d"
        );
        assert_eq!(url_with_env_port("postgres:///d", port).unwrap(), "postgres:///d");
    }

    #[test]
    fn the_url_wins_and_the_environment_fills_the_rest() {
        let env = [
            ("PGHOST", "db.example"),
            ("PGPORT", "6543"),
            ("PGUSER", "envuser"),
            ("PGDATABASE", "envdb"),
            ("PGPASSWORD", "envpass"),
        ];
        let config = filled("postgres://", &env).unwrap();
        assert_eq!(config.get_hosts(), [Host::Tcp("db.example".to_owned())]);
        assert_eq!(config.get_ports(), [6543]);
        assert_eq!(config.get_user(), Some("envuser"));
        assert_eq!(config.get_dbname(), Some("envdb"));
        assert_eq!(config.get_password(), Some(&b"envpass"[..]));

        let config = filled("postgres://me:pw@here:5000/mine", &env).unwrap();
        assert_eq!(config.get_hosts(), [Host::Tcp("here".to_owned())]);
        assert_eq!(config.get_ports(), [5000]);
        assert_eq!(config.get_user(), Some("me"));
        assert_eq!(config.get_dbname(), Some("mine"));
        assert_eq!(config.get_password(), Some(&b"pw"[..]));
    }

    #[test]
    fn defaults_are_libpqs_the_login_name_and_a_database_named_after_it() {
        let config = filled("postgres://localhost", &[("USER", "alice"), ("HOME", "/nonexistent")]).unwrap();
        assert_eq!(config.get_user(), Some("alice"));
        assert_eq!(config.get_dbname(), Some("alice"));
        assert_eq!(config.get_application_name(), Some("cargo-migrate"));
        let socket = filled("postgres://", &[("PGHOST", "/run/pg"), ("USER", "a")]).unwrap();
        assert_eq!(socket.get_hosts(), [Host::Unix("/run/pg".into())]);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for url in ["postgres:///d", "postgres://h/d"] {
            let e = filled(url, &[("PGPORT", "five"), ("USER", "a"), ("PGHOST", "h")]).unwrap_err();
            assert!(e.to_string().starts_with("PGPORT=`five` is not a port number"), "{e}");
        }
        // Without PGUSER, USER and LOGNAME: the system's name for this
        // process's user, as libpq asks.
        let config = filled("postgres://h/d", &[]).unwrap();
        assert_eq!(config.get_user(), login_name().as_deref());
        assert!(config.get_user().is_some_and(|u| !u.is_empty()));
    }

    #[test]
    fn the_password_file_first_matching_line_wins_and_an_open_file_is_ignored() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:*:bob:no\ndb.example:*:app:bob:s\\:cret\n*:*:*:*:fallback\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let pass = file.to_str().unwrap();
        let config = filled("postgres://bob@db.example/app", &[("PGPASSFILE", pass)]).unwrap();
        assert_eq!(config.get_password(), Some(&b"s:cret"[..]));
        let config = filled("postgres://carol@elsewhere/x", &[("PGPASSFILE", pass)]).unwrap();
        assert_eq!(config.get_password(), Some(&b"fallback"[..]));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let config = filled("postgres://carol@elsewhere/x", &[("PGPASSFILE", pass)]).unwrap();
        assert_eq!(config.get_password(), None);
    }
}
