#!/usr/bin/env bash
# Starts, stops and queries an Ensemble server the way ZooKeeper's zkServer.sh does,
# with its commands, variables, pid file and output lines, so that systemd units,
# init scripts and runbooks written for ZooKeeper keep working:
#
#   zkServer.sh [--config <conf-dir>] {start|start-foreground|stop|restart|status|print-cmd|version} [cfg]
#
# `cfg` is a file name inside ZOOCFGDIR, or a path when it holds a slash. See zkEnv.sh
# for ZOOCFGDIR, ZOOCFG, ZOO_LOG_DIR and ENSEMBLE_BIN; besides those:
#
#   ZOOPIDFILE              the pid file (default: dataDir/zookeeper_server.pid)
#   ZOO_LOG_FILE            the log file's name inside ZOO_LOG_DIR
#                           (default: zookeeper-<user>-server-<host>.log)
#   ZOO_NOEXEC              start-foreground runs the server as a child, not by exec
#   ZOO_DATADIR_AUTOCREATE_DISABLE
#                           refuse to start when dataDir holds no version-2 directory
#   ENSEMBLE_START_TIMEOUT  seconds `start` waits for the server to answer (60)
#   ENSEMBLE_STOP_TIMEOUT   seconds `stop` waits for it to exit before SIGKILL (20)
#
# Unlike ZooKeeper's script, `start` returns once the server answers on its client
# port (not after a fixed second) and `stop` once the process has exited.

_zk_self="${BASH_SOURCE[0]}"
if _zk_real="$(readlink -f -- "$_zk_self" 2>/dev/null)" && [ -n "$_zk_real" ]; then
  _zk_self="$_zk_real"
fi
ZOOBINDIR="$(cd -- "$(dirname -- "$_zk_self")" && pwd)"
unset _zk_self _zk_real

# shellcheck source=bin/zkEnv.sh
. "$ZOOBINDIR/zkEnv.sh"

COMMAND="${1:-}"

if [ -n "${2:-}" ]; then
  case "$2" in
    */*) ZOOCFG="$2" ;;
    *) ZOOCFG="$ZOOCFGDIR/$2" ;;
  esac
fi

echo "Using config: $ZOOCFG" >&2

usage() {
  echo "Usage: $0 [--config <conf-dir>] {start|start-foreground|stop|version|restart|status|print-cmd} [cfg]" >&2
  exit 1
}

# The last value of `key` in a zoo.cfg-style file, blanks trimmed ("" if none).
cfg_value() {
  local file="$1" key="${2//./\\.}"
  [ -n "$file" ] && [ -r "$file" ] || return 0
  sed -n -e 's/\r$//' -e "s/^[[:space:]]*${key}[[:space:]]*[=:][[:space:]]*//p" -- "$file" |
    tail -n 1 | sed -e 's/[[:space:]]*$//'
}

case "$COMMAND" in
  start | start-foreground | stop | restart | status | print-cmd) ;;
  version)
    find_ensemble || exit 1
    exec "$ENSEMBLE" --version
    ;;
  *) usage ;;
esac

if [ ! -r "$ZOOCFG" ]; then
  echo "Error: cannot read the config file $ZOOCFG" >&2
  exit 1
fi

# The config's absolute path: what the server is given, and how its pid is told apart
# from an unrelated process that reuses it.
CFG_ABS="$(cd -- "$(dirname -- "$ZOOCFG")" && pwd)/$(basename -- "$ZOOCFG")"

ZOO_DATADIR="$(cfg_value "$ZOOCFG" dataDir)"
if [ -z "${ZOOPIDFILE:-}" ]; then
  if [ -z "$ZOO_DATADIR" ]; then
    echo "Error: $ZOOCFG sets no dataDir, where the pid file belongs; set dataDir or ZOOPIDFILE." >&2
    exit 1
  fi
  ZOOPIDFILE="$ZOO_DATADIR/zookeeper_server.pid"
fi

