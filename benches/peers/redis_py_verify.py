#!/usr/bin/env python3
"""The redis-py peer for `psor verify`: the compare loop people write by hand today.

Pass 1: SCAN MATCH prefix* COUNT batch on the source -> one pipeline of TYPE + PEXPIRETIME
per page on each side -> one pipeline of the by-type read (GET, HGETALL, SMEMBERS,
ZRANGE WITHSCORES, LRANGE, XRANGE) per page on each side, compared (hashes and sets as
sorted items). Pass 2: SCAN the target's prefix -> EXISTS of each name on the source.
Prints one JSON object: {"matched": n, "same": n, "differ": n, "extra": n}.
Run by psor-benches (target/bench-venv) with `pip install redis`.
"""
import argparse
import json
import sys

import redis

READ = {
    b"string": lambda p, k: p.get(k),
    b"hash": lambda p, k: p.hgetall(k),
    b"set": lambda p, k: p.smembers(k),
    b"zset": lambda p, k: p.zrange(k, 0, -1, withscores=True),
    b"list": lambda p, k: p.lrange(k, 0, -1),
    b"stream": lambda p, k: p.xrange(k),
}


def canon(kind, v):
    if kind == b"hash":
        return sorted(v.items())
    if kind == b"set":
        return sorted(v)
    return v


def glob(pre):
    return b"".join(b"\\" + bytes([c]) if c in b"*?[]\\" else bytes([c]) for c in pre) + b"*"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src-port", type=int, required=True)
    ap.add_argument("--dst-port", type=int, required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--to-prefix", required=True)
    ap.add_argument("--batch", type=int, default=1000)
    a = ap.parse_args()
    src = redis.Redis(host="127.0.0.1", port=a.src_port)
    dst = redis.Redis(host="127.0.0.1", port=a.dst_port)
    pre, to = a.prefix.encode(), a.to_prefix.encode()

    matched = same = differ = extra = 0
    cursor = 0
    while True:
        cursor, keys = src.scan(cursor=cursor, match=glob(pre), count=a.batch)
        if keys:
            matched += len(keys)
            names = [to + k[len(pre):] for k in keys]
            meta = []
            for conn, ks in ((src, keys), (dst, names)):
                p = conn.pipeline(transaction=False)
                for k in ks:
                    p.type(k)
                    p.execute_command("PEXPIRETIME", k)
                meta.append(p.execute())
            vals = []
            for side, (conn, ks) in enumerate(((src, keys), (dst, names))):
                p = conn.pipeline(transaction=False)
                for i, k in enumerate(ks):
                    kind = meta[0][2 * i]
                    READ.get(kind, lambda p, k: p.exists(k))(p, k)
                vals.append(p.execute(raise_on_error=False))
            for i in range(len(keys)):
                kind = meta[0][2 * i]
                ok = (meta[0][2 * i] == meta[1][2 * i] and meta[0][2 * i + 1] == meta[1][2 * i + 1]
                      and canon(kind, vals[0][i]) == canon(kind, vals[1][i]))
                same += ok
                differ += not ok
        if cursor == 0:
            break
    cursor = 0
    while True:
        cursor, keys = dst.scan(cursor=cursor, match=glob(to), count=a.batch)
        if keys:
            p = src.pipeline(transaction=False)
            for k in keys:
                p.exists(pre + k[len(to):])
            extra += sum(1 for e in p.execute() if not e)
        if cursor == 0:
            break
    json.dump({"matched": matched, "same": same, "differ": differ, "extra": extra}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
