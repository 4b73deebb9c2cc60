//! Numbered, checksummed, immutable migrations, applied under an advisory lock so that several
//! processes may migrate at once.

use sha2::{Digest, Sha256};

use super::sql::{render, MIGRATIONS};
use super::{Error, Result, Store};

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
        migrations_for(self.schema())
    }

    /// Apply the migrations not yet applied, in order, all in one transaction, under a
    /// lock that makes concurrent callers wait and then find nothing left to do. Refuses to run
    /// if an applied migration's file changed. Returns the versions it applied.
    pub async fn migrate(&self) -> Result<Vec<i32>> {
        let mut applied_now = Vec::new();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(&self.q().migrations_lock, &[&self.schema()])
            .await?;
        tx.batch_execute(&self.q().migrations_bootstrap).await?;
        let done: Vec<(i32, String, String)> = tx
            .query(&self.q().migrations_applied, &[])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let known = self.migrations();
        for (version, name, sum) in &done {
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
        for m in known {
            if done.iter().any(|(v, _, _)| *v == m.version) {
                continue;
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

/// The migrations rendered for `schema` (what `longrun migrate --print` shows).
pub fn migrations_for(schema: &str) -> Vec<Migration> {
    MIGRATIONS
        .iter()
        .map(|(version, name, text)| Migration {
            version: *version,
            name: name.to_string(),
            sql: render(text, schema),
            checksum: checksum(text),
        })
        .collect()
}
