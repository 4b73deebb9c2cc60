//! TLS as libpq's `sslmode` says, against a private cluster started with `ssl=on` and a
//! certificate made here (a test CA signs a server certificate for `localhost`).

use longrun::store::{pg_config, PgConfig, SslMode, StoreConfig};
use longrun::Store;
use longrun_cli::cluster::{free_port, Cluster};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

struct Tls {
    cluster: Option<Cluster>,
    ca: String,
    other_ca: String,
}

impl Drop for Tls {
    fn drop(&mut self) {
        if let Some(c) = self.cluster.take() {
            c.destroy();
        }
    }
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

fn start() -> Tls {
    let port = free_port().unwrap();
    let mut cluster = Cluster::create(port, &format!("longrun-tls-{port}")).unwrap();
    let ca1 = ca("longrun test CA");
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca1)
        .unwrap();
    let write = |name: &str, text: String| {
        let p = cluster.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let cert = write("server.crt", server.pem());
    let key = write("server.key", server_key.serialize_pem());
    let ca_file = write("ca.pem", ca1.pem());
    let other_ca = write("other-ca.pem", ca("someone else").pem());
    cluster.give_to_postgres(&cluster.dir).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    cluster
        .listen_tcp()
        .set("ssl", "on")
        .set("ssl_cert_file", &cert)
        .set("ssl_key_file", &key);
    cluster.start().unwrap();
    Tls {
        cluster: Some(cluster),
        ca: ca_file,
        other_ca,
    }
}

impl Tls {
    fn url(&self, host: &str, params: &str) -> String {
        let port = self.cluster.as_ref().unwrap().port;
        format!("postgres://postgres@{host}:{port}/postgres?{params}")
    }

    /// Connect with this URL: whether the session is encrypted, or the error.
    async fn try_url(&self, url: &str) -> Result<bool, String> {
        let cfg = pg_config(Some(url)).map_err(|e| e.to_string())?;
        self.try_cfg(cfg).await
    }

    async fn try_cfg(&self, cfg: PgConfig) -> Result<bool, String> {
        let (client, conn) = cfg.connect().await.map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(row.get(0))
    }
}

#[tokio::test]
async fn each_sslmode_does_what_libpq_does() {
    let tls = start();
    // disable: plain; prefer (the default) and require: encrypted, certificate unchecked.
    assert_eq!(
        tls.try_url(&tls.url("127.0.0.1", "sslmode=disable")).await,
        Ok(false)
    );
    assert_eq!(tls.try_url(&tls.url("127.0.0.1", "")).await, Ok(true));
    assert_eq!(
        tls.try_url(&tls.url("127.0.0.1", "sslmode=require")).await,
        Ok(true)
    );
    // verify-full: the CA signed it and the name is right.
    let full = format!("sslmode=verify-full&sslrootcert={}", tls.ca);
    assert_eq!(tls.try_url(&tls.url("localhost", &full)).await, Ok(true));
    // ... but 127.0.0.1 is not a name the certificate holds.
    let e = tls.try_url(&tls.url("127.0.0.1", &full)).await.unwrap_err();
    assert!(e.contains("certificate"), "{e}");
    // verify-ca: the chain only, so 127.0.0.1 is fine ...
    let ca_only = format!("sslmode=verify-ca&sslrootcert={}", tls.ca);
    assert_eq!(tls.try_url(&tls.url("127.0.0.1", &ca_only)).await, Ok(true));
    // ... and a certificate from another CA is refused, also with require + a root (libpq).
    for mode in ["verify-ca", "verify-full", "require"] {
        let other = format!("sslmode={mode}&sslrootcert={}", tls.other_ca);
        let e = tls
            .try_url(&tls.url("localhost", &other))
            .await
            .unwrap_err();
        assert!(e.contains("certificate"), "{mode}: {e}");
    }
    // The key=value form says the same.
    let port = tls.cluster.as_ref().unwrap().port;
    let kv = format!(
        "host=localhost port={port} user=postgres dbname=postgres sslmode=verify-full sslrootcert='{}'",
        tls.ca
    );
    assert_eq!(tls.try_url(&kv).await, Ok(true));
    // A root file that is not there is a clear error before any connection.
    let missing = "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem";
    let e = tls
        .try_url(&tls.url("localhost", missing))
        .await
        .unwrap_err();
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    assert!(tls
        .try_url(&tls.url("localhost", "sslmode=verify_full"))
        .await
        .unwrap_err()
        .contains("not one of"));

    // StoreConfig says it too, over what the URL says; the store's pool uses it.
    let store = Store::connect_with(
        pg_config(Some(&tls.url("localhost", "sslmode=disable"))).unwrap(),
        StoreConfig {
            schema: "tls_check".into(),
            pool_size: 1,
            ssl_mode: Some(SslMode::VerifyFull),
            ssl_root_cert: Some(tls.ca.clone().into()),
            ..StoreConfig::default()
        },
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let refused = Store::connect_with(
        pg_config(Some(&tls.url("127.0.0.1", "sslmode=disable"))).unwrap(),
        StoreConfig {
            schema: "tls_check".into(),
            pool_size: 1,
            ssl_mode: Some(SslMode::VerifyFull),
            ssl_root_cert: Some(tls.other_ca.clone().into()),
            ..StoreConfig::default()
        },
    )
    .await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn the_command_line_connects_with_verify_full() {
    let tls = start();
    let url = tls.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", tls.ca),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_longrun"))
        .args(["--database-url", &url, "--schema", "tls_cli", "migrate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = tls.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", tls.ca),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_longrun"))
        .args(["--database-url", &bad, "--schema", "tls_cli", "definitions"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certificate"), "{err}");
}
