#!/usr/bin/env python3
"""The redis-py peer for `psor copy`: the loop people write by hand today.

SCAN MATCH prefix* COUNT batch -> one pipeline of DUMP + PEXPIRETIME per page ->
one pipeline of RESTORE newkey ttl payload ABSTTL per page. Prints one JSON object:
{"matched": n, "done": n, "vanished": n, "failed": n, "first_error": str|null}.
Run by psor-benches (target/bench-venv) with `pip install redis`.
"""
import argparse
import json
import sys

import redis


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
    pre = a.prefix.encode()
    to = a.to_prefix.encode()
    # glob-escape the prefix for MATCH
    pat = b"".join(b"\\" + bytes([c]) if c in b"*?[]\\" else bytes([c]) for c in pre) + b"*"

    matched = done = vanished = failed = 0
    first_error = None
    cursor = 0
    while True:
        cursor, keys = src.scan(cursor=cursor, match=pat, count=a.batch)
        if keys:
            matched += len(keys)
            p = src.pipeline(transaction=False)
            for k in keys:
                p.dump(k)
                p.execute_command("PEXPIRETIME", k)
            r = p.execute(raise_on_error=False)
            w = dst.pipeline(transaction=False)
            n = 0
            for i, k in enumerate(keys):
                payload, at = r[2 * i], r[2 * i + 1]
                if payload is None or at == -2:
                    vanished += 1
                    continue
                w.execute_command("RESTORE", to + k[len(pre):], at if at > 0 else 0,
                                  payload, "ABSTTL")
                n += 1
            if n:
                for res in w.execute(raise_on_error=False):
                    if isinstance(res, Exception):
                        failed += 1
                        first_error = first_error or str(res)
                    else:
                        done += 1
        if cursor == 0:
            break
    json.dump({"matched": matched, "done": done, "vanished": vanished,
               "failed": failed, "first_error": first_error}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