_zk_user="${USER:-$(id -un 2>/dev/null)}"
_zk_host="${HOSTNAME:-$(hostname 2>/dev/null)}"
ZOO_LOG_FILE="${ZOO_LOG_FILE:-zookeeper-$_zk_user-server-$_zk_host.log}"
_ZOO_DAEMON_OUT="$ZOO_LOG_DIR/zookeeper-$_zk_user-server-$_zk_host.out"
unset _zk_user _zk_host

# --- processes --------------------------------------------------------------------

is_zombie() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [ "${stat%% *}" = Z ]
}

alive() {
  { kill -0 "$1" 2>/dev/null || [ -d "/proc/$1" ]; } && ! is_zombie "$1"
}

# Whether pid is a live server started with this config. Where /proc shows the
# command line, a process that does not name the config (a pid reused after a
# reboot) is not taken for the server; elsewhere a live pid is, as in ZooKeeper.
is_server() {
  local pid="$1" arg
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  [ -r "/proc/$pid/cmdline" ] || return 0
  while IFS= read -r -d '' arg; do
    [ "$arg" -ef "$ZOOCFG" ] && return 0
  done <"/proc/$pid/cmdline"
  return 1
}

read_pid() {
  tr -d '[:space:]' <"$ZOOPIDFILE" 2>/dev/null
}

# Whether pid has a listening TCP socket on port. Without /proc it cannot be told,
# and the answer is yes.
holds_listener() {
  local pid="$1" port fd link inodes=" "
  [ -r /proc/net/tcp ] && [ -r /proc/self/fd ] || return 0
  [ -r "/proc/$pid/fd" ] || return 1
  printf -v port ':%04X' "$2"
  for fd in "/proc/$pid/fd/"*; do
    link="$(readlink "$fd" 2>/dev/null)" || continue
    case "$link" in socket:\[*\]) inodes+="${link:8:${#link}-9} " ;; esac
  done
  # /proc/net/tcp{,6}: local address in column 2, state in 4 (0A = LISTEN), inode in 10.
  awk -v port="$port" -v inodes="$inodes" '
    $4 == "0A" && substr($2, length($2) - 4) == port && index(inodes, " " $10 " ") { found = 1 }
    END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# --- the client port ----------------------------------------------------------------

# Sets CLIENT_PORT, CLIENT_ADDR and CLIENT_SSL as ZooKeeper's status finds them:
# clientPort and clientPortAddress, else the `;[address:]port` part of this server's
# server.N line (N from dataDir/myid, the line from the config or its
# dynamicConfigFile), else secureClientPort. With "quiet" it keeps its notes.
locate_client_port() {
  local say=echo myid spec secure
  [ "${1:-}" = quiet ] && say=:
  CLIENT_SSL=false
  CLIENT_ADDR="$(cfg_value "$ZOOCFG" clientPortAddress)"
  CLIENT_PORT="$(cfg_value "$ZOOCFG" clientPort)"
  if ! [[ "$CLIENT_PORT" =~ ^[0-9]+$ ]]; then
    CLIENT_PORT=
    myid="$(tr -d '[:space:]' <"$ZOO_DATADIR/myid" 2>/dev/null)"
    if ! [[ "$myid" =~ ^[0-9]+$ ]]; then
      $say "No clientPort, and no server id in $ZOO_DATADIR/myid to find this server's server.N line."
    else
      spec="$(cfg_value "$ZOOCFG" "server.$myid")"
      if [[ "$spec" != *";"* ]]; then
        $say "No client port in server.$myid of $ZOOCFG; looking in the dynamic config file."
        spec="$(cfg_value "$(cfg_value "$ZOOCFG" dynamicConfigFile)" "server.$myid")"
      fi
      if [[ "$spec" != *";"* ]]; then
        $say "No client port in any server.$myid line."
      else
        spec="${spec##*;}"
        if [[ "$spec" =~ ^(.*):([0-9]+)$ ]]; then
          CLIENT_ADDR="${BASH_REMATCH[1]}"
          CLIENT_ADDR="${CLIENT_ADDR#\[}"
          CLIENT_ADDR="${CLIENT_ADDR%\]}"
          CLIENT_PORT="${BASH_REMATCH[2]}"
        else
          CLIENT_PORT="$spec"
        fi
      fi
    fi
  fi
  if [ -z "$CLIENT_PORT" ]; then
    $say "No plain client port; looking for secureClientPort."
    secure="$(cfg_value "$ZOOCFG" secureClientPort)"
    if [ -z "$secure" ]; then
      $say "Neither clientPort nor secureClientPort is configured. Terminating."
      return 1
    fi
    CLIENT_SSL=true
    CLIENT_PORT="$secure"
    CLIENT_ADDR="$(cfg_value "$ZOOCFG" secureClientPortAddress)"
  fi
  [ -n "$CLIENT_ADDR" ] || CLIENT_ADDR=localhost
  return 0
}

