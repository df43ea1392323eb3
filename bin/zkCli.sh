#!/usr/bin/env bash
# ZooKeeper's shell, as zkCli.sh: every argument goes to `ensemble cli`, e.g.
#   zkCli.sh -server 127.0.0.1:2181 ls /
# The binary is found as zkEnv.sh describes (ENSEMBLE_BIN, beside this script, a
# source checkout's target/release, then PATH).

_zk_self="${BASH_SOURCE[0]}"
if _zk_real="$(readlink -f -- "$_zk_self" 2>/dev/null)" && [ -n "$_zk_real" ]; then
  _zk_self="$_zk_real"
fi
ZOOBINDIR="$(cd -- "$(dirname -- "$_zk_self")" && pwd)"
unset _zk_self _zk_real

# shellcheck source=bin/zkEnv.sh
. "$ZOOBINDIR/zkEnv.sh"

find_ensemble || exit 1
exec "$ENSEMBLE" cli "$@"
