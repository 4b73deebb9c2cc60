//! Where the database is and how the store uses it: the schema, pool size, roles, TLS and
//! timeouts (`StoreConfig`), and how the connection settings are found (`pg_config`).

use std::time::Duration;

use super::tls::{PgConfig, SslMode};
use super::{Error, Result};

/// The default schema name.
pub const DEFAULT_SCHEMA: &str = "longrun";

/// Settings of a [`Store`](super::Store).
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The schema holding longrun's tables. Default `longrun`. Must match
    /// `^[a-z_][a-z0-9_]{0,62}$`; it is always quoted and qualified, never taken from
    /// `search_path`.
    pub schema: String,
    /// Maximum pooled connections. Default 16.
    pub pool_size: usize,
    /// The roles the migrations create and grant (see docs/SECURITY.md).
    pub roles: Roles,
    /// TLS mode; `None`: as the URL (or `PGSSLMODE`) says, else `prefer`.
    pub ssl_mode: Option<SslMode>,
    /// Trusted root certificates (a PEM file, or `system`); `None`: as the URL (or
    /// `PGSSLROOTCERT`) says.
    pub ssl_root_cert: Option<std::path::PathBuf>,
    /// How long opening a connection may take, TCP and start-up together (a database that
    /// accepts but never answers is an error after this). Default 10 s; the URL's
    /// `connect_timeout`, if shorter, applies to the TCP part.
    pub connect_timeout: Duration,
    /// How long a caller waits for a pooled connection when all are in use. Default 30 s.
    pub pool_wait_timeout: Duration,
    /// `statement_timeout` for every session of the pool: a statement running longer is
    /// cancelled by the server with an error. Default 60 s; `None` leaves the server's
    /// setting. Migrations lift it for their own transaction (an index build may take long).
    pub statement_timeout: Option<Duration>,
    /// `lock_timeout` for every session of the pool: a statement waiting longer for a lock
    /// (a row another transaction holds, say) fails with an error instead of waiting on.
    /// Default 10 s; `None` leaves the server's setting.
    pub lock_timeout: Option<Duration>,
    /// How the migrations create the bucketed tables when they create the schema: plain tables
    /// (the default) or each `PARTITION BY HASH (bucket)` (docs/SCALING.md). A schema that
    /// exists keeps the layout it was created with, whatever this says.
    pub layout: Layout,
}

/// How the per-instance tables are laid out (see docs/SCALING.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// One plain table each.
    #[default]
    Plain,
    /// Each bucketed table `PARTITION BY HASH (bucket)` in 16 partitions: PostgreSQL then
    /// enforces the key rules a distributed database (Citus) needs, and a statement on one
    /// bucket reads one partition.
    Partitioned,
}

impl std::str::FromStr for Layout {
    type Err = Error;

    fn from_str(s: &str) -> Result<Layout> {
        match s {
            "plain" => Ok(Layout::Plain),
            "partitioned" => Ok(Layout::Partitioned),
            other => Err(Error::BadInput(format!(
                "layout {other:?}: expected plain or partitioned"
            ))),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            schema: DEFAULT_SCHEMA.to_string(),
            pool_size: 16,
            roles: Roles::default(),
            ssl_mode: None,
            ssl_root_cert: None,
            connect_timeout: Duration::from_secs(10),
            pool_wait_timeout: Duration::from_secs(30),
            statement_timeout: Some(Duration::from_secs(60)),
            lock_timeout: Some(Duration::from_secs(10)),
            layout: Layout::Plain,
        }
    }
}

/// The names of the roles the migrations create (each must match `^[a-z_][a-z0-9_]{0,62}$`).
/// Roles belong to the cluster, not to a schema: schemas migrated with the same names share
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    /// Owns the schema and everything in it; migrations after it is created run as it.
    /// Default `longrun_owner`.
    pub owner: String,
    /// What engines need: rows of longrun's tables, nothing more. Default `longrun_runtime`.
    pub runtime: String,
    /// SELECT on the reporting views, nothing else. Default `longrun_reporting`.
    pub reporting: String,
}

