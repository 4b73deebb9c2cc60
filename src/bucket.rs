//! Buckets: the fixed hash that places every per-instance row (docs/SCALING.md).
//!
//! There are 256 buckets. An instance's bucket is the last byte of its id, and every row it
//! owns (events, jobs, timers, outbox, activity, tasks, ...) carries it, first in every key, so
//! a distributed database can place all of an instance's rows on one node. Message-side rows
//! (subscriptions, inbox) are placed by their correlation key instead, with
//! [`bucket_of_key`]; longrun mints each new instance's id in the bucket of its business key
//! ([`in_bucket`]), so the usual correlation, by business key, stays in one bucket. A child
//! instance, and every job, timer, task and message an instance creates, gets an id in the
//! instance's bucket ([`crate::machine::derived_id`]): a row keyed by such an id alone (jobs,
//! timers, tasks) is bucketed by that id, which is its instance's bucket.
//!
//! The same functions exist in SQL (`bucket_of`, `buckets_of`, `bucket_of_key` in the schema),
//! and must agree with these: a test checks that they do.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// How many buckets there are (0 to 255).
pub const BUCKETS: usize = 256;

/// The bucket of an instance: the last byte of its id.
pub fn bucket_of(instance: Uuid) -> u8 {
    instance.as_bytes()[15]
}

/// The bucket of a business or correlation key: the first byte of the SHA-256 of its UTF-8
/// bytes.
pub fn bucket_of_key(key: &str) -> u8 {
    Sha256::digest(key.as_bytes())[0]
}

/// `id` with its last byte set to `bucket`: the same id otherwise (a UUIDv7 keeps its time
/// order, since the last byte is random in every version).
pub fn in_bucket(id: Uuid, bucket: u8) -> Uuid {
    let mut bytes = *id.as_bytes();
    bytes[15] = bucket;
    Uuid::from_bytes(bytes)
}

/// The bucket of each of `ids`, in their order (as SQL's `smallint`): a statement on a batch
/// of ids takes them side by side and finds each row by its key `(bucket, id)`, one probe each,
/// reading only those buckets' partitions.
pub fn buckets_of(ids: &[Uuid]) -> Vec<i16> {
    ids.iter().map(|id| bucket_of(*id) as i16).collect()
}

/// The bucket of each of `keys`, in their order: beside message ids, as [`buckets_of`] is
/// beside instance ids.
pub fn key_buckets<S: AsRef<str>>(keys: &[S]) -> Vec<i16> {
    keys.iter()
        .map(|k| bucket_of_key(k.as_ref()) as i16)
        .collect()
}

/// The distinct buckets of correlation keys, or `None` if one is empty: a keyless wait is in
/// its instance's bucket, so a lookup by the empty key looks in every bucket.
pub fn buckets_of_keys<S: AsRef<str>>(keys: &[S]) -> Option<Vec<i16>> {
    if keys.iter().any(|k| k.as_ref().is_empty()) {
        return None;
    }
    let mut b: Vec<i16> = keys
        .iter()
        .map(|k| bucket_of_key(k.as_ref()) as i16)
        .collect();
    b.sort_unstable();
    b.dedup();
    Some(b)
}

/// A new instance id (UUIDv7) in the bucket of `business_key`.
pub fn new_instance_id(business_key: &str) -> Uuid {
    in_bucket(Uuid::now_v7(), bucket_of_key(business_key))
}

/// The buckets `me` takes when it shares them with `others` (the live engines that run the
/// same handlers): each bucket goes to the engine whose name and the bucket hash highest
/// (rendezvous hashing). Every engine computes the same split from the same names, each bucket
/// has one taker, the split is even on average, and when an engine comes or goes only the
/// buckets it takes or gave up move.
pub fn shares(me: &str, others: &[String]) -> Vec<i16> {
    let score = |owner: &str, bucket: usize| -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(owner.as_bytes());
        h.update([0, bucket as u8]);
        h.finalize().into()
    };
    (0..BUCKETS)
        .filter(|&b| {
            let mine = score(me, b);
            others
                .iter()
                .filter(|o| o.as_str() != me)
                .all(|o| (score(o, b), o.as_str()) < (mine, me))
        })
        .map(|b| b as i16)
        .collect()
}