# Sends a four-letter word and prints the answer (nothing if none came within 5 s).
four_letter_word() {
  # shellcheck disable=SC2016 # the inner shell expands its own arguments
  timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf %s "$3" >&3 && cat <&3' \
    four-letter-word "$1" "$2" "$3" 2>/dev/null
}

# --- commands -------------------------------------------------------------------------

# Waits until the server `pid` listens on its client port and answers srvr there
# (ready or, in a quorum still electing, "not currently serving"). Fails if the
# process exits or ENSEMBLE_START_TIMEOUT passes.
wait_serving() {
  local pid="$1" deadline=$((SECONDS + ${ENSEMBLE_START_TIMEOUT:-60})) probe=yes
  if ! locate_client_port quiet || [ "$CLIENT_SSL" = true ]; then
    probe=
  fi
  while alive "$pid"; do
    if [ -z "$probe" ]; then
      # Nothing to ask over plain TCP: alive after a second is all there is to know.
      sleep 1
      alive "$pid"
      return
    fi
    if holds_listener "$pid" "$CLIENT_PORT" &&
      [ -n "$(four_letter_word "$CLIENT_ADDR" "$CLIENT_PORT" srvr)" ] &&
      holds_listener "$pid" "$CLIENT_PORT"; then
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "the server did not answer on port $CLIENT_PORT within ${ENSEMBLE_START_TIMEOUT:-60} s; stopping it" >&2
      kill "$pid" 2>/dev/null
      wait_gone "$pid" "${ENSEMBLE_STOP_TIMEOUT:-20}" || kill -9 "$pid" 2>/dev/null
      return 1
    fi
    sleep 0.1
  done
  return 1
}

# Waits up to $2 seconds for pid to exit.
wait_gone() {
  local pid="$1" deadline=$((SECONDS + $2))
  while alive "$pid"; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.1
  done
  return 0
}

do_start() {
  local pid
  find_ensemble || exit 1
  if [ -n "${ZOO_DATADIR_AUTOCREATE_DISABLE:-}" ]; then
    local dir
    for dir in "$ZOO_DATADIR" "$(cfg_value "$ZOOCFG" dataLogDir)"; do
      if [ -n "$dir" ] && [ ! -d "$dir/version-2" ]; then
        echo "$dir holds no version-2 directory and ZOO_DATADIR_AUTOCREATE_DISABLE is set: fix the path or create it."
        exit 1
      fi
    done
  fi
  echo -n "Starting zookeeper ... "
  if [ -f "$ZOOPIDFILE" ]; then
    pid="$(read_pid)"
    if is_server "$pid"; then
      echo "already running as process $pid."
      exit 1
    fi
  fi
  mkdir -p -- "$(dirname -- "$ZOOPIDFILE")" "$ZOO_LOG_DIR"
  # nohup and env exec, so $! is the server's own pid. NOTIFY_SOCKET belongs to
  # whoever runs this script, not to the server it leaves behind.
  server_args daemon
  nohup env -u NOTIFY_SOCKET ZOO_LOG_FILE="$ZOO_LOG_FILE" \
    "$ENSEMBLE" "${SERVER_ARGS[@]}" \
    >"$_ZOO_DAEMON_OUT" 2>&1 </dev/null &
  pid=$!
  if ! printf '%s' "$pid" >"$ZOOPIDFILE"; then
    echo "FAILED TO WRITE PID"
    kill "$pid" 2>/dev/null
    exit 1
  fi
  if wait_serving "$pid"; then
    echo STARTED
  else
    echo "FAILED TO START"
    rm -f -- "$ZOOPIDFILE"
    if [ -s "$_ZOO_DAEMON_OUT" ]; then
      echo "$_ZOO_DAEMON_OUT ends:" >&2
      tail -n 20 -- "$_ZOO_DAEMON_OUT" >&2
    fi
    exit 1
  fi
}

