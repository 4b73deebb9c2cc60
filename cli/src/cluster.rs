//! A private, throwaway PostgreSQL cluster in a directory of its own, made with the server
//! binaries (`initdb`, `pg_ctl`) found through `pg_config --bindir` or under
//! `/usr/lib/postgresql`: for `longrun dev`, the chaos harness and tests that need a server of
//! their own (TLS, restarts). Run as root, the cluster belongs to the `postgres` user (the
//! server refuses to run as root).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A failure to make, start or stop a cluster, with what the tool said.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A cluster: its directory (data in `data/`, the socket and the log beside it) and port.
#[derive(Debug)]
pub struct Cluster {
    /// The directory holding everything of the cluster.
    pub dir: PathBuf,
    bin: PathBuf,
    /// The port it listens on (socket, and TCP on 127.0.0.1 when asked for).
    pub port: u16,
    as_postgres: bool,
    /// Settings passed with `-c` at start, e.g. `("ssl", "on")`.
    settings: Vec<(String, String)>,
    tcp: bool,
}

impl Cluster {
    /// `initdb` a new cluster in a new directory under the system's temporary directory,
    /// named from `name` and this process's id. Nothing is started yet.
    pub fn create(port: u16, name: &str) -> Result<Cluster> {
        let bin = find_bindir()?;
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        if dir.exists() {
            return Err(format!("{} exists already", dir.display()).into());
        }
        std::fs::create_dir_all(&dir)?;
        let as_postgres = is_root();
        let cluster = Cluster {
            dir,
            bin,
            port,
            as_postgres,
            settings: Vec::new(),
            tcp: false,
        };
        if as_postgres {
            cluster.give_to_postgres(&cluster.dir)?;
        }
        let data = cluster.data();
        let out = cluster
            .pg(
                "initdb",
                &["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            )
            .stdout(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(cluster)
    }

    /// Hand a file or directory to the `postgres` user when the cluster runs as it.
    pub fn give_to_postgres(&self, path: &Path) -> Result<()> {
        if !self.as_postgres {
            return Ok(());
        }
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()?
            .success();
        if ok {
            Ok(())
        } else {
            Err(format!("cannot hand {} to the postgres user", path.display()).into())
        }
    }

    /// A server setting for every start (`-c name=value`).
    pub fn set(&mut self, name: &str, value: &str) -> &mut Cluster {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// Listen on 127.0.0.1 too (TLS needs TCP); by default only on the socket.
    pub fn listen_tcp(&mut self) -> &mut Cluster {
        self.tcp = true;
        self
    }

    fn pg(&self, program: &str, args: &[&str]) -> Command {
        let exe = self.bin.join(program);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        c.args(args).stdin(Stdio::null());
        c
    }

    /// The data directory.
    pub fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// Start it and wait until it accepts connections.
    pub fn start(&self) -> Result<()> {
        let mut opts = format!(
            "-p {} -k {} -c listen_addresses='{}' -c max_connections=200 -c fsync=on",
            self.port,
            self.dir.display(),
            if self.tcp { "127.0.0.1" } else { "" }
        );
        for (k, v) in &self.settings {
            opts.push_str(&format!(" -c {k}='{v}'"));
        }
        let log = self.dir.join("postgres.log").display().to_string();
        let out = self
            .pg(
                "pg_ctl",
                &[
                    "-D",
                    &self.data(),
                    "-l",
                    &log,
                    "-o",
                    &opts,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            )
            .output()?;
        if !out.status.success() {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!(
                "pg_ctl start failed: {}{}",
                String::from_utf8_lossy(&out.stderr),
                tail
            )
            .into());
        }
        Ok(())
    }

    /// Stop it (`mode`: smart, fast or immediate).
    pub fn stop(&self, mode: &str) -> Result<()> {
        let out = self
            .pg(
                "pg_ctl",
                &["-D", &self.data(), "-m", mode, "-w", "-t", "60", "stop"],
            )
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(())
    }

    /// A key=value connection string over the cluster's socket, as the `postgres` user.
    pub fn conn(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.dir.display(),
            self.port
        )
    }

    /// Stop it (fast) and remove its directory.
    pub fn destroy(self) {
        let _ = self.stop("fast");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free TCP port on 127.0.0.1 (asked of the kernel, then released).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn is_root() -> bool {
    // The effective user id, read from /proc (no libc call needed).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Where `initdb` and `pg_ctl` are.
pub fn find_bindir() -> Result<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "no PostgreSQL server binaries (initdb) found")?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .ok_or_else(|| "no PostgreSQL server binaries (initdb) found".into())
}
