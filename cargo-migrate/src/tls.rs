//! TLS for PostgreSQL connections, with libpq's `sslmode` and
//! `sslrootcert`, through rustls.
//!
//! The `postgres` driver parses `sslmode=disable|prefer|require` only, and
//! leaves verifying the server to the TLS connector; libpq's meaning of each
//! mode (PostgreSQL 15 documentation, "34.19.1. Client Verification of
//! Server Certificates" and table 34.1, "SSL Mode Descriptions"):
//!
//! - `disable`: no TLS; `allow`/`prefer`: TLS when the server offers it,
//!   without verifying its certificate;
//! - `require`: TLS, unverified — unless a root certificate is given (or
//!   `~/.postgresql/root.crt` exists), when it means `verify-ca`;
//! - `verify-ca`: the certificate chains to a trusted root;
//! - `verify-full`: that, and the certificate is for the host connected to.
//!
//! `sslrootcert=PATH` (or `PGSSLROOTCERT`) names the roots, in PEM;
//! `sslrootcert=system` uses the system's store.
//!
//! `sslcert=PATH` and `sslkey=PATH` (or `PGSSLCERT`, `PGSSLKEY`; by default
//! `~/.postgresql/postgresql.crt` and `postgresql.key`) are the client's
//! certificate and key, in PEM, for servers that ask for one (`cert`
//! authentication, or `clientcert=verify-ca|verify-full` in `pg_hba.conf`;
//! "34.19.2. Client Certificates"). As libpq does, a default certificate
//! file that is not there means no client certificate, and a key file that
//! others can read is refused; unlike libpq, a certificate file named in
//! the URL or `PGSSLCERT` that is not there is an error, not ignored.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How much of the server's identity to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, unverified.
    Prefer,
    /// TLS, unverified (or verified as `VerifyCa` when roots are given).
    Require,
    /// TLS, the chain verified.
    VerifyCa,
    /// TLS, the chain and the host name verified.
    VerifyFull,
}

/// Where the trusted roots come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Roots {
    /// A PEM file.
    File(PathBuf),
    /// The system's certificate store.
    System,
}

/// The TLS settings of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    /// The mode.
    pub mode: Mode,
    /// The roots, when given.
    pub roots: Option<Roots>,
    /// The client's certificate and key, when there is one.
    pub client: Option<ClientCert>,
}

/// The client's certificate (chain) and private key, PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate file.
    pub cert: PathBuf,
    /// Where its name came from (`sslcert`, `PGSSLCERT`, the default), for
    /// messages.
    pub named: &'static str,
    /// The key file (`sslkey`, `PGSSLKEY`, the default), when known.
    pub key: Option<PathBuf>,
}

impl Mode {
    /// libpq's name for `s`, or an error naming `what` (`sslmode` of the
    /// URL, or `PGSSLMODE`).
    pub fn parse(s: &str, what: &str) -> Result<Self> {
        Ok(match s {
            "disable" => Self::Disable,
            "allow" | "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => bail!(
                "{what}=`{other}` is not an sslmode; use disable, allow, prefer, require, verify-ca or verify-full"
            ),
        })
    }

    /// The closest mode the driver itself knows (the rest is our verifier's).
    pub fn driver(self) -> migrate_runtime::postgres::config::SslMode {
        use migrate_runtime::postgres::config::SslMode;
        match self {
            Self::Disable => SslMode::Disable,
            Self::Prefer => SslMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => SslMode::Require,
        }
    }
}

