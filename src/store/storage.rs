//! What the schema holds, for `longrun storage`: rows and bytes per table, and per ended
//! instance.

use serde::Serialize;

use super::{Conn, Error, Result, Store};

/// One table's size, for `longrun storage`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableSize {
    /// The table.
    pub table: String,
    /// Rows: counted, or as the planner last estimated them (-1: never analysed).
    pub rows: i64,
    /// Bytes with its indexes and TOAST.
    pub total_bytes: i64,
    /// Bytes of the table alone.
    pub table_bytes: i64,
    /// Bytes of its indexes.
    pub index_bytes: i64,
}

/// What the schema holds, for `longrun storage`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Storage {
    /// Each table, largest first.
    pub tables: Vec<TableSize>,
    /// Instances that ended (completed, failed or cancelled).
    pub ended_instances: i64,
    /// Instances still running.
    pub running_instances: i64,
}

impl Storage {
    /// All tables' bytes.
    pub fn total_bytes(&self) -> i64 {
        self.tables.iter().map(|t| t.total_bytes).sum()
    }

    /// Bytes per ended instance (none while no instance has ended): roughly what each
    /// completed instance leaves behind while nothing is removed.
    pub fn bytes_per_ended_instance(&self) -> Option<i64> {
        (self.ended_instances > 0).then(|| self.total_bytes() / self.ended_instances)
    }
}

impl Store {
    /// Rows and bytes per table of the schema, and the instances they hold. With `exact`,
    /// each table's rows are counted (a full scan of each); otherwise they are the planner's
    /// last estimate.
    pub async fn storage(&self, exact: bool) -> Result<Storage> {
        let c = self.client().await?;
        let tables = c
            .rows(&self.q().storage_tables, &[&exact])
            .await?
            .iter()
            .map(|r| TableSize {
                table: r.get("table_name"),
                rows: r.get("rows"),
                total_bytes: r.get("total_bytes"),
                table_bytes: r.get("table_bytes"),
                index_bytes: r.get("index_bytes"),
            })
            .collect();
        let counts = c.rows(&self.q().storage_instances, &[]).await?;
        let row = counts.first().ok_or(Error::Conflict("no counts".into()))?;
        Ok(Storage {
            tables,
            ended_instances: row.get("ended"),
            running_instances: row.get("running"),
        })
    }
}
