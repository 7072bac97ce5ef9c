#!/usr/bin/env bash
# Compares a 3-node fl-raftd cluster with a 3-node etcd 3.4 cluster on the
# same machine: SET and GET throughput and latency through the leader at
# 1, 10 and 50 clients. redis-benchmark drives fl-raftd; etcd_load, a small
# C client in this folder, drives etcd's v3 HTTP/JSON gateway the same way.
# See bench/raft/README.md.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bench/raft/run.sh [OPTIONS] [BUILD_DIR]

Starts a 3-node fl-raftd cluster (--log-level warn) and a 3-node etcd
cluster on free loopback ports, each node with a fresh data folder on
the same disk. Runs SET, then GET, through each cluster's leader at 1,
10 and 50 clients, the clusters taking turns, and prints the median of
the repetitions for each. Then replaces the fl-raftd cluster with one
whose nodes keep their default settings (--log-level info) and measures
it the same way. BUILD_DIR is the CMake build folder that contains
systems/raft/fl-raftd (default: build).

The target: at every operation and client count, fl-raftd (--log-level
warn) has at least etcd's throughput and a p99 latency no higher.

Options:
  --quick                 smoke test: 2000 requests per run (500 with one
                          client) and one repetition; a missed target is
                          printed but does not fail the run
  --markdown              print the table as Markdown
  --requests N            requests in each run with 10 or 50 clients
                          (default 20000); runs with one client send a
                          quarter of N, because each request then waits
                          for its own commit
  --reps N                runs of each row per cluster (default 3; 1 with
                          --quick)
  --data-dir-parent DIR   folder on the disk to measure; the script
                          creates its temporary folder inside it and
                          removes it on exit (default: $TMPDIR or /tmp).
                          tmpfs and ramfs are rejected because fsync
                          costs nothing there
  -h, --help              show this help

Requires redis-benchmark 7 or later and redis-cli (Debian package
redis-tools), etcd 3.4 or later (Debian package etcd-server), cc and the
cJSON headers (libcjson-dev) to build etcd_load, and ss (iproute2).
Ports 2379 and 2380 and any etcd already running are left alone.

Exit codes: 0 when the target is met, or with --quick when nothing
failed; 1 when the target is missed (not with --quick), or when a node or
a benchmark client fails; 2 on a usage or setup error.
EOF
}

die() {
  echo "run.sh: $*" >&2
  exit 2
}

# Reports an error in the measured systems or the clients and exits with 1.
fail() {
  echo "run.sh: error: $*" >&2
  exit 1
}

# Workload. redis-benchmark names keys key:NNNNNNNNNNNN with a 12-digit
# decimal number below -r; etcd_load draws the same keys.
readonly client_counts=(1 10 50)
readonly key_space=10000
readonly value_bytes=16
readonly fill_clients=10        # connections that write the key space before GET
readonly client_timeout_s=300   # a benchmark client still running then has failed
readonly start_timeout_s=30     # for a cluster to elect a leader

build_dir=build
build_dir_given=0
quick=0
markdown=0
requests=
reps=
data_dir_parent=${TMPDIR:-/tmp}

while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --markdown) markdown=1 ;;
    --requests)
      [ $# -ge 2 ] || die "--requests requires a value"
      requests=$2
      shift
      ;;
    --reps)
      [ $# -ge 2 ] || die "--reps requires a value"
      reps=$2
      shift
      ;;
    --data-dir-parent)
      [ $# -ge 2 ] || die "--data-dir-parent requires a folder"
      data_dir_parent=$2
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    -*) die "unknown option '$1'; see --help" ;;
    *)
      [ "$build_dir_given" -eq 0 ] || die "unexpected argument '$1': only one BUILD_DIR is accepted"
      build_dir=$1
      build_dir_given=1
      ;;
  esac
  shift
done

if [ "$quick" -eq 1 ]; then
  requests=${requests:-2000}
  reps=${reps:-1}