/// `items` (each with its bucket) split by `groups` (buckets that live in one place): for each
/// group that has any, in the groups' order, the bucket of each of its items and the items, in
/// the order given. A bucket in no group counts as in the first.
pub(crate) fn split_by_group<T>(
    groups: &[Vec<i16>],
    items: impl IntoIterator<Item = (i16, T)>,
) -> Vec<(Vec<i16>, Vec<T>)> {
    if groups.len() <= 1 {
        // The plain layout: one part, as given (a transition's path: no lookup).
        let (buckets, items): (Vec<i16>, Vec<T>) = items.into_iter().unzip();
        return if buckets.is_empty() {
            Vec::new()
        } else {
            vec![(buckets, items)]
        };
    }
    let mut at = [0usize; BUCKETS];
    for (g, buckets) in groups.iter().enumerate() {
        for &b in buckets {
            at[b as usize] = g;
        }
    }
    let mut parts: Vec<(Vec<i16>, Vec<T>)> = (0..groups.len().max(1))
        .map(|_| (Vec::new(), Vec::new()))
        .collect();
    for (b, item) in items {
        let part = &mut parts[at[b as usize]];
        part.0.push(b);
        part.1.push(item);
    }
    parts.retain(|p| !p.0.is_empty());
    parts
}

/// Every bucket, for an engine that shares with nobody.
pub fn all_buckets() -> Vec<i16> {
    (0..BUCKETS as i16).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_split_by_group_keep_their_order_and_the_groups_theirs() {
        let groups = vec![vec![1, 3], vec![0, 2]];
        let items = [(2, 'a'), (1, 'b'), (0, 'c'), (3, 'd'), (1, 'e')];
        assert_eq!(
            split_by_group(&groups, items),
            vec![
                (vec![1, 3, 1], vec!['b', 'd', 'e']),
                (vec![2, 0], vec!['a', 'c'])
            ]
        );
        // One group of all (the plain layout): everything in one part, as given.
        assert_eq!(
            split_by_group(&[all_buckets()], items),
            vec![(vec![2, 1, 0, 3, 1], vec!['a', 'b', 'c', 'd', 'e'])]
        );
        assert!(split_by_group::<char>(&[all_buckets()], []).is_empty());
    }

    #[test]
    fn engines_split_the_buckets_between_them_and_a_newcomer_moves_only_its_share() {
        let names: Vec<String> = (0..4).map(|i| format!("engine-{i}")).collect();
        assert_eq!(shares("alone", &[]), all_buckets());
        for n in 2..=4 {
            let live = &names[..n];
            let mut seen = vec![0; BUCKETS];
            for me in live {
                let mine = shares(me, live);
                // Even on average: no engine far from its share.
                assert!(mine.len() > BUCKETS / n / 2, "{me}: {} of {n}", mine.len());
                for b in mine {
                    seen[b as usize] += 1;
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "each bucket has one taker");
        }
        // A fourth engine takes buckets only from the others, none moves between them.
        for me in &names[..3] {
            let before: std::collections::BTreeSet<i16> =
                shares(me, &names[..3]).into_iter().collect();
            let after: std::collections::BTreeSet<i16> =
                shares(me, &names[..4]).into_iter().collect();
            assert!(after.is_subset(&before), "{me}");
        }
    }

    #[test]
    fn an_id_minted_for_a_key_is_in_the_keys_bucket_and_keeps_its_version() {
        for key in ["", "order-42", "Bestellung-ä", "x"] {
            let id = new_instance_id(key);
            assert_eq!(bucket_of(id), bucket_of_key(key));
            assert_eq!(id.get_version_num(), 7);
        }
        // Known values, also checked against the SQL functions by the integration tests.
        assert_eq!(bucket_of_key("order-42"), Sha256::digest(b"order-42")[0]);
        assert_eq!(bucket_of(Uuid::from_u128(0x1ff)), 0xff);
    }
}