impl Default for Roles {
    fn default() -> Self {
        Roles {
            owner: "longrun_owner".into(),
            runtime: "longrun_runtime".into(),
            reporting: "longrun_reporting".into(),
        }
    }
}

impl Roles {
    fn validate(&self) -> Result<()> {
        for r in [&self.owner, &self.runtime, &self.reporting] {
            validate_schema(r).map_err(|_| {
                Error::Config(format!(
                    "invalid role name \"{r}\" (lowercase letters, digits and _, at most 63)"
                ))
            })?;
        }
        Ok(())
    }
}

impl StoreConfig {
    /// Check the settings.
    pub fn validate(&self) -> Result<()> {
        validate_schema(&self.schema)?;
        self.roles.validate()?;
        if self.pool_size == 0 {
            return Err(Error::Config("pool_size must be at least 1".into()));
        }
        let day = Duration::from_secs(86_400);
        for (name, d) in [
            ("connect_timeout", Some(self.connect_timeout)),
            ("pool_wait_timeout", Some(self.pool_wait_timeout)),
            ("statement_timeout", self.statement_timeout),
            ("lock_timeout", self.lock_timeout),
        ] {
            if let Some(d) = d {
                if d.as_millis() == 0 || d > day {
                    return Err(Error::Config(format!(
                        "{name} must be between 1 ms and 24 h (got {d:?})"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Check a schema name against `^[a-z_][a-z0-9_]{0,62}$`.
pub fn validate_schema(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 63;
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidSchema(name.to_string()))
    }
}

/// Connection settings: `url` if given, else `DATABASE_URL`, else what psql would use by
/// default (`PGHOST`/`PGPORT`/`PGUSER`/`PGDATABASE`, then the local socket or localhost and the
/// OS user's name). `sslmode` and `sslrootcert` are read as libpq reads them (in the URL, else
/// `PGSSLMODE`/`PGSSLROOTCERT`): see [`SslMode`].
pub fn pg_config(url: Option<&str>) -> Result<PgConfig> {
    let from_env = std::env::var("DATABASE_URL").ok().filter(|s| !s.is_empty());
    if let Some(url) = url.map(str::to_string).or(from_env) {
        return PgConfig::parse(&url);
    }
    let env = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
    let mut cfg = tokio_postgres::Config::new();
    match env("PGHOST") {
        Some(h) => {
            cfg.host(&h);
        }
        None => {
            let socket_dirs = ["/var/run/postgresql", "/tmp"];
            match socket_dirs
                .iter()
                .find(|d| std::path::Path::new(d).join(".s.PGSQL.5432").exists())
            {
                Some(d) => cfg.host_path(d),
                None => cfg.host("localhost"),
            };
        }
    }
    if let Some(p) = env("PGPORT") {
        let port = p
            .parse::<u16>()
            .map_err(|_| Error::Config(format!("PGPORT is not a port: {p}")))?;
        cfg.port(port);
    }
    let user = env("PGUSER")
        .or_else(os_user)
        .unwrap_or_else(|| "postgres".to_string());
    cfg.dbname(env("PGDATABASE").unwrap_or_else(|| user.clone()));
    cfg.user(&user);
    if let Some(pw) = env("PGPASSWORD") {
        cfg.password(pw);
    }
    cfg.application_name("longrun");
    let mut cfg = PgConfig::from_config(cfg);
    cfg.apply_tls_params(None, None)?;
    Ok(cfg)
}

/// The operating system user's name, as psql takes it: `USER`, `LOGNAME`, else the name of
/// this process's uid in `/etc/passwd`.
fn os_user() -> Option<String> {
    let env = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
    if let Some(u) = env("USER").or_else(|| env("LOGNAME")) {
        return Some(u);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata("/proc/self").ok()?.uid().to_string();
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let mut f = line.split(':');
            let name = f.next()?;
            (f.nth(1)? == uid).then(|| name.to_string())
        })
    }
    #[cfg(not(unix))]
    None
}