else
  requests=${requests:-20000}
  reps=${reps:-3}
fi
[[ $requests =~ ^[1-9][0-9]*$ ]] || die "invalid --requests '$requests': expected a positive integer"
[[ $reps =~ ^[1-9][0-9]*$ ]] || die "invalid --reps '$reps': expected a positive integer"
[ "$requests" -ge 4 ] || die "invalid --requests '$requests': runs with one client send a quarter, so it must be at least 4"

# Prints the requests of one run with the given number of clients.
requests_for() { # clients
  if [ "$1" -eq 1 ]; then
    echo $((requests / 4))
  else
    echo "$requests"
  fi
}

# ---------------------------------------------------------------------------
# Setup checks

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fl_raftd="$build_dir/systems/raft/fl-raftd"
[ -x "$fl_raftd" ] ||
  die "fl-raftd not found at '$fl_raftd'; build it first: cmake -S . -B $build_dir -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build $build_dir -j2"

for tool in redis-benchmark redis-cli; do
  command -v "$tool" >/dev/null || die "$tool not found; install the Debian package redis-tools (apt-get install redis-tools)"
done
command -v etcd >/dev/null || die "etcd not found; install the Debian package etcd-server (apt-get install etcd-server)"
command -v cc >/dev/null || die "cc not found; install the Debian package build-essential"
command -v ss >/dev/null || die "ss not found; install the Debian package iproute2"

# redis-benchmark prints p50 and p99 in its --csv output from version 7 on.
benchmark_version=$(redis-benchmark --version 2>/dev/null | sed -n 's/^redis-benchmark \([0-9][0-9.]*\).*/\1/p')
[ -n "$benchmark_version" ] || die "failed to read the version of redis-benchmark from 'redis-benchmark --version'"
[ "${benchmark_version%%.*}" -ge 7 ] ||
  die "redis-benchmark $benchmark_version prints no latency percentiles with --csv; install redis-tools 7 or later"

# The gateway's path prefix is /v3/ from etcd 3.4 on; 3.3 used /v3beta/.
etcd_version=$(etcd --version 2>/dev/null | sed -n 's/^etcd Version: \([0-9][0-9.]*\).*/\1/p')
[ -n "$etcd_version" ] || die "failed to read the version of etcd from 'etcd --version'"
case $etcd_version in
  3.[4-9].* | 3.[1-9][0-9].*) ;;
  *) die "etcd $etcd_version has no /v3/ gateway paths; install etcd 3.4 or later (Debian package etcd-server)" ;;
esac

[ -d "$data_dir_parent" ] || die "--data-dir-parent '$data_dir_parent' is not a folder"
[ -w "$data_dir_parent" ] || die "--data-dir-parent '$data_dir_parent' is not writable"
read -r fs_device fs_type fs_available_kib fs_mount < <(df -PT -k "$data_dir_parent" | awk 'NR == 2 { print $1, $2, $5, $7 }')
case $fs_type in
  tmpfs | ramfs)
    die "--data-dir-parent '$data_dir_parent' is on $fs_type, where fsync costs nothing; pass a folder on a disk"
    ;;
esac
# An estimate of the space needed: etcd preallocates 64 MB of WAL per
# member. fl-raftd takes less than 1 KB per SET over its three nodes'
# Raft logs, KV logs and, with --log-level info, their log files (about
# 200 bytes an entry at the leader and 110 at a follower), and two
# clusters run. Plus 100 MB to spare.
needed_mb=$((3 * 64 + 2 * 3 * requests * reps / 1000 + 100))
[ "$fs_available_kib" -ge $((needed_mb * 1000000 / 1024)) ] ||
  die "$fs_mount has $((fs_available_kib * 1024 / 1000000)) MB free, but the run needs about $needed_mb MB; pass --data-dir-parent on another disk"

# ---------------------------------------------------------------------------
# Processes and cleanup

