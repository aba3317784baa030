#!/usr/bin/env sh
# Makes sure redis-server and redis-cli are on PATH for psor's integration tests.
#
# Idempotent: does nothing but print versions when both are already installed. Otherwise
# installs Debian's redis-server and redis-tools packages (as root, or through sudo), and
# stops the Debian service the package starts on 6379: the tests run their own servers on
# free loopback ports and need nothing listening by default.
set -eu

have() { command -v "$1" >/dev/null 2>&1; }

if have redis-server && have redis-cli; then
    :
else
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=""
    elif have sudo; then
        SUDO="sudo"
    else
        echo "ensure-redis: redis-server/redis-cli missing and not root (no sudo) to install them" >&2
        exit 1
    fi
    if ! have apt-get; then
        echo "ensure-redis: no apt-get; install redis-server and redis-cli (Redis >= 7) yourself" >&2
        exit 1
    fi
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        redis-server redis-tools
    # Best effort: the package may have started (or enabled) a service on 6379.
    $SUDO service redis-server stop >/dev/null 2>&1 || true
    if have systemctl; then
        $SUDO systemctl stop redis-server >/dev/null 2>&1 || true
        $SUDO systemctl disable redis-server >/dev/null 2>&1 || true
    fi
fi

redis-server --version
redis-cli --version
