//! The prefix tree a survey builds, kept in bounded memory whatever the keyspace size.
//!
//! A survey may see tens of millions of keys, so nothing here grows with the number of
//! keys: a node is created for a prefix the first time one of its keys is seen, as long
//! as the caps allow (at most `max_children` per node, `max_nodes` in all); a key whose
//! prefix finds no room is counted in its parent's `(other)` node instead. Because a
//! named node exists from its first key on, and a prefix that found no room never finds
//! room later (caps never shrink), **every named node's counts are exact**, and so is
//! every `(other)` node's. Per node the tree keeps counters, a fixed array of type
//! counts, the soonest expiry, the `top` biggest *sampled* keys (a bounded min-heap)
//! and at most one key name waiting to be sampled; the tree is pure (no Redis) so it
//! can be tested and fed from anywhere.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use serde::Serialize;

use crate::keys::display_key;

/// The key types the survey tells apart, in the order of [`TypeCounts`].
pub const TYPE_NAMES: [&str; 7] = ["string", "list", "set", "zset", "hash", "stream", "other"];

/// A key's Redis type as `TYPE` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// `string`
    String,
    /// `list`
    List,
    /// `set`
    Set,
    /// `zset`
    Zset,
    /// `hash`
    Hash,
    /// `stream`
    Stream,
    /// A module type (`ReJSON-RL`, …) or anything else.
    Other,
}

impl KeyType {
    /// From `TYPE`'s reply; `None` for `none` (the key is gone).
    pub fn parse(reply: &[u8]) -> Option<KeyType> {
        Some(match reply {
            b"none" => return None,
            b"string" => KeyType::String,
            b"list" => KeyType::List,
            b"set" => KeyType::Set,
            b"zset" => KeyType::Zset,
            b"hash" => KeyType::Hash,
            b"stream" => KeyType::Stream,
            _ => KeyType::Other,
        })
    }

    /// The name `TYPE` uses (`other` for module types).
    pub fn as_str(self) -> &'static str {
        TYPE_NAMES[self as usize]
    }
}

/// What the survey learnt about one key. `ty`/`pttl_ms` are `None` when types were not
/// asked for (`--no-types`); `bytes` is `Some` only for sampled keys.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyFacts {
    /// `TYPE`.
    pub ty: Option<KeyType>,
    /// `PTTL` in ms: `Some(-1)` no expiry, `Some(n >= 0)` expires in n ms.
    pub pttl_ms: Option<i64>,
    /// `MEMORY USAGE key SAMPLES 0`, for a sampled key.
    pub bytes: Option<u64>,
}

/// Tree shape and size limits.
#[derive(Clone, Debug)]
pub struct TreeOptions {
    /// The prefix every key has (the root); may be empty.
    pub root: Vec<u8>,
    /// The delimiter that ends a level (`:`); never empty.
    pub delimiter: Vec<u8>,
    /// Levels below the root.
    pub depth: usize,
    /// The biggest sampled keys kept per node.
    pub top: usize,
    /// At most this many named children per node; the rest fold into `(other)`.
    pub max_children: usize,
    /// At most this many nodes in the whole tree (the root included).
    pub max_nodes: usize,
}

/// Counts of keys per type, indexed like [`TYPE_NAMES`].
pub type TypeCounts = [u64; 7];

#[derive(Debug, Default)]
struct Node {
    /// The full prefix (the root's prefix for the root; the parent's for `(other)`).
    prefix: Vec<u8>,
    depth: usize,
    other: bool,
    keys: u64,
    /// Keys that end at this node: no further delimiter, or the depth limit reached
    /// (always all of them for `(other)`).
    direct_keys: u64,
    direct_sampled: u64,
    direct_sampled_bytes: u64,
    sampled: u64,
    /// Keys whose rest after this node's prefix begins with `{` (a hash tag).
    tagged: u64,
    types: TypeCounts,
    no_ttl: u64,
    expiring: u64,
    soonest_pttl_ms: Option<i64>,
    biggest: BinaryHeap<Reverse<(u64, Vec<u8>)>>,
    /// A direct key not yet sampled, and its master, kept while `direct_sampled == 0`.
    candidate: Option<(usize, Vec<u8>)>,
    children: HashMap<Vec<u8>, usize>,
    other_child: Option<usize>,
}