work_dir=$(mktemp -d "$data_dir_parent/fl-raft-bench.XXXXXX")
bench_grace_s=10
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/../lib.sh"
bench_trap_exit

# Prints the reply of one command sent with redis-cli, without carriage
# returns. Gives up after 10 s, because redis-cli waits for a reply forever.
send_command() { # port command...
  local port=$1
  shift
  timeout 10 redis-cli -h 127.0.0.1 -p "$port" "$@" 2>&1 | tr -d '\r'
}

# Fails with the end of the log when the process is no longer running.
check_alive() { # pid log_file
  if ! kill -0 "$1" 2>/dev/null; then
    echo "--- last lines of $2:" >&2
    tail -n 20 "$2" >&2
    fail "${running[$1]} (pid $1) exited during the benchmark"
  fi
}

# Fails unless the process with the given pid listens on the port: a reply
# could come from another program that took the port first, and the
# script must never send its load there.
check_listener() { # pid port name
  ss -Htlnp "sport = :$2" | grep -q "pid=$1," ||
    die "a process other than $3 (pid $1) is listening on 127.0.0.1:$2"
}

# Sends SIGTERM to every pid given and waits up to 60 s for all of them.
# Fails when one exits with a status other than 0 or, for etcd, 143: etcd
# 3.4 re-raises SIGTERM after its own shutdown.
stop_nodes() { # pid...
  local pid status deadline_s=$((SECONDS + 60)) name
  for pid in "$@"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "$@"; do
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline_s" ]; do
      sleep 0.1
    done
    name=${running[$pid]}
    kill -0 "$pid" 2>/dev/null && fail "$name (pid $pid) did not stop within 60 s of SIGTERM"
    status=0
    wait "$pid" || status=$?
    unset "running[$pid]"
    case "$name:$status" in
      *:0 | etcd*:143) ;;
      *) fail "$name (pid $pid) exited with status $status after SIGTERM" ;;
    esac
  done
}

# ---------------------------------------------------------------------------
# The load client for etcd

etcd_load="$work_dir/etcd_load"
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -o "$etcd_load" "$repo_root/bench/raft/etcd_load.c" -lcjson \
  >"$work_dir/etcd_load.build.log" 2>&1 || {
  cat "$work_dir/etcd_load.build.log" >&2
  die "building bench/raft/etcd_load.c failed; it needs cc and the cJSON headers (apt-get install libcjson-dev)"
}

# ---------------------------------------------------------------------------
# fl-raftd cluster

fl_pids=()         # index 0 to 2: node ids 1 to 3
fl_client_ports=()
fl_logs=()

# Starts three fl-raftd nodes with fresh data folders under work_dir/NAME
# and the given extra flags, and waits until all of them follow one leader.
# Picks new ports and tries again when a port was taken in the meantime.
start_fl_cluster() { # name flags...
  local name=$1 attempt i peers clients peer_ports=() pid log
  shift
  for attempt in 1 2 3; do
    fl_pids=() fl_client_ports=() fl_logs=() peer_ports=()
    peers="" clients=""
    for i in 1 2 3; do
      pick_free_port
      fl_client_ports+=("$free_port")
      pick_free_port
      peer_ports+=("$free_port")
      peers+="${peers:+,}$i=127.0.0.1:${peer_ports[i - 1]}"
      clients+="${clients:+,}$i=127.0.0.1:${fl_client_ports[i - 1]}"
    done
    rm -rf "${work_dir:?}/$name"
    mkdir -p "$work_dir/$name"
    for i in 1 2 3; do
      log="$work_dir/$name/node$i.log"
      "$fl_raftd" --id "$i" --peers "$peers" --clients "$clients" --data-dir "$work_dir/$name/node$i" \
        --listen-client "127.0.0.1:${fl_client_ports[i - 1]}" "$@" >"$log" 2>&1 &
      pid=$!
      running[$pid]="$name node $i"
      fl_pids+=("$pid")
      fl_logs+=("$log")
    done
    if wait_for_fl_leader; then
      for i in 0 1 2; do
        check_listener "${fl_pids[i]}" "${fl_client_ports[i]}" "$name node $((i + 1))"
      done
      return 0
    fi
    for pid in "${fl_pids[@]}"; do
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      unset "running[$pid]"
    done
    grep -qi 'address already in use' "${fl_logs[@]}" || break
    echo "run.sh: a port was taken before $name could listen on it (attempt $attempt); trying other ports" >&2
  done
  for log in "${fl_logs[@]}"; do
    echo "--- last lines of $log:" >&2
    tail -n 10 "$log" >&2
  done
  fail "$name did not elect a leader that every node follows within $start_timeout_s s"
}