do_stop() {
  local pid
  echo -n "Stopping zookeeper ... "
  if [ ! -f "$ZOOPIDFILE" ]; then
    echo "no zookeeper to stop (could not find file $ZOOPIDFILE)"
    return 0
  fi
  pid="$(read_pid)"
  if is_server "$pid"; then
    kill "$pid"
    if ! wait_gone "$pid" "${ENSEMBLE_STOP_TIMEOUT:-20}"; then
      echo "process $pid still running after ${ENSEMBLE_STOP_TIMEOUT:-20} s: killing it" >&2
      kill -9 "$pid" 2>/dev/null
      wait_gone "$pid" 5
    fi
  else
    echo "process ${pid:-?} of $ZOOPIDFILE is not running this server: nothing to signal" >&2
  fi
  rm -f -- "$ZOOPIDFILE"
  echo STOPPED
}

do_status() {
  local mode=
  locate_client_port || exit 1
  echo "Client port found: $CLIENT_PORT. Client address: $CLIENT_ADDR. Client SSL: $CLIENT_SSL."
  if [ "$CLIENT_SSL" = true ]; then
    echo "Ensemble does not serve TLS clients yet: there is no secure port to ask."
  else
    mode="$(four_letter_word "$CLIENT_ADDR" "$CLIENT_PORT" srvr | grep Mode)"
  fi
  if [ -z "$mode" ]; then
    echo "Error contacting service. It is probably not running."
    exit 1
  fi
  echo "$mode"
  exit 0
}

# ZOO_LOG4J_PROP ("DEBUG,ROLLINGFILE"): ZooKeeper's root logger; its level
# becomes --log-level. The appender part is ZooKeeper's and has no meaning here.
log_level_args() {
  LOG_LEVEL_ARGS=()
  [ -n "${ZOO_LOG4J_PROP:-}" ] || return 0
  local level="${ZOO_LOG4J_PROP%%,*}"
  level="$(printf '%s' "$level" | tr -d '[:space:]' | tr '[:upper:]' '[:lower:]')"
  case "$level" in
    trace | debug | info | warn | error | off) ;;
    fatal) level=error ;;
    all) level=trace ;;
    *) return 0 ;;
  esac
  LOG_LEVEL_ARGS=(--log-level "$level")
}

server_args() {
  log_level_args
  SERVER_ARGS=(server "${LOG_LEVEL_ARGS[@]}")
  if [ "$1" = daemon ] || [ -n "$ZOO_LOG_DIR_SET" ]; then
    SERVER_ARGS+=(--log-dir "$ZOO_LOG_DIR")
  fi
  SERVER_ARGS+=("$CFG_ABS")
}

case "$COMMAND" in
  start)
    do_start
    ;;
  start-foreground)
    # Logs go to stderr unless ZOO_LOG_DIR was chosen, as ZooKeeper's console logging.
    find_ensemble || exit 1
    server_args foreground
    [ -n "$ZOO_LOG_DIR_SET" ] && mkdir -p -- "$ZOO_LOG_DIR"
    export ZOO_LOG_FILE
    if [ -n "${ZOO_NOEXEC:-}" ]; then
      "$ENSEMBLE" "${SERVER_ARGS[@]}"
    else
      exec "$ENSEMBLE" "${SERVER_ARGS[@]}"
    fi
    ;;
  print-cmd)
    find_ensemble || exit 1
    server_args daemon
    printf 'nohup env -u NOTIFY_SOCKET ZOO_LOG_FILE=%q %q' "$ZOO_LOG_FILE" "$ENSEMBLE"
    printf ' %q' "${SERVER_ARGS[@]}"
    printf ' > %q 2>&1 < /dev/null\n' "$_ZOO_DAEMON_OUT"
    ;;
  stop)
    do_stop
    exit 0
    ;;
  restart)
    do_stop
    do_start
    ;;
  status)
    do_status
    ;;
esac