/// Takes libpq's TLS options out of `url`'s query, which the driver would
/// reject (`verify-ca`, `verify-full`, `sslrootcert`, `sslcert`, `sslkey`):
/// the URL the driver gets, and the settings from the URL, else `var`
/// (`PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`), else libpq's
/// defaults.
///
/// # Errors
///
/// An sslmode that is not one, or a `%` escape that is not valid. (Files
/// are read by [`Tls::connector`].)
pub fn split_url(url: &str, var: impl Fn(&str) -> Option<String>) -> Result<(String, Tls)> {
    let var = |name: &str| var(name).filter(|v| !v.is_empty());
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mode = None;
    let mut roots = None;
    let (mut cert, mut key) = (None, None);
    let mut kept = Vec::new();
    for option in query.split('&').filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some(("sslmode", value)) => mode = Some(Mode::parse(value, "sslmode")?),
            Some(("sslrootcert", value)) => roots = Some(roots_of(&decode(value, "sslrootcert")?)),
            Some(("sslcert", value)) => cert = Some((PathBuf::from(decode(value, "sslcert")?), "sslcert")),
            Some(("sslkey", value)) => key = Some(PathBuf::from(decode(value, "sslkey")?)),
            _ => kept.push(option),
        }
    }
    let home_file = |name: &str| Some(Path::new(&var("HOME")?).join(".postgresql").join(name));
    let cert = cert.or_else(|| var("PGSSLCERT").map(|c| (PathBuf::from(c), "PGSSLCERT")));
    let key = key
        .or_else(|| var("PGSSLKEY").map(PathBuf::from))
        .or_else(|| home_file("postgresql.key"));
    let client = match cert {
        Some((cert, named)) => Some(ClientCert { cert, named, key }),
        None => home_file("postgresql.crt")
            .filter(|c| c.is_file())
            .map(|cert| ClientCert {
                cert,
                named: "the default sslcert",
                key,
            }),
    };
    let mode = match mode {
        Some(mode) => mode,
        None => var("PGSSLMODE").map_or(Ok(Mode::Prefer), |m| Mode::parse(&m, "PGSSLMODE"))?,
    };
    let roots = roots
        .or_else(|| var("PGSSLROOTCERT").map(|r| roots_of(&r)))
        .or_else(|| {
            // libpq's default root file.
            let file = home_file("root.crt")?;
            file.is_file().then_some(Roots::File(file))
        });
    let mut driver_url = base.to_owned();
    if !kept.is_empty() {
        driver_url.push('?');
        driver_url.push_str(&kept.join("&"));
    }
    Ok((driver_url, Tls { mode, roots, client }))
}

fn roots_of(value: &str) -> Roots {
    if value == "system" {
        Roots::System
    } else {
        Roots::File(PathBuf::from(value))
    }
}

fn decode(value: &str, what: &str) -> Result<String> {
    let mut out = Vec::new();
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| anyhow!("{what}=`{value}` has a `%` not followed by two hex digits"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| anyhow!("{what}=`{value}` is not UTF-8 once decoded"))
}

impl Tls {
    /// The rustls connector for these settings (`None` for `disable`).
    ///
    /// # Errors
    ///
    /// A root file that cannot be read or holds no certificate,
    /// `verify-ca`/`verify-full` without roots, or a client certificate or
    /// key that cannot be read or used.
    pub fn connector(&self) -> Result<Option<MakeRustlsConnect>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verify = match (self.mode, &self.roots) {
            (Mode::Disable, _) => return Ok(None),
            (Mode::Prefer, _) | (Mode::Require, None) => None,
            (Mode::Require | Mode::VerifyCa, Some(roots)) => Some((roots, false)),
            (Mode::VerifyFull, Some(roots)) => Some((roots, true)),
            (Mode::VerifyCa | Mode::VerifyFull, None) => bail!(
                "sslmode={} needs the certificate of the authority that signed the server's: add sslrootcert=PATH (a PEM file) to the URL or set PGSSLROOTCERT, or use sslrootcert=system for the system's store",
                if self.mode == Mode::VerifyCa {
                    "verify-ca"
                } else {
                    "verify-full"
                }
            ),
        };
        let verifier: Arc<dyn ServerCertVerifier> = match verify {
            None => Arc::new(Unverified(provider.clone())),
            Some((roots, check_name)) => {
                let store = Arc::new(root_store(roots)?);
                let webpki = WebPkiServerVerifier::builder_with_provider(store, provider.clone())
                    .build()
                    .context("cannot use the root certificates")?;
                if check_name { webpki } else { Arc::new(AnyName(webpki)) }
            }
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS")?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &self.client {
            None => builder.with_no_client_auth(),
            Some(client) => {
                let (chain, key) = client.load()?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    anyhow!(
                        "cannot use the client certificate {} with its key: {e}; check that the key (sslkey) is the certificate's (sslcert)",
                        client.cert.display(),
                    )
                })?
            }
        };
        Ok(Some(MakeRustlsConnect::new(config)))
    }
}