# Prints "PORT TERM" of the leader that every node follows; prints nothing
# when the nodes disagree or one does not reply.
fl_leader() {
  local i info role leader term leader_id="" leader_term="" leader_port=""
  for i in 0 1 2; do
    info=$(send_command "${fl_client_ports[i]}" INFO) || return 0
    role=$(sed -n 's/^role://p' <<<"$info")
    leader=$(sed -n 's/^leader://p' <<<"$info")
    term=$(sed -n 's/^term://p' <<<"$info")
    [ -n "$leader" ] && [ "$leader" != 0 ] || return 0
    if [ -z "$leader_id" ]; then
      leader_id=$leader leader_term=$term
    elif [ "$leader" != "$leader_id" ] || [ "$term" != "$leader_term" ]; then
      return 0
    fi
    [ "$role" != leader ] || leader_port=${fl_client_ports[i]}
  done
  [ -z "$leader_port" ] || echo "$leader_port $leader_term"
}

# Polls every 100 ms until all nodes follow one leader. Returns 1 if a node
# exits or start_timeout_s passes first.
wait_for_fl_leader() {
  local pid deadline_s=$((SECONDS + start_timeout_s))
  while [ "$SECONDS" -lt "$deadline_s" ]; do
    for pid in "${fl_pids[@]}"; do
      kill -0 "$pid" 2>/dev/null || return 1
    done
    [ -z "$(fl_leader)" ] || return 0
    sleep 0.1
  done
  return 1
}

# Writes every key of the key space once, split over fill_clients redis-cli
# processes that each send their commands one at a time, so that GET never
# misses.
fill_fl() { # name leader_port
  local name=$1 port=$2 i status reply pids=() value
  value=$(printf "%${value_bytes}s" "" | tr ' ' x)
  for i in $(seq 0 $((fill_clients - 1))); do
    awk -v n="$key_space" -v step="$fill_clients" -v first="$i" -v value="$value" 'BEGIN {
      for (k = first; k < n; k += step) printf "SET key:%012d %s\n", k, value
    }' >"$work_dir/fill.$i.txt"
    timeout "$client_timeout_s" redis-cli -h 127.0.0.1 -p "$port" <"$work_dir/fill.$i.txt" >"$work_dir/fill.$i.out" 2>&1 &
    pids+=("$!")
  done
  client_pids=("${pids[@]}")
  for i in "${!pids[@]}"; do
    status=0
    wait "${pids[i]}" || status=$?
    [ "$status" -eq 0 ] || fail "writing the key space to $name with redis-cli exited with status $status: $(head -n 3 "$work_dir/fill.$i.out")"
    [ "$(grep -cx OK "$work_dir/fill.$i.out")" -eq "$(wc -l <"$work_dir/fill.$i.txt")" ] ||
      fail "$name did not reply OK to every SET of the key space: $(grep -vx OK "$work_dir/fill.$i.out" | head -n 3)"
  done
  client_pids=()

  for i in 0 $((key_space - 1)); do
    reply=$(send_command "$port" GET "$(printf 'key:%012d' "$i")")
    [ "$reply" = "$value" ] || fail "$name returned '$reply' for key $i of the key space; expected a $value_bytes-byte value"
  done
}

# ---------------------------------------------------------------------------
# etcd cluster

