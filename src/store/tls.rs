//! Where the database is and how to reach it: the connection settings with libpq's `sslmode`
//! and `sslrootcert`, which tokio-postgres does not read in full, and the TLS connector
//! (rustls) that carries them out.
//!
//! | `sslmode` | TLS | certificate checked |
//! |---|---|---|
//! | `disable` | never | no |
//! | `prefer` (default) | if the server offers it | no |
//! | `require` | always | no; as `verify-ca` when `sslrootcert` is given (as libpq) |
//! | `verify-ca` | always | signed by a root in `sslrootcert` |
//! | `verify-full` | always | signed by a root, and the name matches the host |
//!
//! `sslrootcert` is a PEM file of trusted roots, or `system` for the operating system's roots.
//! Without it, `verify-ca` and `verify-full` trust `~/.postgresql/root.crt` if it exists, else
//! the system's roots. Unix sockets never use TLS (as libpq).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{Error, Result};

/// How a connection uses TLS: libpq's `sslmode` (`allow` is not offered: it tries without TLS
/// first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, without checking its certificate (libpq's default).
    #[default]
    Prefer,
    /// Always TLS; the certificate is not checked unless a root certificate is given.
    Require,
    /// Always TLS, with a certificate signed by a trusted root.
    VerifyCa,
    /// Always TLS, with a certificate signed by a trusted root and naming the host.
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<SslMode> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err(Error::Config(
                    "sslmode=allow is not supported (it tries without TLS first): use prefer or require".into(),
                ))
            }
            other => {
                return Err(Error::Config(format!(
                    "sslmode \"{}\" is not one of disable, prefer, require, verify-ca, verify-full",
                    other.chars().take(40).collect::<String>()
                )))
            }
        })
    }
}

impl SslMode {
    fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Connection settings: tokio-postgres's [`tokio_postgres::Config`] (reached through `Deref`,
/// e.g. `cfg.user("app")`) plus `sslmode` and `sslrootcert` as libpq reads them. Made by
/// [`super::pg_config`].
#[derive(Debug, Clone)]
pub struct PgConfig {
    config: tokio_postgres::Config,
    ssl_mode: SslMode,
    ssl_root_cert: Option<PathBuf>,
}

impl std::ops::Deref for PgConfig {
    type Target = tokio_postgres::Config;
    fn deref(&self) -> &tokio_postgres::Config {
        &self.config
    }
}

impl std::ops::DerefMut for PgConfig {
    fn deref_mut(&mut self) -> &mut tokio_postgres::Config {
        &mut self.config
    }
}

/// A connection made by [`PgConfig::connect`]: drive it (spawn it) for the client to work.
pub type Connection = tokio_postgres::Connection<
    tokio_postgres::Socket,
    <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>>::Stream,
>;

impl PgConfig {
    /// Parse a URL (`postgres://...?sslmode=verify-full&sslrootcert=/path`) or a key=value
    /// string (`host=db sslmode=require`). `PGSSLMODE` and `PGSSLROOTCERT` apply where the
    /// string says nothing.
    pub fn parse(text: &str) -> Result<PgConfig> {
        let (rest, mode, root) = take_tls_params(text)?;
        let config = rest
            .parse::<tokio_postgres::Config>()
            .map_err(|e| Error::Config(format!("cannot parse the database URL: {e}")))?;
        let mut cfg = PgConfig::from_config(config);
        cfg.apply_tls_params(mode, root)?;
        Ok(cfg)
    }

    /// Settings from a tokio-postgres config; `sslmode` as it says (disable, prefer or
    /// require), then `PGSSLMODE`/`PGSSLROOTCERT` if set.
    pub fn from_config(config: tokio_postgres::Config) -> PgConfig {
        let ssl_mode = match config.get_ssl_mode() {
            tokio_postgres::config::SslMode::Disable => SslMode::Disable,
            tokio_postgres::config::SslMode::Require => SslMode::Require,
            _ => SslMode::Prefer,
        };
        PgConfig {
            config,
            ssl_mode,
            ssl_root_cert: None,
        }
    }

    pub(super) fn apply_tls_params(
        &mut self,
        mode: Option<String>,
        root: Option<String>,
    ) -> Result<()> {
        let env = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
        if let Some(m) = mode.or_else(|| env("PGSSLMODE")) {
            self.set_ssl_mode(m.parse()?);
        }
        if let Some(r) = root.or_else(|| env("PGSSLROOTCERT")) {
            self.set_ssl_root_cert(r);
        }
        Ok(())
    }

