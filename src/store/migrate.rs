//! Numbered, checksummed, immutable migrations, applied under an advisory lock so that several
//! processes may migrate at once.

use sha2::{Digest, Sha256};

use super::sql::{render, MIGRATIONS};
use super::{Error, Layout, Result, Roles, Store};

/// The first migration that runs as the owner role (the one that creates it: 0009).
const OWNER_FROM: i32 = 9;

/// One migration as it would run against this store's schema.
#[derive(Debug, Clone)]
pub struct Migration {
    /// Its number.
    pub version: i32,
    /// Its file name without `.sql`.
    pub name: String,
    /// The SQL, with the schema name filled in.
    pub sql: String,
    /// SHA-256 of the file as shipped (before the schema is filled in).
    pub checksum: String,
}

fn checksum(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Store {
    /// Every migration longrun ships, rendered for this schema (what `migrate --print` shows).
    pub fn migrations(&self) -> Vec<Migration> {
        migrations_with(self.schema(), self.roles(), self.layout())
    }

    /// Apply the migrations not yet applied, in order, all in one transaction, under a
    /// lock that makes concurrent callers wait and then find nothing left to do. Refuses to run
    /// if an applied migration's file changed. Returns the versions it applied.
    pub async fn migrate(&self) -> Result<Vec<i32>> {
        let mut applied_now = Vec::new();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.batch_execute(&self.q().migrations_no_statement_timeout)
            .await?;
        tx.execute(&self.q().migrations_lock, &[&self.schema()])
            .await?;
        tx.batch_execute(&self.q().migrations_lock_timeout).await?;
        tx.batch_execute(&self.q().migrations_bootstrap).await?;
        let done: Vec<(i32, String, String)> = tx
            .query(&self.q().migrations_applied, &[])
            .await?
            .iter()
            .map(|r| (r.get("version"), r.get("name"), r.get("checksum")))
            .collect();
        // A schema that exists keeps its layout: the one its `instances` table was made with.
        let layout = match tx
            .query_opt(&self.q().migrations_layout, &[])
            .await?
            .and_then(|r| r.get::<_, Option<i8>>(0))
        {
            Some(kind) if kind as u8 == b'p' => Layout::Partitioned,
            Some(_) => Layout::Plain,
            None => self.layout(),
        };
        let known = migrations_with(self.schema(), self.roles(), layout);
        verify_applied(&done, &known)?;
        for m in known {
            if done.iter().any(|(v, _, _)| *v == m.version) {
                continue;
            }
            if m.version > OWNER_FROM {
                // Objects later migrations create belong to the owner role, like the rest.
                tx.batch_execute(&format!("SET LOCAL ROLE \"{}\"", self.roles().owner))
                    .await?;
            }
            tx.batch_execute(&m.sql).await?;
            tx.execute(
                &self.q().migrations_record,
                &[&m.version, &m.name, &m.checksum],
            )
            .await?;
            applied_now.push(m.version);
        }
        tx.commit().await?;
        Ok(applied_now)
    }
}

impl Store {
    /// The migrations not applied yet to this schema (all of them when the schema or its
    /// `schema_migrations` table does not exist). Reads only: what an engine running as the
    /// runtime role checks before it starts. An applied migration whose file changed is an
    /// error, as in [`Store::migrate`].
    pub async fn pending_migrations(&self) -> Result<Vec<Migration>> {
        let c = self.client().await?;
        let done: Vec<(i32, String, String)> =
            match c.query(&self.q().migrations_applied, &[]).await {
                Ok(rows) => rows
                    .iter()
                    .map(|r| (r.get("version"), r.get("name"), r.get("checksum")))
                    .collect(),
                Err(e)
                    if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
                        || e.code()
                            == Some(&tokio_postgres::error::SqlState::INVALID_SCHEMA_NAME) =>
                {
                    Vec::new()
                }
                Err(e) => return Err(e.into()),
            };
        let known = self.migrations();
        verify_applied(&done, &known)?;
        Ok(known
            .into_iter()
            .filter(|m| !done.iter().any(|(v, _, _)| *v == m.version))
            .collect())
    }
}

/// Refuse applied migrations this build does not know, or whose file changed since.
fn verify_applied(done: &[(i32, String, String)], known: &[Migration]) -> Result<()> {
    for (version, name, sum) in done {
        match known.iter().find(|m| m.version == *version) {
            None => return Err(Error::MigrationUnknown(*version)),
            Some(m) if m.checksum != *sum => {
                return Err(Error::MigrationChanged {
                    version: *version,
                    name: name.clone(),
                    applied: sum.clone(),
                    file: m.checksum.clone(),
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The migrations rendered for `schema` with the default role names (what `longrun migrate
/// --print` shows).
pub fn migrations_for(schema: &str) -> Vec<Migration> {
    migrations_with(schema, &Roles::default(), Layout::Plain)
}

/// The migrations rendered for `schema`, these role names and this layout. The layout changes
/// only how a bucketed table is created, never the checksum: both layouts apply the same
/// migrations.
pub fn migrations_with(schema: &str, roles: &Roles, layout: Layout) -> Vec<Migration> {
    MIGRATIONS
        .iter()
        .map(|(version, name, text)| Migration {
            version: *version,
            name: name.to_string(),
            sql: render_layout(&render_roles(&render(text, schema), roles), layout),
            checksum: checksum(text),
        })
        .collect()
}

/// Fill in `__bucketed__`, which follows the column list of each bucketed table: nothing in
/// the plain layout, `PARTITION BY HASH (bucket)` in the partitioned one.
fn render_layout(sql: &str, layout: Layout) -> String {
    match layout {
        Layout::Plain => sql.replace(" __bucketed__", ""),
        Layout::Partitioned => sql.replace("__bucketed__", "PARTITION BY HASH (bucket)"),
    }
}

/// Fill in the role placeholders: `__owner_role_name__` (a name, inside a string literal) and
/// `__owner_role__` (a quoted identifier), and the same for `runtime` and `reporting`. Names
/// are validated identifiers, so neither form can break out of its quoting.
fn render_roles(sql: &str, roles: &Roles) -> String {
    let mut out = sql.to_string();
    for (key, name) in [
        ("owner", &roles.owner),
        ("runtime", &roles.runtime),
        ("reporting", &roles.reporting),
    ] {
        out = out
            .replace(&format!("__{key}_role_name__"), name)
            .replace(&format!("__{key}_role__"), &format!("\"{name}\""));
    }
    out
}

/// How [`migration_files`] lays the migrations out for a DBA's tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// `0001_core.sql`, ...: each file a transaction of its own (`BEGIN` ... `COMMIT`), for
    /// `psql -v ON_ERROR_STOP=1 -f` or any tool that runs a script in one session.
    Plain,
    /// `V1__core.sql`, ...: Flyway's naming, without `BEGIN`/`COMMIT` (Flyway runs each
    /// migration in a transaction of its own).
    Flyway,
}

/// The pieces a printed migration is made of (`sql/print/`), rendered for a schema.
struct Pieces<'a> {
    schema: &'a str,
    roles: &'a Roles,
}

impl Pieces<'_> {
    fn render(&self, text: &str) -> String {
        render_roles(&render(text, self.schema), self.roles)
            .trim_end()
            .to_string()
    }

    fn bootstrap(&self) -> String {
        self.render(include_str!("../../sql/queries/migrations_bootstrap.sql"))
    }

    /// Refuse unless exactly migrations 1 to `after` are applied.
    fn check(&self, after: i32) -> String {
        self.render(include_str!("../../sql/print/check.sql"))
            .replace("__after__", &after.to_string())
    }

    /// One migration: (as the owner from 0010 on) its SQL, then its record.
    fn migration(&self, m: &Migration) -> String {
        let mut out = String::new();
        if m.version > OWNER_FROM {
            out.push_str(&self.render(include_str!("../../sql/print/owner.sql")));
            out.push('\n');
        }
        out.push_str(&format!(
            "-- migration {} ({}), sha256 {}\n",
            m.version, m.name, m.checksum
        ));
        out.push_str(m.sql.trim_end());
        out.push_str("\n\n");
        out.push_str(
            &self
                .render(include_str!("../../sql/print/record.sql"))
                .replace("__version__", &m.version.to_string())
                .replace("__name__", &m.name)
                .replace("__checksum__", &m.checksum),
        );
        out
    }
}

/// The SQL that brings `schema` from migration `after` (0: an empty database) to the latest,
/// as one transaction a DBA applies with `psql -v ON_ERROR_STOP=1` or any SQL tool: the
/// schema and its `schema_migrations` ledger if missing, a check that exactly migrations 1 to
/// `after` are applied, each migration after it, and each recorded with its checksum, so that
/// engines and a later `longrun migrate` see them as applied. What `longrun migrate --print
/// [--from N]` prints.
pub fn migration_script(schema: &str, roles: &Roles, layout: Layout, after: i32) -> Result<String> {
    let all = migrations_with(schema, roles, layout);
    let latest = all.last().map_or(0, |m| m.version);
    if !(0..=latest).contains(&after) {
        return Err(Error::BadInput(format!(
            "--from {after}: this build's migrations are 1 to {latest}"
        )));
    }
    let p = Pieces { schema, roles };
    let mut out = format!(
        "-- longrun {}: schema \"{schema}\" from migration {after} to {latest}.\n\
         -- Apply with: psql -v ON_ERROR_STOP=1 -f this.sql (one transaction; nothing is applied\n\
         -- if any statement fails).\n\n",
        env!("CARGO_PKG_VERSION"),
    );
    for piece in [
        p.render(include_str!("../../sql/print/begin.sql")),
        p.bootstrap(),
        p.check(after),
    ] {
        out.push_str(&piece);
        out.push_str("\n\n");
    }
    for m in all.iter().filter(|m| m.version > after) {
        out.push_str(&p.migration(m));
        out.push_str("\n\n");
    }
    out.push_str(&p.render(include_str!("../../sql/print/end.sql")));
    out.push('\n');
    Ok(out)
}

/// Every migration as a file of its own for a DBA's tool (`longrun migrate --out DIR
/// --format plain|flyway`): (file name, contents). Each file creates the schema and ledger if
/// missing, checks that the migrations before it (and only those) are applied, and records
/// itself, so the files apply in order with any tool and a later `longrun migrate` sees them.
pub fn migration_files(
    schema: &str,
    roles: &Roles,
    layout: Layout,
    format: FileFormat,
) -> Vec<(String, String)> {
    let p = Pieces { schema, roles };
    migrations_with(schema, roles, layout)
        .iter()
        .map(|m| {
            let body = [p.bootstrap(), p.check(m.version - 1), p.migration(m)].join("\n\n");
            match format {
                FileFormat::Plain => (
                    format!("{}.sql", m.name),
                    format!(
                        "{}\n\n{body}\n\n{}\n",
                        p.render(include_str!("../../sql/print/begin.sql")),
                        p.render(include_str!("../../sql/print/end.sql"))
                    ),
                ),
                FileFormat::Flyway => (
                    format!(
                        "V{}__{}.sql",
                        m.version,
                        m.name.split_once('_').map_or(m.name.as_str(), |(_, n)| n)
                    ),
                    format!(
                        "{}\n\n{body}\n",
                        p.render(include_str!("../../sql/print/statement_timeout.sql"))
                    ),
                ),
            }
        })
        .collect()
}