etcd_pids=()
etcd_client_ports=()
etcd_logs=()

# Starts three etcd members with fresh data folders under work_dir/etcd and
# waits until all of them follow one leader. etcd keeps its defaults apart
# from names, addresses, the data folder and the structured logger.
start_etcd_cluster() {
  local attempt i peer_ports=() cluster pid log token
  for attempt in 1 2 3; do
    etcd_pids=() etcd_client_ports=() etcd_logs=() peer_ports=()
    cluster=""
    for i in 1 2 3; do
      pick_free_port
      etcd_client_ports+=("$free_port")
      pick_free_port
      peer_ports+=("$free_port")
      cluster+="${cluster:+,}m$i=http://127.0.0.1:${peer_ports[i - 1]}"
    done
    # A unique token keeps the members from joining any other test cluster.
    token="fl-raft-bench-$$-$attempt"
    rm -rf "${work_dir:?}/etcd"
    mkdir -p "$work_dir/etcd"
    for i in 1 2 3; do
      log="$work_dir/etcd/member$i.log"
      etcd --name "m$i" --data-dir "$work_dir/etcd/member$i" \
        --listen-peer-urls "http://127.0.0.1:${peer_ports[i - 1]}" \
        --initial-advertise-peer-urls "http://127.0.0.1:${peer_ports[i - 1]}" \
        --listen-client-urls "http://127.0.0.1:${etcd_client_ports[i - 1]}" \
        --advertise-client-urls "http://127.0.0.1:${etcd_client_ports[i - 1]}" \
        --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "$token" \
        --logger zap >"$log" 2>&1 &
      pid=$!
      running[$pid]="etcd member $i"
      etcd_pids+=("$pid")
      etcd_logs+=("$log")
    done
    if wait_for_etcd_leader; then
      for i in 0 1 2; do
        check_listener "${etcd_pids[i]}" "${etcd_client_ports[i]}" "etcd member $((i + 1))"
      done
      return 0
    fi
    for pid in "${etcd_pids[@]}"; do
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      unset "running[$pid]"
    done
    grep -qi 'address already in use' "${etcd_logs[@]}" || break
    echo "run.sh: a port was taken before etcd could listen on it (attempt $attempt); trying other ports" >&2
  done
  for log in "${etcd_logs[@]}"; do
    echo "--- last lines of $log:" >&2
    tail -n 10 "$log" >&2
  done
  fail "etcd did not elect a leader that every member follows within $start_timeout_s s"
}

