//! Serving: the metrics endpoint, the console, and `longrun dev`.

use crate::args::*;
use crate::util::*;

pub(crate) async fn serve_metrics(addr: std::net::SocketAddr) -> Result<(), Failure> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| Failure::Other(format!("cannot install the metrics recorder: {e}")))?;
    longrun::telemetry::describe();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::Other(format!("cannot listen on {addr}: {e}")))?;
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                continue;
            };
            let handle = handle.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let response = if request.starts_with("GET /metrics ") {
                    let body = handle.render();
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        .to_string()
                };
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    Ok(())
}

/// `longrun dev`: a private cluster, migrated, with an engine and the console, until
/// interrupted; then the cluster is stopped and (unless `keep`) removed.
pub(crate) async fn dev(
    cli: &Cli,
    listen: std::net::SocketAddr,
    port: Option<u16>,
    keep: bool,
) -> Result<(), Failure> {
    use longrun_cli::cluster::{free_port, Cluster};
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| Failure::Other(e.to_string());
    let port = match port {
        Some(p) => p,
        None => free_port().map_err(failed)?,
    };
    eprintln!("longrun: creating a PostgreSQL cluster (initdb) ...");
    let mut cluster = Cluster::create(port, &format!("longrun-dev-{port}")).map_err(failed)?;
    cluster.listen_tcp();
    let started = cluster.start().map_err(failed);
    let result = match started {
        Ok(()) => {
            let url = format!("postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable");
            println!("DATABASE_URL={url}");
            println!("LONGRUN_SCHEMA={}", cli.schema);
            eprintln!(
                "longrun: PostgreSQL in {} on port {port}; in another shell: export DATABASE_URL='{url}'",
                cluster.dir.display()
            );
            let mut dev_cli = cli.clone();
            dev_cli.database_url = Some(url);
            serve_console(&dev_cli, listen, None, "x-longrun-user", true, true, &[]).await
        }
        Err(e) => Err(e),
    };
    let _ = cluster.stop("fast");
    if keep {
        eprintln!("longrun: kept the cluster in {}", cluster.dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&cluster.dir);
        eprintln!("longrun: removed the cluster");
    }
    result
}

/// `longrun console`: the console's router, alone or under a prefix, until interrupted.
pub(crate) async fn serve_console(
    cli: &Cli,
    listen: std::net::SocketAddr,
    prefix: Option<&str>,
    user_header: &str,
    run_engine: bool,
    migrate: bool,
    allowed_hosts: &[String],
) -> Result<(), Failure> {
    let prefix = match prefix.map(|p| p.trim_end_matches('/')) {
        None | Some("") => None,
        Some(p) if p.starts_with('/') && !p.contains(['?', '#', '{', '}', '*']) => Some(p),
        Some(p) => {
            return Err(Failure::Input(format!(
                "--prefix must be a path like /ops, not {p:?}"
            )))
        }
    };
    axum::http::HeaderName::from_bytes(user_header.as_bytes()).map_err(|_| {
        Failure::Input(format!(
            "--user-header {user_header:?} is not a header name"
        ))
    })?;
    let engine = connect_pool(cli, 8).await?;
    migrated(&engine, migrate).await?;
    let running = run_engine.then(|| engine.run());
    let mut hosts = allowed_hosts.to_vec();
    hosts.push(listen.to_string());
    let console = longrun::console::Console::new(engine.clone())
        .user_header(user_header)
        .allowed_hosts(hosts)
        .router();
    let app = match prefix {
        Some(p) => axum::Router::new().nest_service(p, console),
        None => console,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Failure::Other(format!("cannot listen on {listen}: {e}")))?;
    if !listen.ip().is_loopback() {
        eprintln!(
            "longrun: WARNING: the console listens on {listen}, not a loopback address, and has no authentication of its own: anyone who reaches it can cancel instances. Put an authenticating proxy in front."
        );
    }
    eprintln!(
        "longrun: console at http://{}{}/ on schema \"{}\"{}; stop with Ctrl-C or SIGTERM",
        listener
            .local_addr()
            .map_err(|e| Failure::Other(e.to_string()))?,
        prefix.unwrap_or(""),
        cli.schema,
        if run_engine { ", with an engine" } else { "" }
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Failure::Other(format!("cannot watch SIGTERM: {e}")))?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await
        .map_err(|e| Failure::Other(format!("the console stopped: {e}")))?;
    if let Some(running) = running {
        running.shutdown().await;
    }
    eprintln!("longrun: console stopped");
    Ok(())
}
