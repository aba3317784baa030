//! What a server is: its product (Redis, Valkey, psor's embedded store), its own version, and
//! the DUMP payload (RDB) versions it writes and reads.
//!
//! Valkey answers `INFO server` with `redis_version:7.2.4` (a fixed compatibility value) plus
//! `server_name:valkey` and `valkey_version:9.1.2`. Taking the first for the server's version
//! named a Valkey 9.1 "Redis 7.2.4" in every report and, worse, let psor believe that it reads
//! RDB versions up to 11 when it writes 80, so a Valkey site could not restore its own backup.
//! [`ServerInfo`] keeps both versions apart: the product's own for reports and payload
//! decisions, the Redis-compatible one for command availability (`PEXPIRETIME`, `COPY`).

use serde::Serialize;

use super::{info_field, ServerVersion};

/// Which server software answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Product {
    /// Redis (or anything that reports no other product).
    Redis,
    /// Valkey (`server_name:valkey`).
    Valkey,
    /// psor's own embedded store (`file:PATH`).
    Embedded,
}

impl Product {
    /// `"Redis"`, `"Valkey"`, `"psor embedded store"`.
    pub fn name(self) -> &'static str {
        match self {
            Product::Redis => "Redis",
            Product::Valkey => "Valkey",
            Product::Embedded => "psor embedded store",
        }
    }
}

/// A server's product and versions, from `INFO server`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ServerInfo {
    /// The product.
    pub product: Product,
    /// The product's own version (`valkey_version` on Valkey, `redis_version` on Redis).
    pub version: ServerVersion,
    /// The Redis version the server claims compatibility with (`redis_version`): what decides
    /// which commands exist.
    pub redis_version: ServerVersion,
    /// The newest DUMP payload version the server reads, where known (the embedded store:
    /// what its decoder reads).
    #[serde(rename = "max_rdb_version")]
    max_rdb: Option<u16>,
}

impl ServerInfo {
    /// Reads an `INFO server` reply; `None` without a parsable `redis_version`.
    pub fn from_info(info: &str) -> Option<ServerInfo> {
        let redis_version = info_field(info, "redis_version").and_then(ServerVersion::parse)?;
        let valkey = info_field(info, "server_name").is_some_and(|n| n.eq_ignore_ascii_case("valkey"))
            || info_field(info, "valkey_version").is_some();
        let (product, version) = if valkey {
            (
                Product::Valkey,
                info_field(info, "valkey_version").and_then(ServerVersion::parse).unwrap_or(redis_version),
            )
        } else {
            (Product::Redis, redis_version)
        };
        let mut server = ServerInfo { product, version, redis_version, max_rdb: None };
        server.max_rdb = server.rdb_version();
        Some(server)
    }

    /// Redis `version` (for tests and tables).
    pub fn redis(version: ServerVersion) -> ServerInfo {
        ServerInfo {
            product: Product::Redis,
            version,
            redis_version: version,
            max_rdb: rdb_written(Product::Redis, version),
        }
    }

    /// Valkey `version` (claiming Redis 7.2.4, as every Valkey does).
    pub fn valkey(version: ServerVersion) -> ServerInfo {
        let redis_version = ServerVersion { major: 7, minor: 2, patch: 4 };
        ServerInfo { product: Product::Valkey, version, redis_version, max_rdb: rdb_written(Product::Valkey, version) }
    }

    /// psor's embedded store, whose decoder reads payloads up to `max_rdb`.
    pub fn embedded(redis_version: ServerVersion, max_rdb: u16) -> ServerInfo {
        ServerInfo { product: Product::Embedded, version: redis_version, redis_version, max_rdb: Some(max_rdb) }
    }

    /// The RDB version of the DUMP payloads the server writes, where this table knows the
    /// version (checked by DUMPing a string on the real builds: Redis 6.2 → 9, 7.0 → 10,
    /// Valkey 8.1 → 11, Valkey 9.1 → 80); `None` for a version newer than the table, and for
    /// the embedded store, which hands back payloads as they came (of any version it reads).
    pub fn rdb_version(&self) -> Option<u16> {
        match self.product {
            Product::Embedded => None,
            p => rdb_written(p, self.version),
        }
    }

    /// The newest DUMP payload version the server reads; `None` when unknown (a version newer
    /// than this table: then the server itself decides, and refuses what it cannot read).
    pub fn max_rdb_version(&self) -> Option<u16> {
        self.max_rdb
    }

    /// Whether the server reads DUMP payloads of RDB version `rdb`: `Some(false)` only when
    /// known not to. Valkey 9 reads its own 80 and Redis's up to 11, not Redis 7.4's 12 (the
    /// versions 12 to 79 are "foreign" to it).
    pub fn reads_rdb(&self, rdb: u16) -> Option<bool> {
        let max = self.max_rdb?;
        if self.product == Product::Valkey && max >= 80 && (12..80).contains(&rdb) {
            return Some(false);
        }
        Some(rdb <= max)
    }