/// The survey's prefix tree, fed one key at a time. See the module documentation.
#[derive(Debug)]
pub struct Tree {
    opts: TreeOptions,
    nodes: Vec<Node>,
    vanished: u64,
    /// Stored key names of biggest keys are cut to this many bytes (memory stays bounded
    /// even when keys are huge).
    key_cap: usize,
}

/// Longest key name kept in a node's biggest-keys list; longer ones are cut (and shown
/// with `…`).
pub const MAX_KEPT_KEY_LEN: usize = 1024;

impl Tree {
    /// An empty tree with only its root.
    pub fn new(opts: TreeOptions) -> Tree {
        assert!(!opts.delimiter.is_empty(), "the delimiter is never empty (checked by the caller)");
        let root = Node { prefix: opts.root.clone(), ..Node::default() };
        Tree { opts, nodes: vec![root], vanished: 0, key_cap: MAX_KEPT_KEY_LEN }
    }

    /// The options the tree was made with.
    pub fn options(&self) -> &TreeOptions {
        &self.opts
    }

    /// Nodes in the tree now (the root included).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Counts a key that vanished between SCAN and TYPE (not added to the tree).
    pub fn add_vanished(&mut self) {
        self.vanished += 1;
    }

    /// Adds one key (which must start with the root prefix; others are ignored and
    /// `false` is returned). `master` names the server it came from, so a key kept for
    /// later sampling can be asked for there.
    pub fn add(&mut self, master: usize, key: &[u8], facts: KeyFacts) -> bool {
        if !key.starts_with(&self.opts.root) {
            return false;
        }
        let mut at = 0usize; // node index
        let mut pos = self.opts.root.len(); // bytes of the key consumed
        self.count(at, key, pos, facts);
        loop {
            let node_depth = self.nodes[at].depth;
            let next = if self.nodes[at].other || node_depth >= self.opts.depth {
                None
            } else {
                find(&key[pos..], &self.opts.delimiter).map(|i| pos + i + self.opts.delimiter.len())
            };
            let Some(end) = next else {
                let n = &mut self.nodes[at];
                n.direct_keys += 1;
                if let Some(b) = facts.bytes {
                    n.direct_sampled += 1;
                    n.direct_sampled_bytes += b;
                    n.candidate = None;
                } else if n.direct_sampled == 0 && n.candidate.is_none() {
                    n.candidate = Some((master, key.to_vec()));
                }
                return true;
            };
            let child = match self.nodes[at].children.get(&key[pos..end]) {
                Some(&c) => c,
                None => self.new_child(at, &key[..end], pos),
            };
            at = child;
            if !self.nodes[at].other {
                pos = end;
            }
            self.count(at, key, pos, facts);
        }
    }

    fn new_child(&mut self, parent: usize, prefix: &[u8], seg_start: usize) -> usize {
        let depth = self.nodes[parent].depth + 1;
        let room = self.nodes[parent].children.len() < self.opts.max_children && self.nodes.len() < self.opts.max_nodes;
        if room {
            let idx = self.nodes.len();
            self.nodes.push(Node { prefix: prefix.to_vec(), depth, ..Node::default() });
            self.nodes[parent].children.insert(prefix[seg_start..].to_vec(), idx);
            return idx;
        }
        if let Some(o) = self.nodes[parent].other_child {
            return o;
        }
        // `(other)` may exceed max_nodes by one per node that folds: at most doubling,
        // still independent of the number of keys.
        let idx = self.nodes.len();
        let prefix = self.nodes[parent].prefix.clone();
        self.nodes.push(Node { prefix, depth, other: true, ..Node::default() });
        self.nodes[parent].other_child = Some(idx);
        idx
    }

