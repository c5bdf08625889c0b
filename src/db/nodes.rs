//! The database nodes an instance can reach, and which of them a unit of work goes to.
//!
//! One server: one node, and nothing here matters. On a Galera cluster every node accepts writes,
//! but two nodes writing the same row at once certify against each other and one transaction
//! fails at commit; under a rush that is a room's counter or a hot wallet many times a second.
//! So writes that serialise on one row go to that row's **home node**, chosen by rendezvous
//! hashing of the key (a room's concert, a fan's id) over the nodes' addresses: every instance,
//! whatever order it lists the nodes in, picks the same one, and when that node cannot be
//! reached the next one in the key's order takes over (each instance on its own: two may
//! disagree for the second or so one of them takes to notice, which costs a retried conflict,
//! never a wrong answer). Everything else goes to the instance's own node first.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::pool::Manager;

/// A node that refused a connection is skipped for this long, then tried again.
pub(super) const DOWN_FOR: Duration = Duration::from_secs(1);

/// One node: its pool, and whether it was reachable lately.
pub(super) struct Node {
    pub(super) pool: deadpool::managed::Pool<Manager>,
    /// host:port, as the URL names it: what the home of a key is computed from.
    pub(super) address: String,
    down_until: Mutex<Option<Instant>>,
    /// The last answer of a probe on a connection of its own, so a busy pool under a stream of
    /// health checks opens at most one such connection at a time and about one a second.
    pub(super) direct_probe: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

impl Node {
    pub(super) fn new(pool: deadpool::managed::Pool<Manager>, url: &str) -> Self {
        Self {
            pool,
            address: address_of(url).to_owned(),
            down_until: Mutex::new(None),
            direct_probe: tokio::sync::Mutex::new(None),
        }
    }

    pub(super) fn is_down(&self, now: Instant) -> bool {
        self.down_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_some_and(|until| until > now)
    }

    pub(super) fn mark_down(&self) {
        metrics::counter!("db_node_down_total", "node" => self.address.clone()).increment(1);
        *self
            .down_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now() + DOWN_FOR);
    }
}

/// The nodes to try, in `order`, leaving out those down unless every one is (no allocation:
/// every lease asks).
pub(super) fn candidates<'a>(
    nodes: &'a [Node],
    order: &'a [usize],
) -> impl Iterator<Item = usize> + 'a {
    let now = Instant::now();
    let up = move |i: usize| nodes.get(i).is_some_and(|n| !n.is_down(now));
    let any_up = order.iter().any(|&i| up(i));
    order.iter().copied().filter(move |&i| !any_up || up(i))
}

/// The order in which `key`'s writes try the nodes: highest rendezvous score first.
pub(super) fn home_order(addresses: &[&str], key: &[u8]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..addresses.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(score(addresses[i], key)));
    order
}

/// host:port of a `mysql://user:pass@host:port/db` URL (the whole text when it has no such
/// shape).
pub(super) fn address_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// FNV-1a over the node's address and the key, then a finaliser (splitmix64) so near keys
/// spread: stable across processes and builds, unlike the standard library's hasher.
fn score(address: &str, key: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in address.bytes().chain([0xff]).chain(key.iter().copied()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_host_and_port() {
        assert_eq!(
            address_of("mysql://encore:secret@127.0.0.1:3411/encore"),
            "127.0.0.1:3411"
        );
        assert_eq!(address_of("mysql://127.0.0.1:3412"), "127.0.0.1:3412");
        assert_eq!(address_of("mysql://u:p@db-3:3306/x?ssl=1"), "db-3:3306");
    }

    #[test]
    fn every_instance_picks_the_same_home_whatever_order_it_lists_the_nodes_in() {
        let one = ["127.0.0.1:3411", "127.0.0.1:3412", "127.0.0.1:3413"];
        let other = ["127.0.0.1:3413", "127.0.0.1:3411", "127.0.0.1:3412"];
        for key in 0..200u32 {
            let key = key.to_be_bytes();
            let a: Vec<&str> = home_order(&one, &key).iter().map(|&i| one[i]).collect();
            let b: Vec<&str> = home_order(&other, &key).iter().map(|&i| other[i]).collect();
            assert_eq!(a, b);
        }
    }

    #[test]
    fn keys_spread_over_the_nodes_and_a_lost_node_moves_only_its_own_keys() {
        let all = ["127.0.0.1:3411", "127.0.0.1:3412", "127.0.0.1:3413"];
        let two = ["127.0.0.1:3411", "127.0.0.1:3412"];
        let mut homes = [0usize; 3];
        for key in 0..3000u32 {
            let key = key.to_be_bytes();
            let home = home_order(&all, &key)[0];
            homes[home] += 1;
            let without_third = two[home_order(&two, &key)[0]];
            if home != 2 {
                // A key not homed on the lost node keeps its home.
                assert_eq!(without_third, all[home]);
            }
        }
        assert!(homes.iter().all(|&n| (800..1200).contains(&n)), "{homes:?}");
    }
}