    /// True where `PEXPIRETIME` exists (Redis 7.0+, every Valkey), so TTLs copy as absolute times.
    pub fn has_pexpiretime(&self) -> bool {
        self.redis_version.has_pexpiretime()
    }

    /// True where hash fields can carry their own expiry (`HEXPIRE`: Redis 7.4+, Valkey 9+).
    pub fn has_field_ttls(&self) -> bool {
        let v = (self.version.major, self.version.minor);
        match self.product {
            Product::Redis => v >= (7, 4),
            Product::Valkey => v >= (9, 0),
            Product::Embedded => false,
        }
    }

    /// The version as snapshot headers store it: the bare number for Redis (as psor always
    /// wrote it), `Valkey 9.1.2` for Valkey, so [`describe_version`] can tell them apart.
    pub fn header_version(&self) -> String {
        match self.product {
            Product::Redis | Product::Embedded => self.version.to_string(),
            Product::Valkey => self.to_string(),
        }
    }
}

impl std::fmt::Display for ServerInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.product {
            Product::Embedded => write!(f, "psor embedded store (Redis {} commands)", self.version),
            p => write!(f, "{} {}", p.name(), self.version),
        }
    }
}

/// A server version as a snapshot header holds it, for a report: `7.0.15` (psor before it
/// knew Valkey wrote only the number, always a Redis's) → `Redis 7.0.15`; `Valkey 9.1.2` as it is.
pub fn describe_version(header_version: &str) -> String {
    if header_version.starts_with(|c: char| c.is_ascii_digit()) {
        format!("Redis {header_version}")
    } else {
        header_version.to_owned()
    }
}

fn rdb_written(product: Product, v: ServerVersion) -> Option<u16> {
    Some(match (product, v.major, v.minor) {
        (Product::Redis, 4, _) => 8,
        (Product::Redis, 5 | 6, _) => 9,
        (Product::Redis, 7, 0) => 10,
        (Product::Redis, 7, 2) => 11,
        // Redis 8 still writes RDB 12.
        (Product::Redis, 7, 4..) | (Product::Redis, 8, _) => 12,
        (Product::Valkey, 7 | 8, _) => 11,
        (Product::Valkey, 9, _) => 80,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32, minor: u32, patch: u32) -> ServerVersion {
        ServerVersion { major, minor, patch }
    }

    #[test]
    fn valkey_is_told_from_its_redis_compatibility_version() {
        let info = "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:9.1.2\r\n";
        let s = ServerInfo::from_info(info).unwrap();
        assert_eq!((s.product, s.version, s.redis_version), (Product::Valkey, v(9, 1, 2), v(7, 2, 4)));
        assert_eq!(s.to_string(), "Valkey 9.1.2");
        assert_eq!(s.rdb_version(), Some(80));
        assert_eq!(s.reads_rdb(80), Some(true));
        assert_eq!(s.reads_rdb(10), Some(true));
        assert_eq!(s.reads_rdb(12), Some(false));
        assert!(s.has_pexpiretime() && s.has_field_ttls());
        assert_eq!(describe_version(&s.header_version()), "Valkey 9.1.2");

        let redis = ServerInfo::from_info("redis_version:7.0.15\r\nredis_mode:standalone\r\n").unwrap();
        assert_eq!((redis.product, redis.to_string()), (Product::Redis, "Redis 7.0.15".to_owned()));
        assert_eq!((redis.rdb_version(), redis.reads_rdb(11)), (Some(10), Some(false)));
        assert_eq!(describe_version(&redis.header_version()), "Redis 7.0.15");
        assert!(ServerInfo::from_info("server_name:valkey\r\n").is_none());
    }

    #[test]
    fn rdb_versions_by_product_and_version() {
        assert_eq!(ServerInfo::redis(v(6, 2, 14)).rdb_version(), Some(9));
        assert_eq!(ServerInfo::redis(v(7, 0, 15)).rdb_version(), Some(10));
        assert_eq!(ServerInfo::redis(v(7, 2, 4)).rdb_version(), Some(11));
        assert_eq!(ServerInfo::redis(v(7, 4, 0)).rdb_version(), Some(12));
        assert_eq!(ServerInfo::valkey(v(8, 1, 8)).rdb_version(), Some(11));
        assert_eq!(ServerInfo::valkey(v(9, 1, 2)).rdb_version(), Some(80));
        assert_eq!(ServerInfo::redis(v(9, 0, 0)).reads_rdb(99), None, "a newer server decides itself");
        assert!(!ServerInfo::redis(v(6, 2, 14)).has_pexpiretime());
        assert_eq!(ServerInfo::embedded(v(7, 0, 0), 12).reads_rdb(12), Some(true));
    }
}
