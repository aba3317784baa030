#!/usr/bin/env bash
# Makes the Redis 8 DUMP payload fixtures in tests/fixtures/rdb/redis-8.0.2/ (run once; the
# fixtures are checked in, the tests never run this). What it did, exactly:
#   1. downloads Debian trixie's redis-server/redis-tools 8.0.2 .debs, and trixie's libc6,
#      libstdc++6 and libgcc-s1 (Redis 8.0.2 needs glibc 2.38; bookworm has 2.36), with apt
#      pointed at a scratch source list (nothing is installed);
#   2. extracts them with dpkg-deb -x and starts redis-server through trixie's own loader
#      (ld-linux-x86-64.so.2 --library-path …) on a unix socket in the scratch dir, no
#      persistence;
#   3. writes keys (below) and saves, per key, `NAME.hex` (the DUMP payload, hex) and
#      `NAME.json` (what the server itself replies for it: type, content, and for hashes each
#      field's absolute expiry from HPEXPIRETIME) — the expected decoded content.
# Hashes with field expirations: `hash_lpex` (few fields: RDB type 25, listpack-ex),
# `hash_meta` (200 fields: type 24, hashtable with metadata), `hash_lpex_persisted` (every
# TTL removed again with HPERSIST); the plain types as Redis 8 writes them (RDB 12 footers).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/tests/fixtures/rdb/redis-8.0.2"
scratch="$(mktemp -d)"
trap 'kill "$(cat "$scratch/pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$scratch"' EXIT
mkdir -p "$scratch/lists/partial" "$scratch/archives/partial" "$scratch/x" "$out"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    >"$scratch/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$scratch/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$scratch/lists" -o "Dir::Cache::Archives=$scratch/archives")
apt-get "${apt_opts[@]}" update >/dev/null
(cd "$scratch" && apt-get "${apt_opts[@]}" download redis-server=5:8.0.2-3+deb13u3 redis-tools=5:8.0.2-3+deb13u3 \
    libc6 libstdc++6 libgcc-s1 >/dev/null 2>&1)
for deb in "$scratch"/*.deb; do dpkg-deb -x "$deb" "$scratch/x"; done
lib="$scratch/x/usr/lib/x86_64-linux-gnu"
sock="$scratch/redis.sock"
"$lib/ld-linux-x86-64.so.2" --library-path "$lib:/lib/x86_64-linux-gnu" "$scratch/x/usr/bin/redis-server" \
    --port 0 --unixsocket "$sock" --save "" --appendonly no >"$scratch/log" 2>&1 &
echo $! >"$scratch/pid"
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done

python3 - "$sock" "$out" <<'PY'
import json, socket, sys

sock_path, out = sys.argv[1:]
s = socket.socket(socket.AF_UNIX)
s.connect(sock_path)
f = s.makefile("rb")

def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    s.sendall(b"".join(parts))
    return reply()

def reply():
    line = f.readline()[:-2]
    t, rest = line[:1], line[1:]
    if t == b"+": return rest.decode()
    if t == b"-": raise RuntimeError(rest.decode())
    if t == b":": return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0: return None
        data = f.read(n + 2)[:-2]
        return data
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [reply() for _ in range(n)]
    raise RuntimeError(line)

def text(b): return b.decode()

FAR = 4102444800000  # 2100-01-01, far in the future
# 200 fields: more than this, so hash_meta is a hashtable (RDB type 24).
cmd("CONFIG", "SET", "hash-max-listpack-entries", 64)
cmd("HSET", "hash_lpex", "a", 1, "b", 2, "c", 3)
cmd("HPEXPIREAT", "hash_lpex", FAR, "FIELDS", 1, "a")
cmd("HPEXPIREAT", "hash_lpex", FAR + 1000, "FIELDS", 1, "b")
cmd("HSET", "hash_meta", *sum(([f"f{i}", f"v{i}"] for i in range(200)), []))
for i in range(0, 200, 2):
    cmd("HPEXPIREAT", "hash_meta", FAR + i * 1000, "FIELDS", 1, f"f{i}")
cmd("HSET", "hash_lpex_persisted", "x", 1, "y", 2)
cmd("HPEXPIREAT", "hash_lpex_persisted", FAR, "FIELDS", 1, "x")
cmd("HPERSIST", "hash_lpex_persisted", "FIELDS", 1, "x")
cmd("SET", "string", "hello")
cmd("RPUSH", "list", "a", "b", 1)
cmd("SADD", "intset", 1, 2, 3)
cmd("SADD", "set", "a", "b")
cmd("ZADD", "zset", 1, "a", 2.5, "b")
cmd("HSET", "hash", "f", "v")
cmd("XADD", "stream", "1-1", "f", "v")

for key in ["hash_lpex", "hash_meta", "hash_lpex_persisted", "string", "list", "intset", "set", "zset", "hash", "stream"]:
    kind = cmd("TYPE", key)
    want = {"key": key, "type": kind, "encoding": text(cmd("OBJECT", "ENCODING", key))}
    if kind == "hash":
        flat = cmd("HGETALL", key)
        fields = {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat), 2)}
        want["value"] = dict(sorted(fields.items()))
        times = cmd("HPEXPIRETIME", key, "FIELDS", len(fields), *fields)
        want["field_expiry_ms"] = {f: t for f, t in sorted(zip(fields, times)) if t >= 0}
    elif kind == "string":
        want["value"] = text(cmd("GET", key))
    elif kind == "list":
        want["value"] = [text(x) for x in cmd("LRANGE", key, 0, -1)]
    elif kind == "set":
        want["value"] = sorted(text(x) for x in cmd("SMEMBERS", key))
    elif kind == "zset":
        flat = cmd("ZRANGE", key, 0, -1, "WITHSCORES")
        want["value"] = {text(flat[i]): float(flat[i + 1]) for i in range(0, len(flat), 2)}
    elif kind == "stream":
        want["value"] = [[text(e[0]), [text(x) for x in e[1]]] for e in cmd("XRANGE", key, "-", "+")]
    payload = cmd("DUMP", key)
    with open(f"{out}/{key}.hex", "w") as h:
        h.write(payload.hex() + "\n")
    with open(f"{out}/{key}.json", "w") as j:
        json.dump(want, j, indent=1)
        j.write("\n")
    print(f"{key}: RDB type {payload[0]}, {len(payload)} bytes, {want['encoding']}")
print("server:", [l for l in text(cmd("INFO", "server")).splitlines() if l.startswith("redis_version")][0])
PY