    fn count(&mut self, at: usize, key: &[u8], pos: usize, facts: KeyFacts) {
        let n = &mut self.nodes[at];
        n.keys += 1;
        if !n.other && key.get(pos) == Some(&b'{') {
            n.tagged += 1;
        }
        if let Some(t) = facts.ty {
            n.types[t as usize] += 1;
        }
        match facts.pttl_ms {
            Some(ms) if ms >= 0 => {
                n.expiring += 1;
                n.soonest_pttl_ms = Some(n.soonest_pttl_ms.map_or(ms, |s| s.min(ms)));
            }
            Some(_) => n.no_ttl += 1,
            None => {}
        }
        if let Some(b) = facts.bytes {
            n.sampled += 1;
            self.offer_biggest(at, key, b);
        }
    }

    /// Keys waiting to be sampled: one per node that has direct keys of which none was
    /// sampled, with the master it came from. Sampling them (and passing the results to
    /// [`Tree::add_late_sample`]) gives every node a byte estimate.
    pub fn unsampled_candidates(&self) -> Vec<(usize, Vec<u8>)> {
        self.nodes.iter().filter_map(|n| n.candidate.clone()).collect()
    }

    /// Records `MEMORY USAGE` of a key from [`Tree::unsampled_candidates`] (`None`: the key
    /// is gone by now). It counts as a sample of every node on the key's path.
    pub fn add_late_sample(&mut self, key: &[u8], bytes: Option<u64>) {
        let path = self.path_of(key);
        let Some(&last) = path.last() else { return };
        if self.nodes[last].candidate.as_ref().is_none_or(|(_, k)| k != key) {
            return;
        }
        self.nodes[last].candidate = None;
        let Some(b) = bytes else { return };
        self.nodes[last].direct_sampled += 1;
        self.nodes[last].direct_sampled_bytes += b;
        for &i in &path {
            self.nodes[i].sampled += 1;
            self.offer_biggest(i, key, b);
        }
    }

    /// Offers a sampled key to a node's bounded min-heap of biggest keys.
    fn offer_biggest(&mut self, at: usize, key: &[u8], b: u64) {
        let (top, cap) = (self.opts.top, self.key_cap);
        let heap = &mut self.nodes[at].biggest;
        if top == 0 {
            return;
        }
        if heap.len() >= top {
            if heap.peek().is_some_and(|Reverse((min, _))| b <= *min) {
                return;
            }
            heap.pop();
        }
        heap.push(Reverse((b, key[..key.len().min(cap)].to_vec())));
    }

    /// The nodes a key already in the tree was counted in, root first (without changing
    /// anything).
    fn path_of(&self, key: &[u8]) -> Vec<usize> {
        if !key.starts_with(&self.opts.root) {
            return Vec::new();
        }
        let mut path = vec![0];
        let (mut at, mut pos) = (0usize, self.opts.root.len());
        loop {
            let n = &self.nodes[at];
            if n.other || n.depth >= self.opts.depth {
                return path;
            }
            let Some(i) = find(&key[pos..], &self.opts.delimiter) else { return path };
            let end = pos + i + self.opts.delimiter.len();
            match n.children.get(&key[pos..end]).copied().or(n.other_child) {
                Some(c) => {
                    if !self.nodes[c].other {
                        pos = end;
                    }
                    at = c;
                    path.push(c);
                }
                None => return path,
            }
        }
    }

    /// The finished tree as a report node (the root), children sorted by estimated bytes
    /// then keys, biggest first, `(other)` last.
    pub fn finish(&self) -> TreeSummary {
        let root = self.report(0);
        let mut folded_keys = 0;
        let mut folded_nodes = 0;
        for n in &self.nodes {
            if n.other {
                folded_keys += n.keys;
                folded_nodes += 1;
            }
        }
        TreeSummary { root, vanished: self.vanished, folded_keys, folded_nodes, nodes: self.nodes.len() }
    }

