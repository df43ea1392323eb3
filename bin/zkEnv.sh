#!/usr/bin/env bash
# shellcheck disable=SC2034 # the variables set here are read by the scripts that source it
# Sourced by zkServer.sh and zkCli.sh: where the configuration, the logs and the
# ensemble binary are. The variables are ZooKeeper's, so that an environment
# written for ZooKeeper's scripts (systemd units, zookeeper-env.sh, runbooks)
# means the same here.
#
#   ZOOCFGDIR       the configuration directory; `--config <dir>` as the first two
#                   arguments sets it too. Default: conf/ beside this bin/ directory,
#                   else ../etc/zookeeper.
#   ZOOCFG          the config file's name inside ZOOCFGDIR (default zoo.cfg), or
#                   an absolute path.
#   ZOO_LOG_DIR     where `zkServer.sh start` writes the server's log (default
#                   logs/ beside this bin/ directory).
#   ENSEMBLE_BIN    the ensemble binary. Otherwise: ensemble beside this script,
#                   then ../target/release/ensemble (a source checkout), then
#                   ensemble on PATH.
#
# $ZOOCFGDIR/zookeeper-env.sh and $ZOOCFGDIR/java.env are sourced when present, as
# ZooKeeper's scripts do; settings for a JVM in them are harmless and unused.

# The directory of the calling script, symlinks followed, so that a link such
# as /usr/local/bin/zkServer.sh still finds conf/ and the binary.
if [ -z "${ZOOBINDIR:-}" ]; then
  _zk_self="${BASH_SOURCE[0]}"
  if _zk_real="$(readlink -f -- "$_zk_self" 2>/dev/null)" && [ -n "$_zk_real" ]; then
    _zk_self="$_zk_real"
  fi
  ZOOBINDIR="$(cd -- "$(dirname -- "$_zk_self")" && pwd)"
  unset _zk_self _zk_real
fi
ZOOKEEPER_PREFIX="$(cd -- "$ZOOBINDIR/.." && pwd)"

# `--config <dir>` before the command, as in ZooKeeper: it shifts the caller's
# arguments, since this file is sourced without arguments of its own.
if [ $# -gt 1 ] && [ "$1" = "--config" ]; then
  ZOOCFGDIR="$2"
  shift 2
fi

if [ -z "${ZOOCFGDIR:-}" ]; then
  if [ -e "$ZOOKEEPER_PREFIX/conf" ]; then
    ZOOCFGDIR="$ZOOKEEPER_PREFIX/conf"
  else
    ZOOCFGDIR="$ZOOKEEPER_PREFIX/etc/zookeeper"
  fi
fi

if [ -f "$ZOOCFGDIR/zookeeper-env.sh" ]; then
  # shellcheck disable=SC1091
  . "$ZOOCFGDIR/zookeeper-env.sh"
fi

# A name inside ZOOCFGDIR; an absolute path is taken as it is.
case "${ZOOCFG:-}" in
  /*) ;;
  *) ZOOCFG="$ZOOCFGDIR/${ZOOCFG:-zoo.cfg}" ;;
esac

if [ -f "$ZOOCFGDIR/java.env" ]; then
  # shellcheck disable=SC1091
  . "$ZOOCFGDIR/java.env"
fi

# Whether the user chose the log directory: start-foreground then logs there too.
if [ -n "${ZOO_LOG_DIR:-}" ]; then
  ZOO_LOG_DIR_SET=yes
else
  ZOO_LOG_DIR_SET=
  ZOO_LOG_DIR="$ZOOKEEPER_PREFIX/logs"
fi

# Sets ENSEMBLE to the binary, or says why not and returns 1.
find_ensemble() {
  if [ -n "${ENSEMBLE_BIN:-}" ]; then
    if [ -x "$ENSEMBLE_BIN" ] && [ -f "$ENSEMBLE_BIN" ]; then
      ENSEMBLE="$ENSEMBLE_BIN"
      return 0
    fi
    echo "Error: ENSEMBLE_BIN=$ENSEMBLE_BIN is not an executable file." >&2
    return 1
  fi
  local candidate
  for candidate in "$ZOOBINDIR/ensemble" "$ZOOKEEPER_PREFIX/target/release/ensemble"; do
    if [ -x "$candidate" ] && [ -f "$candidate" ]; then
      ENSEMBLE="$candidate"
      return 0
    fi
  done
  if candidate="$(command -v ensemble)"; then
    ENSEMBLE="$candidate"
    return 0
  fi
  echo "Error: the ensemble binary was not found: set ENSEMBLE_BIN, put ensemble in $ZOOBINDIR or on PATH, or run cargo build --release." >&2
  return 1
}