# Prints "PORT TERM" of the leader that every member follows; prints
# nothing when the members disagree or one does not reply.
etcd_leader() {
  local i status member leader term leader_id="" leader_term="" leader_port=""
  for i in 0 1 2; do
    status=$(timeout 10 "$etcd_load" status --endpoint "127.0.0.1:${etcd_client_ports[i]}" 2>/dev/null) || return 0
    read -r member leader term <<<"$status"
    member=${member#member_id=} leader=${leader#leader=} term=${term#raft_term=}
    [ "$leader" != 0 ] || return 0
    if [ -z "$leader_id" ]; then
      leader_id=$leader leader_term=$term
    elif [ "$leader" != "$leader_id" ] || [ "$term" != "$leader_term" ]; then
      return 0
    fi
    [ "$member" != "$leader" ] || leader_port=${etcd_client_ports[i]}
  done
  [ -z "$leader_port" ] || echo "$leader_port $leader_term"
}

wait_for_etcd_leader() {
  local pid deadline_s=$((SECONDS + start_timeout_s))
  while [ "$SECONDS" -lt "$deadline_s" ]; do
    for pid in "${etcd_pids[@]}"; do
      kill -0 "$pid" 2>/dev/null || return 1
    done
    [ -z "$(etcd_leader)" ] || return 0
    sleep 0.1
  done
  return 1
}

fill_etcd() { # leader_port
  local out="$work_dir/fill.etcd.out"
  run_client /dev/null "$out" "$out" "$etcd_load" fill --endpoint "127.0.0.1:$1" --clients "$fill_clients" \
    --key-space "$key_space" --value-size "$value_bytes" --timeout-s "$client_timeout_s" ||
    fail "writing the key space to etcd failed: $(cat "$out")"
}

# ---------------------------------------------------------------------------
# Measurement

declare -A samples=() # "op clients system metric" -> space-separated values, one per repetition
declare -A leader_terms=() # system -> the leader's term at the first run; an election changes it

# Checks that a cluster's leader is the one of its first run, and notes
# an election in the output when it is not.
note_term() { # system term
  if [ -z "${leader_terms[$1]:-}" ]; then
    leader_terms[$1]=$2
  elif [ "${leader_terms[$1]}" != "$2" ]; then
    echo "run.sh: note: $1 held an election during the benchmark (term ${leader_terms[$1]} then $2)" >&2
    leader_terms[$1]=$2
  fi
}

# Reads the rps, p50 and p99 columns of the row TEST from a CSV file in
# redis-benchmark's --csv layout, which etcd_load also prints, and records
# them as samples.
record_csv() { # csv_file test op clients system
  local rps p50 p99
  # The CSV has a header row of quoted column names, then one row per test.
  read -r rps p50 p99 < <(awk -F, -v test="$2" '
    { gsub(/"/, "") }
    NR == 1 { for (i = 1; i <= NF; i++) column[$i] = i; next }
    $1 == test && column["rps"] && column["p50_latency_ms"] && column["p99_latency_ms"] {
      print $column["rps"], $column["p50_latency_ms"], $column["p99_latency_ms"]
    }' "$1") || true
  if [ -z "${p99:-}" ]; then
    cat "$1" >&2
    fail "cannot find the rps, p50_latency_ms and p99_latency_ms columns of $2 in the CSV output above"
  fi
  samples["$3 $4 $5 rps"]+=" $rps"
  samples["$3 $4 $5 p50"]+=" $p50"
  samples["$3 $4 $5 p99"]+=" $p99"
}

# Runs redis-benchmark once against the fl-raftd leader.
bench_fl() { # system op clients
  local system=$1 op=$2 clients=$3 out="$work_dir/benchmark.csv" err="$work_dir/benchmark.err" status=0 port term i
  read -r port term <<<"$(fl_leader)"
  [ -n "${port:-}" ] || fail "$system has no leader that every node follows"
  note_term "$system" "$term"
  run_client /dev/null "$out" "$err" redis-benchmark -h 127.0.0.1 -p "$port" -t "$op" -c "$clients" \
    -n "$(requests_for "$clients")" -d "$value_bytes" -r "$key_space" --csv || status=$?
  for i in 0 1 2; do
    check_alive "${fl_pids[i]}" "${fl_logs[i]}"
  done
  if [ "$status" -ne 0 ]; then
    # redis-benchmark 7 stops at the first error reply and prints it.
    cat "$out" "$err" >&2
    fail "redis-benchmark -t $op -c $clients against $system exited with status $status"
  fi
  record_csv "$out" "${op^^}" "$op" "$clients" "$system"
}

# Runs etcd_load once against the etcd leader. Each repetition draws other
# keys, as each redis-benchmark run does.
bench_etcd() { # op clients rep
  local op=$1 clients=$2 rep=$3 out="$work_dir/benchmark.csv" err="$work_dir/benchmark.err" status=0 port term i command test
  read -r port term <<<"$(etcd_leader)"
  [ -n "${port:-}" ] || fail "etcd has no leader that every member follows"
  note_term etcd "$term"
  if [ "$op" = set ]; then
    command=(put) test=PUT
  else
    command=(range --expect-found) test=RANGE
  fi
  run_client /dev/null "$out" "$err" "$etcd_load" "${command[@]}" --endpoint "127.0.0.1:$port" --clients "$clients" \
    --requests "$(requests_for "$clients")" --value-size "$value_bytes" --key-space "$key_space" \
    --seed "$rep" --timeout-s "$client_timeout_s" || status=$?
  for i in 0 1 2; do
    check_alive "${etcd_pids[i]}" "${etcd_logs[i]}"
  done
  if [ "$status" -ne 0 ]; then
    cat "$out" "$err" >&2
    fail "etcd_load ${command[0]} --clients $clients exited with status $status"
  fi
  record_csv "$out" "$test" "$op" "$clients" etcd
}

median() {
  printf '%s\n' "$@" | sort -g | awk '
    { value[NR] = $1 }
    END { if (NR % 2) print value[(NR + 1) / 2]; else print (value[NR / 2] + value[NR / 2 + 1]) / 2 }'
}

# Prints the median of one metric's samples.
median_of() { # op clients system metric
  # Word splitting of the sample list is intended.
  # shellcheck disable=SC2086
  median ${samples["$1 $2 $3 $4"]}
}

# ---------------------------------------------------------------------------
# Formatting

less_than() {
  awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'
}

print_row() { # op clients fl_rps etcd_rps ratio fl_latency etcd_latency target defaults_rps defaults_latency
  if [ "$markdown" -eq 1 ]; then
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$@"
  else
    printf '%-4s %7s %10s %10s %6s %15s %15s %7s %10s %15s\n' "$@"
  fi
}

print_table_header() {
  if [ "$markdown" -eq 1 ]; then
    print_row op clients "fl-raftd ops/s" "etcd ops/s" ratio "fl-raftd p50/p99 ms" "etcd p50/p99 ms" target \
      "fl-raftd defaults ops/s" "defaults p50/p99 ms"
    echo "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"
  else
    print_row op clients fl-raftd etcd ratio "fl-raftd p50/p99" "etcd p50/p99" target defaults "defaults p50/p99"
  fi
}

failures=() # one line per missed target

# Prints the table row of one op and client count from the medians of the
# samples, and records whether the target is met.
report_row() { # op clients
  local op=$1 clients=$2 system fl_rps fl_p50 fl_p99 etcd_rps etcd_p50 etcd_p99 def_rps def_p50 def_p99
  local ratio target=met label
  read -r fl_rps fl_p50 fl_p99 < <(for m in rps p50 p99; do median_of "$op" "$clients" fl-raftd "$m"; done | xargs)
  read -r etcd_rps etcd_p50 etcd_p99 < <(for m in rps p50 p99; do median_of "$op" "$clients" etcd "$m"; done | xargs)
  read -r def_rps def_p50 def_p99 < <(for m in rps p50 p99; do median_of "$op" "$clients" fl-raftd-defaults "$m"; done | xargs)
  ratio=$(awk -v a="$fl_rps" -v b="$etcd_rps" 'BEGIN { printf "%.2f", a / b }')

  label="${op^^} with $clients client"
  [ "$clients" -eq 1 ] || label+=s
  if less_than "$fl_rps" "$etcd_rps"; then
    target=MISSED
    failures+=("$label: fl-raftd $(printf '%.0f' "$fl_rps") ops/s, below etcd's $(printf '%.0f' "$etcd_rps")")
  fi
  if less_than "$etcd_p99" "$fl_p99"; then
    target=MISSED
    failures+=("$label: fl-raftd p99 $fl_p99 ms, above etcd's $etcd_p99 ms")
  fi
  print_row "${op^^}" "$clients" "$(printf '%.0f' "$fl_rps")" "$(printf '%.0f' "$etcd_rps")" "$ratio" \
    "$(printf '%.3f/%.3f' "$fl_p50" "$fl_p99")" "$(printf '%.3f/%.3f' "$etcd_p50" "$etcd_p99")" "$target" \
    "$(printf '%.0f' "$def_rps")" "$(printf '%.3f/%.3f' "$def_p50" "$def_p99")"
}

# ---------------------------------------------------------------------------
# Header

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
memory_kib=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/meminfo 2>/dev/null)
source_revision=$(git -C "$repo_root" describe --always --dirty 2>/dev/null || echo unknown)

echo "fl-raftd vs etcd benchmark ($([ "$quick" -eq 1 ] && echo quick || echo full) run)"
echo "date:        $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu:         ${cpu_model:-unknown}, $(nproc) cores online, shared by all six nodes and the client"
echo "memory:      $(awk -v k="${memory_kib:-0}" 'BEGIN { printf "%.1f GB", k * 1024 / 1e9 }')"
echo "load:        $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min; other processes slow both clusters down)"
echo "repository:  $source_revision; binary: $fl_raftd (may be built from another revision)"
echo "clients:     redis-benchmark $benchmark_version for fl-raftd; etcd_load (bench/raft/etcd_load.c) for etcd $etcd_version"
echo "data dirs:   $work_dir on $fs_type ($fs_device, mounted on $fs_mount)"
echo "settings:    $requests requests per run ($((requests / 4)) with 1 client), $value_bytes-byte values, $key_space keys,"
echo "             $reps repetition(s) per cluster and row; fl-raftd --log-level warn, and its defaults (info) in the"
echo "             last columns; etcd with its defaults"
echo

# ---------------------------------------------------------------------------
# Throughput and latency

# Runs SET, then GET, at each client count against the clusters given,
# which take turns in each repetition so that a burst of other load on the
# machine falls on all of them.
measure() { # system...
  local op clients rep system port term
  for op in set get; do
    if [ "$op" = get ]; then
      for system in "$@"; do
        if [ "$system" = etcd ]; then
          read -r port term <<<"$(etcd_leader)"
          [ -n "${port:-}" ] || fail "etcd has no leader that every member follows"
          fill_etcd "$port"
        else
          read -r port term <<<"$(fl_leader)"
          [ -n "${port:-}" ] || fail "$system has no leader that every node follows"
          fill_fl "$system" "$port"
        fi
      done
    fi
    for clients in "${client_counts[@]}"; do
      for rep in $(seq "$reps"); do
        for system in "$@"; do
          if [ "$system" = etcd ]; then
            bench_etcd "$op" "$clients" "$rep"
          else
            bench_fl "$system" "$op" "$clients"
          fi
        done
      done
    done
  done
}

echo "starting etcd and fl-raftd (--log-level warn) clusters ..." >&2
start_etcd_cluster
start_fl_cluster fl-raftd --log-level warn
measure fl-raftd etcd
stop_nodes "${fl_pids[@]}"

# The second fl-raftd cluster runs beside the idle etcd cluster, as the
# first did.
echo "starting the fl-raftd cluster with default settings ..." >&2
start_fl_cluster fl-raftd-defaults
measure fl-raftd-defaults
stop_nodes "${fl_pids[@]}"
stop_nodes "${etcd_pids[@]}"

print_table_header
for op in set get; do
  for clients in "${client_counts[@]}"; do
    report_row "$op" "$clients"
  done
done

echo
echo "ops/s: requests per second; latencies in ms; each value is the median of $reps run(s)"
echo "ratio: fl-raftd ops/s divided by etcd ops/s, both through the leader"
echo "target: fl-raftd (--log-level warn) ops/s >= etcd's and p99 <= etcd's at every row"
echo "defaults: a second fl-raftd cluster with the default --log-level info, measured after the first"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min; this run's nodes and clients count in it)"

# ---------------------------------------------------------------------------
# Summary

echo
for failure in "${failures[@]}"; do
  echo "MISSED $failure"
done
if [ ${#failures[@]} -gt 0 ]; then
  echo "target: missed in ${#failures[@]} case(s)"
  if [ "$quick" -eq 1 ]; then
    echo "quick run: a missed target does not fail it (exit 0)"
    exit 0
  fi
  exit 1
fi
echo "target: met at every row"
exit 0