    fn report(&self, i: usize) -> SurveyNode {
        let n = &self.nodes[i];
        let mut children: Vec<SurveyNode> = n.children.values().map(|&c| self.report(c)).collect();
        children.sort_by(|a, b| {
            (b.bytes, b.keys).cmp(&(a.bytes, a.keys)).then_with(|| a.prefix_bytes.cmp(&b.prefix_bytes))
        });
        if let Some(o) = n.other_child {
            children.push(self.report(o));
        }
        let direct_est = if n.direct_sampled > 0 {
            // Scale the direct keys' sample up to all direct keys (exact when all sampled).
            ((n.direct_sampled_bytes as u128 * n.direct_keys as u128) / n.direct_sampled as u128) as u64
        } else {
            0
        };
        let bytes = direct_est + children.iter().map(|c| c.bytes).sum::<u64>();
        let mut biggest: Vec<BigKey> = n
            .biggest
            .iter()
            .map(|Reverse((b, k))| BigKey { key: display_key(k), bytes: *b, key_bytes: k.clone() })
            .collect();
        biggest.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.key_bytes.cmp(&b.key_bytes)));
        let types = if n.types.iter().any(|&c| c > 0) {
            Some(TYPE_NAMES.iter().zip(n.types).filter(|(_, c)| *c > 0).map(|(t, c)| (t.to_string(), c)).collect())
        } else {
            None
        };
        let ttl = (n.no_ttl + n.expiring > 0).then_some(TtlSpread {
            none: n.no_ttl,
            expiring: n.expiring,
            soonest_ms: n.soonest_pttl_ms,
        });
        SurveyNode {
            prefix: if n.other { "(other)".into() } else { display_key(&n.prefix) },
            prefix_bytes: n.prefix.clone(),
            other: n.other,
            depth: n.depth,
            keys: n.keys,
            direct_keys: n.direct_keys,
            tagged_keys: n.tagged,
            bytes,
            sampled_keys: n.sampled,
            types,
            type_counts: n.types,
            ttl,
            biggest,
            children,
        }
    }
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() == 1 {
        return hay.iter().position(|&b| b == needle[0]);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The finished tree.
#[derive(Clone, Debug)]
pub struct TreeSummary {
    /// The root node (the survey's prefix).
    pub root: SurveyNode,
    /// Keys SCAN returned that were gone before `TYPE` (not in the tree).
    pub vanished: u64,
    /// Keys counted in `(other)` nodes because their prefix found no room.
    pub folded_keys: u64,
    /// How many `(other)` nodes there are.
    pub folded_nodes: u64,
    /// Nodes in the tree, `(other)` nodes and the root included.
    pub nodes: usize,
}

/// How many keys expire, and the soonest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TtlSpread {
    /// Keys without an expiry.
    pub none: u64,
    /// Keys with an expiry.
    pub expiring: u64,
    /// The smallest `PTTL` seen (ms until expiry, when seen), if any key expires.
    pub soonest_ms: Option<i64>,
}

/// One of the biggest sampled keys of a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BigKey {
    /// The key, escaped for display ([`display_key`]); keys longer than
    /// [`MAX_KEPT_KEY_LEN`] bytes are cut there.
    pub key: String,
    /// `MEMORY USAGE key SAMPLES 0`.
    pub bytes: u64,
    /// The key's bytes (as kept).
    #[serde(skip)]
    pub key_bytes: Vec<u8>,
}

/// One node of the survey's prefix tree, as reported (see `docs/survey.md`).
#[derive(Clone, Debug, Serialize)]
pub struct SurveyNode {
    /// The prefix, escaped for display; `(other)` for a folded node.
    pub prefix: String,
    /// The prefix bytes (the parent's prefix for `(other)`).
    #[serde(skip)]
    pub prefix_bytes: Vec<u8>,
    /// True for the node that holds the keys of the prefixes beyond the caps.
    pub other: bool,
    /// Levels below the root (the root is 0).
    pub depth: usize,
    /// Keys under this prefix (exact for the keys the survey saw).
    pub keys: u64,
    /// Of those, keys in no child: no further delimiter, or at the depth limit.
    pub direct_keys: u64,
    /// Keys whose name continues with `{` right after this prefix (a hash tag).
    pub tagged_keys: u64,
    /// Estimated bytes (`MEMORY USAGE`): per node, the direct keys' sample scaled to all
    /// direct keys, plus the children's estimates. Exact when every key was sampled.
    pub bytes: u64,
    /// Keys under this prefix whose `MEMORY USAGE` was measured.
    pub sampled_keys: u64,
    /// Keys per type (only types that occur); absent with `--no-types`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub types: Option<std::collections::BTreeMap<String, u64>>,
    /// Keys per type, indexed like [`TYPE_NAMES`].
    #[serde(skip)]
    pub type_counts: TypeCounts,
    /// Expiry spread; absent with `--no-types`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<TtlSpread>,
    /// The biggest sampled keys, biggest first.
    pub biggest: Vec<BigKey>,
    /// Child prefixes, biggest first; `(other)` last.
    pub children: Vec<SurveyNode>,
}