impl ClientCert {
    /// The certificate chain and the key, read from their PEM files.
    fn load(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        let (cert, named) = (self.cert.display(), self.named);
        let text = std::fs::read(&self.cert).with_context(|| {
            format!(
                "cannot read the client certificate file {cert} ({named}); check the path, or leave it out to connect without a client certificate"
            )
        })?;
        let chain = CertificateDer::pem_slice_iter(&text)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow!("the client certificate file {cert} ({named}) is not valid PEM: {e}"))?;
        if chain.is_empty() {
            bail!(
                "the client certificate file {cert} ({named}) holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
            );
        }
        let Some(key_path) = &self.key else {
            bail!("the client certificate {cert} has no key: add sslkey=PATH to the URL or set PGSSLKEY");
        };
        let key = key_path.display();
        let meta = std::fs::metadata(key_path).with_context(|| {
            format!("cannot read the client key file {key} (sslkey); check the path, or set sslkey=PATH or PGSSLKEY")
        })?;
        // libpq refuses a key others may read ("34.19.2. Client Certificates").
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            if meta.permissions().mode() & 0o077 != 0 {
                bail!(
                    "the client key file {key} (sslkey) can be read by others (mode {:o}); make it private with chmod 600 {key}",
                    meta.permissions().mode() & 0o777
                );
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        let text = std::fs::read(key_path)
            .with_context(|| format!("cannot read the client key file {key} (sslkey); check the path"))?;
        let private = PrivateKeyDer::from_pem_slice(&text).map_err(|e| {
            anyhow!("the client key file {key} (sslkey) holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}")
        })?;
        Ok((chain, private))
    }
}

fn root_store(roots: &Roots) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                bail!(
                    "sslrootcert=system: no certificate found in the system's store; install the ca-certificates package, or give sslrootcert=PATH"
                );
            }
        }
        Roots::File(path) => {
            let shown = path.display();
            let text = std::fs::read(path).with_context(|| {
                format!("cannot read the root certificate file {shown} (sslrootcert); check the path")
            })?;
            for cert in CertificateDer::pem_slice_iter(&text) {
                let cert =
                    cert.map_err(|e| anyhow!("the root certificate file {shown} (sslrootcert) is not valid PEM: {e}"))?;
                store.add(cert).map_err(|e| {
                    anyhow!(
                        "the root certificate file {shown} (sslrootcert) holds a certificate that cannot be used: {e}"
                    )
                })?;
            }
            if store.is_empty() {
                bail!(
                    "the root certificate file {shown} (sslrootcert) holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
                );
            }
        }
    }
    Ok(store)
}

