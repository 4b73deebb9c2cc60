//! What must happen one transaction at a time, serialized by row locks on `locks` (migration
//! 0021) rather than advisory locks: a row lock holds on every node of a distributed database,
//! an advisory lock only on the node that took it.

use std::collections::BTreeMap;

use super::conn::Conn;
use super::{Result, Store};
use crate::bucket::bucket_of_key;

/// The unit separator between the parts of a lock key (no message name, key or process id
/// holds it in practice, and a clash would only serialize two things that need not be).
const SEP: char = '\u{1f}';

/// A set of lock rows, each in a bucket: distinct and sorted by key. Every transaction takes
/// them group of buckets by group, in key order in each (the order of `Store::split_by_group`),
/// so that two never wait for each other in a cycle.
#[derive(Debug, Default)]
pub(crate) struct Locks(BTreeMap<String, i16>);

impl Locks {
    /// The locks of correlations `(message name, key)`: one per distinct pair, in the bucket of
    /// its key, where its subscriptions and buffered messages are.
    pub(crate) fn correlations<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Locks(
            pairs
                .into_iter()
                .map(|(name, key)| {
                    (
                        format!("correlate{SEP}{name}{SEP}{key}"),
                        i16::from(bucket_of_key(key)),
                    )
                })
                .collect(),
        )
    }

    /// The lock of the deploys of one process, in the bucket of its id.
    pub(crate) fn definition(process: &str) -> Self {
        Locks(BTreeMap::from([(
            format!("definition{SEP}{process}"),
            i16::from(bucket_of_key(process)),
        )]))
    }

    /// Take them in `c`'s transaction; they are held until it ends. Nothing to take is no
    /// statement.
    pub(crate) async fn take(&self, store: &Store, c: &impl Conn) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        // One statement per group of buckets (Store::split_by_group), groups in order and
        // keys sorted in each: every transaction takes its locks in (group, key) order.
        let parts = store
            .split_by_group(c, self.0.iter().map(|(k, &b)| (b, k.as_str())))
            .await?;
        // Sent at once, in the groups' order, which is the order PostgreSQL runs them in.
        let params: Vec<[&(dyn tokio_postgres::types::ToSql + Sync); 2]> = parts
            .iter()
            .map(|p| [&p.buckets as _, &p.items as _])
            .collect();
        futures_util::future::try_join_all(
            params
                .iter()
                .map(|p| c.exec(&store.q().correlation_lock, p)),
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_distinct_sorted_and_in_their_keys_bucket() {
        let l = Locks::correlations([("B", "k2"), ("A", "k1"), ("B", "k2")]);
        let keys: Vec<&String> = l.0.keys().collect();
        assert_eq!(
            keys,
            ["correlate\u{1f}A\u{1f}k1", "correlate\u{1f}B\u{1f}k2"]
        );
        assert_eq!(
            l.0["correlate\u{1f}B\u{1f}k2"],
            i16::from(bucket_of_key("k2"))
        );
        let d = Locks::definition("order");
        assert_eq!(
            d.0["definition\u{1f}order"],
            i16::from(bucket_of_key("order"))
        );
    }
}
