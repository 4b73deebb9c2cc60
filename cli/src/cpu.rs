//! Where a bench run's CPU and WAL went: this process's CPU (with its waited-for children, the
//! `--processes` engine processes), the PostgreSQL server's CPU (its postmaster and every
//! process under it, the exited backends included through the postmaster's children times),
//! and the WAL the cluster wrote. Linux only, and the server's CPU only when it runs on this
//! host; elsewhere those figures are `None`.

use std::path::Path;

use longrun::store::Result;

/// One reading, taken before and after a run.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// This process and its waited-for children, seconds of CPU.
    pub engine_s: Option<f64>,
    /// The server's processes, seconds of CPU.
    pub server_s: Option<f64>,
    /// The cluster's WAL insert position, bytes.
    pub wal_bytes: f64,
}

/// What a run cost, the difference of two samples.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    /// Seconds of CPU of the engine side.
    pub engine_s: Option<f64>,
    /// Seconds of CPU of the server.
    pub server_s: Option<f64>,
    /// Bytes of WAL written.
    pub wal_bytes: f64,
}

impl Sample {
    /// Takes a reading through `client`, whose backend locates the server's processes.
    pub async fn take(client: &tokio_postgres::Client) -> Result<Sample> {
        let row = client
            .query_one(include_str!("../../sql/queries/bench_cpu_sample.sql"), &[])
            .await?;
        let backend: i32 = row.get(0);
        let wal_bytes: f64 = row.get::<_, String>(1).parse().unwrap_or(f64::NAN);
        Ok(Sample {
            engine_s: times(Path::new("/proc/self/stat")).map(|t| t.own + t.children),
            server_s: server_seconds(backend),
            wal_bytes,
        })
    }

    /// The cost from `self` to `later`.
    pub fn until(&self, later: &Sample) -> Cost {
        let diff = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
        Cost {
            engine_s: diff(self.engine_s, later.engine_s),
            server_s: diff(self.server_s, later.server_s),
            wal_bytes: later.wal_bytes - self.wal_bytes,
        }
    }
}

struct Times {
    own: f64,
    children: f64,
    parent: u32,
}

/// utime + stime and cutime + cstime of one process, seconds, and its parent.
fn times(stat: &Path) -> Option<Times> {
    let text = std::fs::read_to_string(stat).ok()?;
    // The command name is in parentheses and may hold spaces: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
    // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    let tick = clock_tick()?;
    Some(Times {
        own: (num(11)? + num(12)?) / tick,
        children: (num(13)? + num(14)?) / tick,
        parent: f.get(1)?.parse().ok()?,
    })
}

fn clock_tick() -> Option<f64> {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (t > 0).then_some(t as f64)
}

/// The CPU of the postmaster that owns `backend` and of all its processes, seconds.
fn server_seconds(backend: i32) -> Option<f64> {
    let postmaster = times(&Path::new("/proc").join(backend.to_string()).join("stat"))?.parent;
    let root = times(&Path::new("/proc").join(postmaster.to_string()).join("stat"))?;
    let mut total = root.own + root.children;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == postmaster {
            continue;
        }
        if let Some(t) = times(&entry.path().join("stat")) {
            if t.parent == postmaster {
                total += t.own;
            }
        }
    }
    Some(total)
}
