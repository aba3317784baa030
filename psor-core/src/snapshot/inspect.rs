//! Inspect: what a snapshot holds, offline (no server): header, totals, per type, per key
//! prefix, expiries and RDB versions. Reading the records for the per-prefix table checks
//! every checksum on the way, so a file that inspects cleanly will import cleanly.

use std::collections::{BTreeMap, HashMap};
use std::io::BufReader;
use std::path::PathBuf;

use psor_formats::{Lookup, Selection, SnapshotReader};

use super::{format_utc_ms, now_ms, per_kind, Error, PerKind, Result};
use crate::keys::display_key;

/// How to group keys.
#[derive(Clone, Debug)]
pub struct InspectOptions {
    /// The file.
    pub path: PathBuf,
    /// Group keys by their first `depth` `:`-separated segments (a key with fewer `:` is
    /// grouped by everything up to its last `:`; one without `:` under the empty prefix).
    pub depth: usize,
    /// Show the `top` groups with the most payload bytes.
    pub top: usize,
}

/// Distinct groups kept; keys beyond are summed in [`Inspection::other_groups`] so that memory
/// stays bounded whatever the keys look like.
pub const MAX_GROUPS: usize = 1_000_000;

/// One key-prefix group.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PrefixStats {
    /// The prefix, escaped like keys are.
    pub prefix: String,
    /// Keys in the group.
    pub keys: u64,
    /// Their key-name bytes.
    pub key_bytes: u64,
    /// Their `DUMP` payload bytes.
    pub payload_bytes: u64,
}

/// A selection as JSON: `{"kind":"prefix","prefix":…}` or `{"kind":"pac","pac":…,"version":…}`.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SelectionInfo {
    /// Keys under a prefix (escaped).
    Prefix {
        /// The prefix.
        prefix: String,
    },
    /// A PAC at a version.
    Pac {
        /// PAC name.
        pac: String,
        /// PAC version.
        version: String,
    },
}

/// What a snapshot holds.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Inspection {
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub file_bytes: u64,
    /// `major.minor` of the format.
    pub format_version: String,
    /// When the export started (Unix ms).
    pub created_at_ms: i64,
    /// The same, as UTC text.
    pub created: String,
    /// The source server's version, as the header holds it (`7.0.15` for Redis, `Valkey 9.1.2`).
    pub server_version: String,
    /// The source server's product and version, for a report: `Redis 7.0.15`, `Valkey 9.1.2`.
    pub server: String,
    /// The PSOR spec it came from (no secrets).
    pub spec: String,
    /// Which keys were taken.
    pub selection: SelectionInfo,
    /// Frames in the file.
    pub frames: usize,
    /// Keys.
    pub keys: u64,
    /// Key-name bytes.
    pub key_bytes: u64,
    /// `DUMP` payload bytes.
    pub payload_bytes: u64,
    /// Per type.
    pub per_type: PerKind,
    /// Keys with an expiry.
    pub with_ttl: u64,
    /// Keys whose expiry is already past now (an import skips them).
    pub expired_now: u64,
    /// Keys per payload RDB version.
    pub rdb_versions: BTreeMap<u16, u64>,
    /// The grouping depth.
    pub depth: usize,
    /// Distinct groups.
    pub groups: u64,
    /// The top groups by payload bytes (then by key count, then by name).
    pub prefixes: Vec<PrefixStats>,
    /// Keys that did not fit in [`MAX_GROUPS`] groups.
    pub other_groups: u64,
}

/// The group of `key`: up to and including its `depth`-th `:` (or its last `:` when it has
/// fewer; empty when it has none).
pub fn group_of(key: &[u8], depth: usize) -> &[u8] {
    let mut end = 0;
    for (seen, (i, _)) in key.iter().enumerate().filter(|(_, &b)| b == b':').enumerate() {
        if seen >= depth {
            break;
        }
        end = i + 1;
    }
    &key[..end]
}