/// `prefer` and `require` without roots: encrypted, the server not
/// verified (libpq's behaviour; `verify-full` is what protects from an
/// impostor). The handshake's signatures are still checked.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain verified, any host name accepted.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn libpq_options_leave_the_url_and_the_rest_stays() {
        let (url, tls) = split_url(
            "postgres://u@h/d?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
            env(&[("HOME", "/nonexistent")]),
        )
        .unwrap();
        assert_eq!(url, "postgres://u@h/d?application_name=x");
        assert_eq!(tls.mode, Mode::VerifyFull);
        assert_eq!(tls.roots, Some(Roots::File("/etc/ca.pem".into())));

        let (url, tls) = split_url(
            "postgres://u@h/d",
            env(&[("PGSSLMODE", "require"), ("PGSSLROOTCERT", "system")]),
        )
        .unwrap();
        assert_eq!(url, "postgres://u@h/d");
        assert_eq!(tls.mode, Mode::Require);
        assert_eq!(tls.roots, Some(Roots::System));

        // The URL wins over the environment.
        let (_, tls) = split_url("postgres://h/d?sslmode=disable", env(&[("PGSSLMODE", "require")])).unwrap();
        assert_eq!(tls.mode, Mode::Disable);
        let (_, tls) = split_url("postgres://h/d", env(&[("HOME", "/nonexistent")])).unwrap();
        assert_eq!(
            tls,
            Tls {
                mode: Mode::Prefer,
                roots: None,
                client: None,
            }
        );
    }

    #[test]
    fn client_certificates_from_the_url_the_environment_or_the_home_directory() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        let cert = dir.path().join("me.crt");
        std::fs::write(&cert, "").unwrap();
        let cert_s = cert.to_str().unwrap();
        let client = |cert: &str, named: &'static str, key: &str| {
            Some(ClientCert {
                cert: cert.into(),
                named,
                key: Some(key.into()),
            })
        };
        // The URL (decoded), and the URL over the environment.
        let url = format!(
            "postgres://h/d?sslcert={}&sslkey=%2Fk%20ey.pem&x=1",
            cert_s.replace('/', "%2F")
        );
        let (driver, tls) = split_url(&url, env(&[("HOME", home), ("PGSSLKEY", "/env.key")])).unwrap();
        assert_eq!(driver, "postgres://h/d?x=1");
        assert_eq!(tls.client, client(cert_s, "sslcert", "/k ey.pem"));
        // The environment.
        let (_, tls) = split_url(
            "postgres://h/d",
            env(&[("PGSSLCERT", cert_s), ("PGSSLKEY", "/env.key")]),
        )
        .unwrap();
        assert_eq!(tls.client, client(cert_s, "PGSSLCERT", "/env.key"));
        // libpq's default files, used when the certificate is there.
        let (_, tls) = split_url("postgres://h/d", env(&[("HOME", home)])).unwrap();
        assert_eq!(tls.client, None);
        let pg = dir.path().join(".postgresql");
        std::fs::create_dir(&pg).unwrap();
        std::fs::write(pg.join("postgresql.crt"), "").unwrap();
        let (_, tls) = split_url("postgres://h/d", env(&[("HOME", home)])).unwrap();
        let default = |name: &str| pg.join(name).to_str().unwrap().to_owned();
        assert_eq!(
            tls.client,
            client(
                &default("postgresql.crt"),
                "the default sslcert",
                &default("postgresql.key")
            )
        );
        // A certificate named but not there; a certificate without a key.
        let (_, tls) = split_url(
            "postgres://h/d?sslmode=require&sslcert=/nope.crt",
            env(&[("HOME", home)]),
        )
        .unwrap();
        let e = tls.connector().err().unwrap();
        assert!(
            e.to_string()
                .starts_with("cannot read the client certificate file /nope.crt (sslcert); check the path"),
            "{e}"
        );
        let (_, tls) = split_url("postgres://h/d?sslmode=require", env(&[("PGSSLCERT", cert_s)])).unwrap();
        let e = tls.connector().err().unwrap();
        assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
        assert_eq!(tls.client.unwrap().key, None);
    }

    #[test]
    fn bad_modes_and_missing_roots_say_what_to_do() {
        let e = split_url("postgres://h/d?sslmode=strict", env(&[])).unwrap_err();
        assert!(e.to_string().starts_with("sslmode=`strict` is not an sslmode"), "{e}");
        let e = split_url("postgres://h/d", env(&[("PGSSLMODE", "on")])).unwrap_err();
        assert!(e.to_string().starts_with("PGSSLMODE=`on` is not an sslmode"), "{e}");
        let tls = Tls {
            mode: Mode::VerifyFull,
            roots: None,
            client: None,
        };
        let e = tls.connector().err().unwrap();
        assert!(e.to_string().contains("add sslrootcert=PATH"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let tls = Tls {
            mode: Mode::VerifyCa,
            roots: Some(Roots::File(empty)),
            client: None,
        };
        let e = tls.connector().err().unwrap();
        assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
    }
}
