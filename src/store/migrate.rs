//! Numbered, checksummed, immutable migrations, applied under an advisory lock so that several
//! processes may migrate at once.

use sha2::{Digest, Sha256};

use super::sql::{render, MIGRATIONS};
use super::{Error, Result, Roles, Store};

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
        migrations_with(self.schema(), self.roles())
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
        tx.batch_execute(&self.q().migrations_bootstrap).await?;
        let done: Vec<(i32, String, String)> = tx
            .query(&self.q().migrations_applied, &[])
            .await?
            .iter()
            .map(|r| (r.get("version"), r.get("name"), r.get("checksum")))
            .collect();
        let known = self.migrations();
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
    migrations_with(schema, &Roles::default())
}

/// The migrations rendered for `schema` and these role names.
pub fn migrations_with(schema: &str, roles: &Roles) -> Vec<Migration> {
    MIGRATIONS
        .iter()
        .map(|(version, name, text)| Migration {
            version: *version,
            name: name.to_string(),
            sql: render_roles(&render(text, schema), roles),
            checksum: checksum(text),
        })
        .collect()
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