impl SurveyNode {
    /// The child with this exact prefix (bytes), if any.
    pub fn child(&self, prefix: &[u8]) -> Option<&SurveyNode> {
        self.children.iter().find(|c| !c.other && c.prefix_bytes == prefix)
    }

    /// The descendant (or self) with this exact prefix (bytes).
    pub fn find(&self, prefix: &[u8]) -> Option<&SurveyNode> {
        if !self.other && self.prefix_bytes == prefix {
            return Some(self);
        }
        self.children.iter().filter(|c| prefix.starts_with(&c.prefix_bytes) && !c.other).find_map(|c| c.find(prefix))
    }

    /// The `(other)` child, if prefixes were folded here.
    pub fn other_child(&self) -> Option<&SurveyNode> {
        self.children.iter().find(|c| c.other)
    }

    /// The most common type and its count.
    pub fn dominant_type(&self) -> Option<(KeyType, u64)> {
        const ALL: [KeyType; 7] = [
            KeyType::String,
            KeyType::List,
            KeyType::Set,
            KeyType::Zset,
            KeyType::Hash,
            KeyType::Stream,
            KeyType::Other,
        ];
        ALL.iter().map(|&t| (t, self.type_counts[t as usize])).filter(|(_, c)| *c > 0).max_by_key(|(_, c)| *c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(depth: usize, max_children: usize) -> TreeOptions {
        TreeOptions { root: Vec::new(), delimiter: b":".to_vec(), depth, top: 2, max_children, max_nodes: 1000 }
    }

    fn typed(ty: KeyType, pttl: i64, bytes: Option<u64>) -> KeyFacts {
        KeyFacts { ty: Some(ty), pttl_ms: Some(pttl), bytes }
    }

    #[test]
    fn counts_every_level_exactly_and_stops_at_the_depth() {
        let mut t = Tree::new(opts(2, 100));
        for k in ["a:b:1", "a:b:2", "a:c:1", "x", "a:b:c:d:e", "a:", "b:z"] {
            assert!(t.add(0, k.as_bytes(), typed(KeyType::Hash, -1, None)));
        }
        let root = t.finish().root;
        assert_eq!((root.keys, root.direct_keys), (7, 1));
        let a = root.child(b"a:").unwrap();
        assert_eq!((a.keys, a.direct_keys, a.depth), (5, 1, 1));
        let ab = a.child(b"a:b:").unwrap();
        // depth 2 is the limit: a:b:c:d:e counts here, as a direct key.
        assert_eq!((ab.keys, ab.direct_keys, ab.children.len()), (3, 3, 0));
        assert_eq!(a.child(b"a:c:").unwrap().keys, 1);
        assert_eq!(root.child(b"b:").unwrap().keys, 1);
        assert_eq!(root.children.len(), 2);
        assert_eq!(root.find(b"a:b:").unwrap().keys, 3);
    }

    #[test]
    fn caps_fold_late_prefixes_into_other_and_keep_named_nodes_exact() {
        let mut t = Tree::new(opts(1, 2));
        for k in ["p1:a", "p2:a", "p3:a", "p1:b", "p4:a", "p3:b", "p2:b", "p1:c"] {
            t.add(0, k.as_bytes(), KeyFacts::default());
        }
        let s = t.finish();
        let root = &s.root;
        assert_eq!(root.child(b"p1:").unwrap().keys, 3);
        assert_eq!(root.child(b"p2:").unwrap().keys, 2);
        assert!(root.child(b"p3:").is_none());
        let other = root.other_child().unwrap();
        assert_eq!((other.keys, other.prefix.as_str()), (3, "(other)"));
        assert_eq!(root.children.last().map(|c| c.other), Some(true));
        assert_eq!((s.folded_keys, s.folded_nodes, root.keys), (3, 1, 8));
    }

    #[test]
    fn the_node_cap_bounds_the_tree_whatever_the_number_of_keys() {
        let mut t = Tree::new(TreeOptions { max_nodes: 50, ..opts(3, 1000) });
        for i in 0..100_000u32 {
            t.add(0, format!("{}:{}:{}:x", i % 997, i % 13, i).as_bytes(), KeyFacts::default());
        }
        // 50 named nodes, plus at most one (other) per named node.
        assert!(t.node_count() <= 100, "{}", t.node_count());
        let s = t.finish();
        assert_eq!(s.root.keys, 100_000);
        let named: u64 = s.root.children.iter().map(|c| c.keys).sum();
        assert_eq!(named, 100_000);
    }

    #[test]
    fn biggest_keys_are_the_top_sampled_ones_and_bytes_scale_by_node() {
        let mut t = Tree::new(opts(1, 100));
        t.add(0, b"a:1", typed(KeyType::String, -1, Some(100)));
        t.add(0, b"a:2", typed(KeyType::String, -1, Some(300)));
        t.add(0, b"a:3", typed(KeyType::String, 5000, Some(200)));
        t.add(0, b"a:4", typed(KeyType::Hash, 1000, None));
        t.add(0, b"b:1", typed(KeyType::String, -1, Some(10)));
        t.add(0, b"b:2", typed(KeyType::String, -1, None));
        let root = t.finish().root;
        let a = root.child(b"a:").unwrap();
        assert_eq!(
            a.biggest.iter().map(|b| (b.key.as_str(), b.bytes)).collect::<Vec<_>>(),
            [("a:2", 300), ("a:3", 200)]
        );
        // 600 bytes over 3 sampled of 4 keys → 800.
        assert_eq!((a.bytes, a.sampled_keys), (800, 3));
        assert_eq!(root.child(b"b:").unwrap().bytes, 20);
        assert_eq!(root.bytes, 820);
        assert_eq!(a.ttl, Some(TtlSpread { none: 2, expiring: 2, soonest_ms: Some(1000) }));
        assert_eq!(a.types.as_ref().unwrap().get("string"), Some(&3));
        assert_eq!(a.types.as_ref().unwrap().get("hash"), Some(&1));
        // Sorted by bytes: a before b.
        assert_eq!(root.children[0].prefix, "a:");
    }

    #[test]
    fn late_samples_give_every_node_an_estimate() {
        let mut t = Tree::new(opts(2, 100));
        t.add(0, b"a:b:1", KeyFacts::default());
        t.add(0, b"a:b:2", KeyFacts::default());
        t.add(1, b"c:1", KeyFacts { bytes: Some(50), ..KeyFacts::default() });
        let c = t.unsampled_candidates();
        assert_eq!(c, vec![(0, b"a:b:1".to_vec())]);
        t.add_late_sample(b"a:b:1", Some(70));
        assert!(t.unsampled_candidates().is_empty());
        let root = t.finish().root;
        assert_eq!(root.find(b"a:b:").unwrap().bytes, 140);
        assert_eq!(root.find(b"a:").unwrap().sampled_keys, 1);
        assert_eq!(root.bytes, 190);
    }

    #[test]
    fn binary_keys_and_multibyte_delimiters() {
        let mut t = Tree::new(TreeOptions { delimiter: b"::".to_vec(), root: b"\x00p".to_vec(), ..opts(2, 100) });
        assert!(!t.add(0, b"other", KeyFacts::default()));
        t.add(0, b"\x00p\xff::a:b", KeyFacts::default());
        t.add(0, b"\x00p\xff::\n::", KeyFacts::default());
        t.add(0, b"\x00p{x}::y", KeyFacts::default());
        let root = t.finish().root;
        assert_eq!((root.keys, root.tagged_keys, root.prefix.as_str()), (3, 1, "\"\\x00p\""));
        let ff = root.child(b"\x00p\xff::").unwrap();
        assert_eq!((ff.keys, ff.direct_keys), (2, 1));
        assert_eq!(ff.prefix, "\"\\x00p\\xff::\"");
        assert_eq!(ff.child(b"\x00p\xff::\n::").unwrap().keys, 1);
    }
}