    /// The TLS mode.
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// Set the TLS mode.
    pub fn set_ssl_mode(&mut self, mode: SslMode) -> &mut PgConfig {
        self.ssl_mode = mode;
        self.config.ssl_mode(match mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        self
    }

    /// The trusted roots: a PEM file, or `system`.
    pub fn ssl_root_cert(&self) -> Option<&Path> {
        self.ssl_root_cert.as_deref()
    }

    /// Set the trusted roots (a PEM file, or `system`).
    pub fn set_ssl_root_cert(&mut self, path: impl Into<PathBuf>) -> &mut PgConfig {
        self.ssl_root_cert = Some(path.into());
        self
    }

    /// The tokio-postgres settings.
    pub fn tokio_config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The TLS connector for these settings. Reads the root certificates now, so a missing
    /// or unreadable file is an error here, not at the first connection.
    pub fn tls(&self) -> Result<MakeRustlsConnect> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS: {e}")))?;
        let verify = match self.ssl_mode {
            SslMode::Disable | SslMode::Prefer => None,
            SslMode::Require => self.ssl_root_cert.as_ref().map(|_| false),
            SslMode::VerifyCa => Some(false),
            SslMode::VerifyFull => Some(true),
        };
        let config = match verify {
            None => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoCheck(provider)))
                .with_no_client_auth(),
            Some(check_name) => {
                let roots = Arc::new(self.roots()?);
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| Error::Config(format!("TLS root certificates: {e}")))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(Checked { webpki, check_name }))
                    .with_no_client_auth()
            }
        };
        Ok(MakeRustlsConnect::new(config))
    }

    fn roots(&self) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        let file = match &self.ssl_root_cert {
            Some(p) if p.as_os_str() == "system" => None,
            Some(p) => Some(p.clone()),
            None => std::env::var_os("HOME")
                .map(|h| Path::new(&h).join(".postgresql/root.crt"))
                .filter(|p| p.exists()),
        };
        match file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(&path)
                    .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|e| {
                        Error::Config(format!(
                            "cannot read the root certificates in {}: {e}",
                            path.display()
                        ))
                    })?;
                if certs.is_empty() {
                    return Err(Error::Config(format!(
                        "{} holds no certificate",
                        path.display()
                    )));
                }
                for c in certs {
                    roots.add(c).map_err(|e| {
                        Error::Config(format!("a root certificate in {}: {e}", path.display()))
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for c in found.certs {
                    let _ = roots.add(c);
                }
                if roots.is_empty() {
                    return Err(Error::Config(
                        "no root certificates: set sslrootcert to a PEM file".into(),
                    ));
                }
            }
        }
        Ok(roots)
    }

    /// Open one connection with these settings (TLS as `sslmode` says). Spawn the returned
    /// connection for the client to work.
    pub async fn connect(&self) -> Result<(tokio_postgres::Client, Connection)> {
        let tls = self.tls()?;
        Ok(self.config.connect(tls).await?)
    }
}

/// Take `sslmode` and `sslrootcert` out of a URL's query or a key=value string; the rest is
/// for tokio-postgres, which reads neither `verify-*` nor `sslrootcert`.
fn take_tls_params(text: &str) -> Result<(String, Option<String>, Option<String>)> {
    let mut mode = None;
    let mut root = None;
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        let Some((base, query)) = text.split_once('?') else {
            return Ok((text.to_string(), None, None));
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sslmode" => mode = Some(percent_decode(v)?),
                "sslrootcert" => root = Some(percent_decode(v)?),
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, mode, root));
    }
    // key=value pairs, values maybe 'quoted' with \' and \\ escapes.
    let mut rest = String::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut raw = String::new();
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() == Some(&'\'') {
                raw.push(chars.next().unwrap_or('\''));
                loop {
                    match chars.next() {
                        None => {
                            return Err(Error::Config(
                                "unterminated quote in the connection string".into(),
                            ))
                        }
                        Some('\\') => {
                            let c = chars.next().unwrap_or('\\');
                            raw.push('\\');
                            raw.push(c);
                            value.push(c);
                        }
                        Some('\'') => {
                            raw.push('\'');
                            break;
                        }
                        Some(c) => {
                            raw.push(c);
                            value.push(c);
                        }
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    raw.push(c);
                    value.push(c);
                    chars.next();
                }
            }
        }
        match key.as_str() {
            "sslmode" => mode = Some(value),
            "sslrootcert" => root = Some(value),
            _ => {
                if !rest.is_empty() {
                    rest.push(' ');
                }
                rest.push_str(&key);
                rest.push('=');
                rest.push_str(&raw);
            }
        }
    }
    Ok((rest, mode, root))
}

fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
            let b = u8::from_str_radix(hex, 16)
                .map_err(|_| Error::Config("bad %-escape in the database URL".into()))?;
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error::Config("the database URL is not UTF-8".into()))
}

/// `prefer` and `require` without roots: encrypted, but whoever answers is believed (as
/// libpq). The handshake's signatures are still checked.
#[derive(Debug)]
struct NoCheck(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca` (the chain only) and `verify-full` (the chain and the host name).
#[derive(Debug)]
struct Checked {
    webpki: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for Checked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            // The chain is checked before the name: a name error means the chain was good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_params_come_out_of_urls_and_key_value_strings() {
        let (rest, m, r) =
            take_tls_params("postgres://u@h:5/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem")
                .unwrap();
        assert_eq!(rest, "postgres://u@h:5/db?application_name=x");
        assert_eq!(m.as_deref(), Some("verify-full"));
        assert_eq!(r.as_deref(), Some("/tmp/ca.pem"));
        let (rest, m, r) =
            take_tls_params("host=h sslmode = verify-ca sslrootcert='/a b/c\\'d.pem' dbname=x")
                .unwrap();
        assert_eq!(rest, "host=h dbname=x");
        assert_eq!(m.as_deref(), Some("verify-ca"));
        assert_eq!(r.as_deref(), Some("/a b/c'd.pem"));
        assert!(take_tls_params("host='h").is_err());
        assert!("allow".parse::<SslMode>().is_err());
        assert!("verify_full".parse::<SslMode>().is_err());
    }
}
