//! One way to run a statement, whether on the engine's pooled connections (statements prepared
//! once per connection and cached) or inside a caller's own transaction.

use std::future::Future;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;

/// Something statements run on.
pub(crate) trait Conn: Sync {
    /// Run a statement and return its rows.
    fn rows<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a;

    /// Run a statement and return the number of rows it touched.
    fn exec<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a;

    /// Run a statement on a batch of ids and their buckets, planned for these values (a custom
    /// plan), and return its rows. A plan cached for any values must guess how many ids a
    /// batch names and how large the table is: one made while a table was small scans the
    /// table on every call as it grows. Planned for the values, each (bucket, id) pair is one
    /// probe of the primary key, reading only its bucket's partition. Costs a plan per call,
    /// not a round trip (docs/SCALING.md, "How a batch finds its rows").
    fn rows_planned<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a {
        self.rows(sql, params)
    }

    /// [`Conn::rows_planned`], returning the number of rows the statement touched.
    fn exec_planned<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a {
        self.exec(sql, params)
    }

    /// The xid the rows written on this connection carry, when not the transaction's own
    /// (see [`CallerTx`]).
    fn xid(&self) -> Option<i64> {
        None
    }
}

/// The pooled connection and its transactions cache each statement once prepared.
macro_rules! cached_conn {
    ($ty:ty) => {
        impl Conn for $ty {
            async fn rows(
                &self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<Vec<Row>, tokio_postgres::Error> {
                let stmt = self.prepare_cached(sql).await?;
                self.query(&stmt, params).await
            }

            async fn exec(
                &self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<u64, tokio_postgres::Error> {
                let stmt = self.prepare_cached(sql).await?;
                self.execute(&stmt, params).await
            }

            // The cached statement gives the parameter types; the statement then runs unnamed,
            // parsed, planned and run in one round trip.
            async fn rows_planned(
                &self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<Vec<Row>, tokio_postgres::Error> {
                let stmt = self.prepare_cached(sql).await?;
                self.query_typed(sql, &typed(params, stmt.params())).await
            }

            async fn exec_planned(
                &self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<u64, tokio_postgres::Error> {
                let stmt = self.prepare_cached(sql).await?;
                self.execute_typed(sql, &typed(params, stmt.params())).await
            }
        }
    };
}

/// Parameters paired with their types, as `query_typed` takes them.
fn typed<'a>(
    params: &[&'a (dyn ToSql + Sync)],
    types: &[Type],
) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    params.iter().copied().zip(types.iter().cloned()).collect()
}

cached_conn!(deadpool_postgres::Transaction<'_>);
cached_conn!(deadpool_postgres::Client);

impl Conn for tokio_postgres::Transaction<'_> {
    fn rows<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a {
        self.query(sql, params)
    }

    fn exec<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a {
        self.execute(sql, params)
    }
}

/// A caller's transaction as longrun writes in it (`start_tx`, `send_tx`): when it had an xid
/// before it reached longrun, the events and outbox rows it writes carry `xid`, taken after it
/// locked a longrun table, so that no catch-up reader has passed them already
/// (`sql/queries/read_horizon.sql` says why).
pub(crate) struct CallerTx<'t, 'c> {
    pub(crate) tx: &'t tokio_postgres::Transaction<'c>,
    pub(crate) xid: Option<i64>,
}

impl Conn for CallerTx<'_, '_> {
    fn rows<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a {
        self.tx.query(sql, params)
    }

    fn exec<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a {
        self.tx.execute(sql, params)
    }

    fn xid(&self) -> Option<i64> {
        self.xid
    }
}
