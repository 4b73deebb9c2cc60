//! One way to run a statement, whether on the engine's pooled connections (statements prepared
//! once per connection and cached) or inside a caller's own transaction.

use std::future::Future;

use tokio_postgres::types::ToSql;
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
        }
    };
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