/// Reads and checks the whole file; no server involved.
pub fn inspect(opts: &InspectOptions) -> Result<Inspection> {
    let file_err = |source| Error::File { path: opts.path.clone(), source };
    let file = std::fs::File::open(&opts.path).map_err(|source| Error::Open { path: opts.path.clone(), source })?;
    let mut reader = SnapshotReader::open(BufReader::with_capacity(1 << 20, file)).map_err(file_err)?;
    let header = reader.header().clone();
    let now = now_ms();
    let (mut with_ttl, mut expired_now, mut other) = (0u64, 0u64, 0u64);
    let mut rdb_versions = BTreeMap::new();
    let mut groups: HashMap<Vec<u8>, (u64, u64, u64)> = HashMap::new();
    let totals = reader
        .for_each_record(|r| {
            if let Some(t) = r.expire_at_ms {
                with_ttl += 1;
                expired_now += u64::from(t <= now);
            }
            *rdb_versions.entry(r.rdb_version).or_insert(0) += 1;
            let g = group_of(r.key, opts.depth);
            let add = |e: &mut (u64, u64, u64)| {
                e.0 += 1;
                e.1 += r.key.len() as u64;
                e.2 += r.payload.len() as u64;
            };
            if let Some(e) = groups.get_mut(g) {
                add(e);
            } else if groups.len() < MAX_GROUPS {
                add(groups.entry(g.to_vec()).or_default());
            } else {
                other += 1;
            }
        })
        .map_err(file_err)?;
    let group_count = groups.len() as u64;
    let mut list: Vec<(Vec<u8>, (u64, u64, u64))> = groups.into_iter().collect();
    list.sort_by(|a, b| b.1 .2.cmp(&a.1 .2).then(b.1 .0.cmp(&a.1 .0)).then(a.0.cmp(&b.0)));
    list.truncate(opts.top);
    let selection = match &header.source.selection {
        Selection::Prefix(p) => SelectionInfo::Prefix { prefix: display_key(p) },
        Selection::PacVersion { pac, version } => SelectionInfo::Pac { pac: pac.clone(), version: version.clone() },
    };
    Ok(Inspection {
        path: opts.path.clone(),
        file_bytes: reader.file_len(),
        format_version: header.version.to_string(),
        created_at_ms: header.created_at_ms,
        created: format_utc_ms(header.created_at_ms),
        server_version: header.source.server_version.clone(),
        server: crate::connect::describe_version(&header.source.server_version),
        spec: header.source.spec.clone(),
        selection,
        frames: reader.footer().frames.len(),
        keys: totals.keys,
        key_bytes: totals.key_bytes,
        payload_bytes: totals.payload_bytes,
        per_type: per_kind(&totals),
        with_ttl,
        expired_now,
        rdb_versions,
        depth: opts.depth,
        groups: group_count,
        prefixes: list
            .into_iter()
            .map(|(p, (keys, key_bytes, payload_bytes))| PrefixStats {
                prefix: display_key(&p),
                keys,
                key_bytes,
                payload_bytes,
            })
            .collect(),
        other_groups: other,
    })
}

/// One key looked up in a snapshot ([`lookup`]).
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeyLookup {
    /// The file.
    pub path: PathBuf,
    /// The key, escaped for display.
    pub key: String,
    /// The file is sorted by key (format 1.1 and later): found by a binary search over its
    /// frames. Otherwise every frame up to the key (all of them, for a key it lacks) was read.
    pub sorted: bool,
    /// Frames in the file.
    pub frames: usize,
    /// Frames decoded to find the key.
    pub frames_read: usize,
    /// The key's record, when the file holds it.
    pub record: Option<KeyRecord>,
}

/// What a snapshot holds for one key.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeyRecord {
    /// Redis type.
    pub kind: &'static str,
    /// Absolute expiry, Unix ms.
    pub expire_at_ms: Option<i64>,
    /// The expiry as UTC text.
    pub expires: Option<String>,
    /// RDB version of the `DUMP` payload.
    pub rdb_version: u16,
    /// `DUMP` payload bytes.
    pub payload_bytes: u64,
}

/// Finds one key in the snapshot at `path` without decoding the whole file when it is sorted;
/// no server involved. Only the frames read are checked.
pub fn lookup(path: &std::path::Path, key: &[u8]) -> Result<KeyLookup> {
    let file_err = |source| Error::File { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(|source| Error::Open { path: path.to_path_buf(), source })?;
    let mut reader = SnapshotReader::open(BufReader::with_capacity(1 << 16, file)).map_err(file_err)?;
    let sorted = reader.header().is_sorted();
    let frames = reader.footer().frames.len();
    let (found, how) = reader.find(key).map_err(file_err)?;
    let frames_read = match how {
        Lookup::Indexed { frames } | Lookup::Scanned { frames } => frames,
    };
    Ok(KeyLookup {
        path: path.to_path_buf(),
        key: display_key(key),
        sorted,
        frames,
        frames_read,
        record: found.map(|r| KeyRecord {
            kind: r.kind.as_str(),
            expire_at_ms: r.expire_at_ms,
            expires: r.expire_at_ms.map(format_utc_ms),
            rdb_version: r.rdb_version,
            payload_bytes: r.payload.len() as u64,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::group_of;

    #[test]
    fn groups_by_colon_segments() {
        assert_eq!(group_of(b"a:b:c:d", 2), b"a:b:");
        assert_eq!(group_of(b"a:b:c:d", 1), b"a:");
        assert_eq!(group_of(b"a:b", 2), b"a:");
        assert_eq!(group_of(b"ab", 2), b"");
        assert_eq!(group_of(b"a:b:", 2), b"a:b:");
        assert_eq!(group_of(b"a:b:c", 0), b"");
        assert_eq!(group_of(b"::x", 2), b"::");
    }
}
