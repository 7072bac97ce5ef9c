#!/usr/bin/env bash
# Compares the durable key-value server fl-kvd with Redis on the same disk:
# SET and GET throughput and latency from redis-benchmark, with every write
# synced before it is acknowledged, and the time fl-kvd takes to replay a
# large log on restart. See bench/kv/README.md.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bench/kv/run.sh [OPTIONS] [BUILD_DIR]

Starts fl-kvd (--sync always) and redis-server (appendonly yes,
appendfsync always) on free loopback ports, each with a fresh data folder
on the same disk. Runs redis-benchmark SET and GET against both at 1, 10
and 50 clients, alternating between the servers, and prints the median
of the repetitions for each. Then fills a fresh fl-kvd log with about
1 GB of records and times two restarts until the server answers PING.
BUILD_DIR is the CMake build folder that contains systems/kv/fl-kvd
(default: build).

Options:
  --quick                 smoke test: 5000 requests per run, one
                          repetition and a 64 MB log for recovery; misses
                          of a target are printed but do not fail the run
  --markdown              print the tables as Markdown
  --requests N            requests in each redis-benchmark run (default
                          100000)
  --reps N                runs of each row per server (default 3; 1 with
                          --quick)
  --data-dir-parent DIR   folder on the disk to measure; the script
                          creates its temporary folder inside it and
                          removes it on exit (default: $TMPDIR or /tmp).
                          tmpfs and ramfs are rejected because fsync
                          costs nothing there
  --no-recovery           skip the recovery measurement
  -h, --help              show this help

Requires redis-server, redis-cli and redis-benchmark 7 or later (Debian
packages redis-server and redis-tools) and ss (iproute2). Port 6379 and
any Redis already running are left alone.

Exit codes: 0 when every target is met, or with --quick when nothing
failed; 1 when a target is missed (not with --quick), or when a server
or benchmark client fails or a check of the stored data fails; 2 on a
usage or setup error.
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

# Targets. Ratios are fl-kvd throughput divided by Redis throughput.
readonly set_ratio_target=1.00     # SET at 10 and 50 clients
readonly set_ratio_stretch=2.00    # SET at 50 clients, printed but never failing the run
readonly get_ratio_target=0.80     # GET at every client count
readonly recovery_target_s=3       # restart after a log of about 1 GB

# Workload. redis-benchmark names keys key:NNNNNNNNNNNN with a 12-digit
# decimal number below -r, so -r 100000 gives 100,000 distinct keys.
readonly client_counts=(1 10 50)
readonly key_space=100000
readonly value_bytes=16
readonly fill_value_bytes=1000
readonly fill_key_space=1000000
readonly fill_clients=50

build_dir=build
build_dir_given=0
quick=0
markdown=0
recovery=1
requests=
reps=
data_dir_parent=${TMPDIR:-/tmp}

while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --markdown) markdown=1 ;;
    --no-recovery) recovery=0 ;;
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
  requests=${requests:-5000}
  reps=${reps:-1}
  recovery_mb=64
else
  requests=${requests:-100000}
  reps=${reps:-3}
  recovery_mb=1000
fi
[[ $requests =~ ^[1-9][0-9]*$ ]] || die "invalid --requests '$requests': expected a positive integer"
[[ $reps =~ ^[1-9][0-9]*$ ]] || die "invalid --reps '$reps': expected a positive integer"

# ---------------------------------------------------------------------------
# Setup checks

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fl_kvd="$build_dir/systems/kv/fl-kvd"
[ -x "$fl_kvd" ] ||
  die "fl-kvd not found at '$fl_kvd'; build it first: cmake -S . -B $build_dir -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build $build_dir -j2"

for tool in redis-server redis-benchmark redis-cli; do
  command -v "$tool" >/dev/null ||
    die "$tool not found; install the Debian packages redis-server and redis-tools (apt-get install redis-server redis-tools)"
done
command -v ss >/dev/null || die "ss not found; install the Debian package iproute2"

# redis-benchmark prints p50 and p99 in its --csv output from version 7 on.
benchmark_version=$(redis-benchmark --version 2>/dev/null | sed -n 's/^redis-benchmark \([0-9][0-9.]*\).*/\1/p')
[ -n "$benchmark_version" ] || die "failed to read the version of redis-benchmark from 'redis-benchmark --version'"
[ "${benchmark_version%%.*}" -ge 7 ] ||
  die "redis-benchmark $benchmark_version prints no latency percentiles with --csv; install redis-tools 7 or later"
server_version=$(redis-server --version | sed -n 's/.* v=\([0-9][0-9.]*\).*/\1/p')

[ -d "$data_dir_parent" ] || die "--data-dir-parent '$data_dir_parent' is not a folder"
[ -w "$data_dir_parent" ] || die "--data-dir-parent '$data_dir_parent' is not writable"
read -r fs_device fs_type fs_available_kib fs_mount < <(df -PT -k "$data_dir_parent" | awk 'NR == 2 { print $1, $2, $5, $7 }')
case $fs_type in
  tmpfs | ramfs)
    die "--data-dir-parent '$data_dir_parent' is on $fs_type, where fsync costs nothing; pass a folder on a disk"
    ;;
esac

# An estimate of the space needed: each SET takes less than 100 bytes of
# log in either server, plus 50 MB for the keys written before the GET rows.
needed_mb=$((2 * requests * reps * ${#client_counts[@]} * 100 / 1000000 + 50))
[ "$recovery" -eq 0 ] || needed_mb=$((needed_mb + recovery_mb * 11 / 10))
[ "$fs_available_kib" -ge $((needed_mb * 1000000 / 1024)) ] ||
  die "$fs_mount has $((fs_available_kib * 1024 / 1000000)) MB free, but the run needs about $needed_mb MB; pass --data-dir-parent on another disk or --no-recovery"

# ---------------------------------------------------------------------------
# Processes and cleanup

work_dir=$(mktemp -d "$data_dir_parent/fl-kv-bench.XXXXXX")
bench_grace_s=5
client_timeout_s=0 # the runs are bounded by their request counts
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

# Polls PING every 10 ms. Returns 1 if the process exits or TIMEOUT_S passes
# first. A listener that accepts but does not reply gets 2 s per PING.
wait_for_ping() { # pid port timeout_s
  local pid=$1 port=$2 deadline_ns
  deadline_ns=$(($(date +%s%N) + $3 * 1000000000))
  while [ "$(date +%s%N)" -lt "$deadline_ns" ]; do
    kill -0 "$pid" 2>/dev/null || return 1
    if [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null)" = PONG ]; then
      return 0
    fi
    sleep 0.01
  done
  return 1
}

launch_fl_kvd() { # data_dir sync port
  exec "$fl_kvd" --data-dir "$1" --sync "$2" --listen "127.0.0.1:$3"
}

launch_redis() { # data_dir port
  exec redis-server --port "$2" --bind 127.0.0.1 --appendonly yes --appendfsync always \
    --save '' --dir "$1" --daemonize no
}

# Starts a server on a free loopback port and waits until it replies to PING.
# Sets server_pid, server_port and start_ns (nanoseconds from just before the
# exec until the first PONG). Retries with another port when the port was
# taken in the meantime.
start_server() { # name log_file timeout_s launch_function args...
  local name=$1 log_file=$2 timeout_s=$3 attempt port pid t0 log_offset
  shift 3
  for attempt in 1 2 3; do
    pick_free_port
    port=$free_port
    log_offset=$(stat -c %s "$log_file" 2>/dev/null || echo 0)
    t0=$(date +%s%N)
    "$@" "$port" >>"$log_file" 2>&1 &
    pid=$!
    running[$pid]=$name
    if wait_for_ping "$pid" "$port" "$timeout_s"; then
      start_ns=$(($(date +%s%N) - t0))
      # The PONG could come from another program that took the port first,
      # and the script must never send its load there.
      ss -Htlnp "sport = :$port" | grep -q "pid=$pid," ||
        die "a process other than $name (pid $pid) is listening on 127.0.0.1:$port"
      server_pid=$pid
      server_port=$port
      return 0
    fi
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "running[$pid]"
    # Only this attempt's lines count, because a log file serves several starts.
    tail -c +$((log_offset + 1)) "$log_file" | grep -q 'Address already in use' || break
    echo "run.sh: port $port was taken before $name could listen on it (attempt $attempt); trying another" >&2
  done
  echo "--- last lines of $log_file:" >&2
  tail -n 20 "$log_file" >&2
  fail "$name did not reply to PING on 127.0.0.1:$port within $timeout_s s"
}

# Sends SIGTERM and waits up to 120 s for a clean exit with status 0.
stop_server() { # pid log_file
  bench_stop_server "$1" "$2" 120
}

# Fails with the end of the server log when the server is no longer running.
check_alive() { # pid log_file
  if ! kill -0 "$1" 2>/dev/null; then
    echo "--- last lines of $2:" >&2
    tail -n 20 "$2" >&2
    fail "${running[$1]} (pid $1) exited during the benchmark"
  fi
}

# Prints the value of one field of the INFO reply.
info_field() { # port field
  send_command "$1" INFO | sed -n "s/^$2://p"
}

# ---------------------------------------------------------------------------
# Measurement

declare -A samples=() # "op clients server metric" -> space-separated values, one per repetition
failures=()           # one line per missed target
target_results=()     # one "LABEL: VALUE (target ...) PASS|FAIL" line per target
stretch_result=""     # the line of the stretch target, which never fails the run

# Runs redis-benchmark once and records its throughput, p50 and p99.
bench_once() { # server port op clients pid log_file
  local server=$1 port=$2 op=$3 clients=$4 pid=$5 log_file=$6
  local out="$work_dir/benchmark.csv" err="$work_dir/benchmark.err" status=0 rps p50 p99
  run_client /dev/null "$out" "$err" redis-benchmark -h 127.0.0.1 -p "$port" -t "$op" -c "$clients" \
    -n "$requests" -d "$value_bytes" -r "$key_space" --csv || status=$?
  check_alive "$pid" "$log_file"
  if [ "$status" -ne 0 ]; then
    # redis-benchmark 7 stops at the first error reply and prints it.
    cat "$out" "$err" >&2
    fail "redis-benchmark -t $op -c $clients against $server exited with status $status"
  fi

  # The CSV has a header row of quoted column names, then one row per test.
  read -r rps p50 p99 < <(awk -F, -v test="${op^^}" '
    { gsub(/"/, "") }
    NR == 1 { for (i = 1; i <= NF; i++) column[$i] = i; next }
    $1 == test && column["rps"] && column["p50_latency_ms"] && column["p99_latency_ms"] {
      print $column["rps"], $column["p50_latency_ms"], $column["p99_latency_ms"]
    }' "$out") || true
  if [ -z "${p99:-}" ]; then
    cat "$out" >&2
    fail "cannot find the rps, p50_latency_ms and p99_latency_ms columns of ${op^^} in the redis-benchmark --csv output above"
  fi
  samples["$op $clients $server rps"]+=" $rps"
  samples["$op $clients $server p50"]+=" $p50"
  samples["$op $clients $server p99"]+=" $p99"
}

median() {
  printf '%s\n' "$@" | sort -g | awk '
    { value[NR] = $1 }
    END { if (NR % 2) print value[(NR + 1) / 2]; else print (value[NR / 2] + value[NR / 2 + 1]) / 2 }'
}

# Writes every key of the benchmark key space with a value of value_bytes
# bytes through one pipelined connection, so that GET never misses, and
# checks that the server then stores exactly those keys.
populate_keys() { # server port
  local server=$1 port=$2 resp="$work_dir/populate.resp" out="$work_dir/populate.out" status=0 reply
  if [ ! -f "$resp" ]; then
    awk -v n="$key_space" -v size="$value_bytes" 'BEGIN {
      value = ""
      for (i = 0; i < size; i++) value = value "v"
      for (i = 0; i < n; i++) {
        key = sprintf("key:%012d", i)
        printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(key), key, size, value
      }
    }' >"$resp"
  fi
  run_client "$resp" "$out" "$out" redis-cli -h 127.0.0.1 -p "$port" --pipe || status=$?
  if [ "$status" -ne 0 ] || ! grep -q "errors: 0, replies: $key_space\$" "$out"; then
    cat "$out" >&2
    fail "writing $key_space keys to $server with redis-cli --pipe failed (status $status)"
  fi

  reply=$(send_command "$port" DBSIZE)
  [ "$reply" = "$key_space" ] || fail "$server stores $reply keys after the key space was written; expected $key_space"
  reply=$(send_command "$port" GET "key:$(printf '%012d' $((key_space - 1)))")
  [ "${#reply}" -eq "$value_bytes" ] ||
    fail "$server returned '$reply' for the last key of the key space; expected a $value_bytes-byte value"
}

# ---------------------------------------------------------------------------
# Formatting

less_than() {
  awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'
}

print_row() { # op clients kv_rps redis_rps ratio kv_latency redis_latency
  if [ "$markdown" -eq 1 ]; then
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$@"
  else
    printf '%-4s %8s %13s %13s %7s %17s %17s\n' "$@"
  fi
}

print_table_header() {
  if [ "$markdown" -eq 1 ]; then
    print_row op clients "fl-kvd req/s" "redis req/s" ratio "fl-kvd p50/p99 ms" "redis p50/p99 ms"
    echo "|---|---:|---:|---:|---:|---:|---:|"
  else
    print_row op clients "fl-kvd req/s" "redis req/s" ratio "fl-kvd p50/p99" "redis p50/p99"
  fi
}

# Prints a line of the recovery list, as a Markdown list item with --markdown.
print_line() {
  if [ "$markdown" -eq 1 ]; then
    echo "- $*"
  else
    echo "$*"
  fi
}

# Records one PASS/FAIL result of a throughput ratio target.
record_ratio_target() { # label ratio target
  local result=PASS
  if less_than "$2" "$3"; then
    result=FAIL
    failures+=("$1: fl-kvd/redis $2 (target >= $3)")
  fi
  target_results+=("$1: fl-kvd/redis $2 (target >= $3) $result")
}

# Prints the table row of one op and client count from the medians of its
# samples and records its targets.
report_row() { # op clients
  local op=$1 clients=$2 label kv_rps kv_p50 kv_p99 redis_rps redis_p50 redis_p99 ratio stretch=met
  # Word splitting of the sample lists is intended.
  # shellcheck disable=SC2086
  {
    kv_rps=$(median ${samples["$op $clients fl-kvd rps"]})
    kv_p50=$(median ${samples["$op $clients fl-kvd p50"]})
    kv_p99=$(median ${samples["$op $clients fl-kvd p99"]})
    redis_rps=$(median ${samples["$op $clients redis rps"]})
    redis_p50=$(median ${samples["$op $clients redis p50"]})
    redis_p99=$(median ${samples["$op $clients redis p99"]})
  }
  ratio=$(awk -v a="$kv_rps" -v b="$redis_rps" 'BEGIN { printf "%.2f", a / b }')
  print_row "${op^^}" "$clients" "$(printf '%.0f' "$kv_rps")" "$(printf '%.0f' "$redis_rps")" "$ratio" \
    "$(printf '%.3f/%.3f' "$kv_p50" "$kv_p99")" "$(printf '%.3f/%.3f' "$redis_p50" "$redis_p99")"

  label="${op^^} with $clients client"
  [ "$clients" -eq 1 ] || label+=s
  if [ "$op" = set ] && [ "$clients" -ge 10 ]; then
    record_ratio_target "$label" "$ratio" "$set_ratio_target"
  fi
  if [ "$op" = set ] && [ "$clients" -eq 50 ]; then
    if less_than "$ratio" "$set_ratio_stretch"; then
      stretch="not met"
    fi
    stretch_result="$label: fl-kvd/redis $ratio (stretch target >= $set_ratio_stretch) $stretch"
  fi
  if [ "$op" = get ]; then
    record_ratio_target "$label" "$ratio" "$get_ratio_target"
  fi
}

# ---------------------------------------------------------------------------
# Header

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
memory_kib=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/meminfo 2>/dev/null)
source_revision=$(git -C "$repo_root" describe --always --dirty 2>/dev/null || echo unknown)

echo "fl-kvd vs Redis benchmark ($([ "$quick" -eq 1 ] && echo quick || echo full) run)"
echo "date:        $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu:         ${cpu_model:-unknown}, $(nproc) cores online"
echo "memory:      $(awk -v k="${memory_kib:-0}" 'BEGIN { printf "%.1f GB", k * 1024 / 1e9 }')"
echo "load:        $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min; other processes slow both servers down)"
echo "repository:  $source_revision; binary: $fl_kvd (may be built from another revision)"
echo "redis:       redis-server $server_version, redis-benchmark $benchmark_version"
echo "data dirs:   $work_dir on $fs_type ($fs_device, mounted on $fs_mount)"
echo "settings:    redis-benchmark -n $requests -d $value_bytes -r $key_space, $reps repetition(s) per server and row,"
echo "             fl-kvd --sync always; redis-server --appendonly yes --appendfsync always --save ''"
echo

# ---------------------------------------------------------------------------
# Throughput and latency

mkdir "$work_dir/fl-kvd" "$work_dir/redis"
kv_log="$work_dir/fl-kvd.log"
redis_log="$work_dir/redis.log"

start_server fl-kvd "$kv_log" 10 launch_fl_kvd "$work_dir/fl-kvd/data" always
kv_pid=$server_pid
kv_port=$server_port
start_server redis-server "$redis_log" 10 launch_redis "$work_dir/redis"
redis_pid=$server_pid
redis_port=$server_port

print_table_header
for op in set get; do
  if [ "$op" = get ]; then
    populate_keys fl-kvd "$kv_port"
    populate_keys redis-server "$redis_port"
  fi
  for clients in "${client_counts[@]}"; do
    # The servers take turns, so a burst of other load on the machine
    # falls on both.
    for _ in $(seq "$reps"); do
      bench_once fl-kvd "$kv_port" "$op" "$clients" "$kv_pid" "$kv_log"
      bench_once redis "$redis_port" "$op" "$clients" "$redis_pid" "$redis_log"
    done
    report_row "$op" "$clients"
  done
done

stop_server "$kv_pid" "$kv_log"
stop_server "$redis_pid" "$redis_log"

echo
echo "ratio: fl-kvd req/s divided by redis req/s; latencies in ms; each value is the median of $reps run(s)"

# ---------------------------------------------------------------------------
# Recovery

# Fills a fresh data folder with about recovery_mb MB of log records, then
# restarts fl-kvd on it, first after dropping the page cache when allowed.
measure_recovery() {
  local data_dir="$work_dir/recovery/data" log_file="$work_dir/recovery.log"
  local fill_requests=$((recovery_mb * 1000000 / fill_value_bytes))
  local status=0 written wal_bytes wal_mb pid port cache recovered seconds result run
  mkdir -p "$work_dir/recovery"

  # --sync none only speeds up the fill. fl-kvd still writes every record
  # to the log file before it replies, so a restart replays all of them,
  # and the sync before the page cache is dropped puts them on the disk.
  start_server fl-kvd "$log_file" 10 launch_fl_kvd "$data_dir" none
  pid=$server_pid
  port=$server_port
  run_client /dev/null "$work_dir/fill.out" "$work_dir/fill.out" redis-benchmark -h 127.0.0.1 -p "$port" \
    -t set -c "$fill_clients" -n "$fill_requests" -d "$fill_value_bytes" -r "$fill_key_space" -q ||
    status=$?
  check_alive "$pid" "$log_file"
  if [ "$status" -ne 0 ]; then
    cat "$work_dir/fill.out" >&2
    fail "filling the recovery log with redis-benchmark exited with status $status"
  fi
  written=$(info_field "$port" last_seq)
  stop_server "$pid" "$log_file"
  wal_bytes=$(du -sb "$data_dir" | cut -f1)
  wal_mb=$((wal_bytes / 1000000))

  echo
  print_line "recovery log: $written SET records of $fill_value_bytes-byte values ($fill_requests requests, $fill_clients clients), $wal_mb MB in $data_dir (du -sb)"

  cache=warm
  if [ "$(id -u)" -ne 0 ]; then
    print_line "page cache: not dropped, because the script is not running as root"
  elif sync && { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
    cache=cold
    print_line "page cache: dropped before the first restart (sync; echo 3 > /proc/sys/vm/drop_caches)"
  else
    print_line "page cache: not dropped, because writing /proc/sys/vm/drop_caches failed"
  fi

  for run in 1 2; do
    [ "$run" -eq 1 ] || cache=warm
    start_server fl-kvd "$log_file" 600 launch_fl_kvd "$data_dir" always
    seconds=$(awk -v ns="$start_ns" 'BEGIN { printf "%.2f", ns / 1e9 }')
    recovered=$(info_field "$server_port" recovered_records)
    stop_server "$server_pid" "$log_file"
    [ "$recovered" = "$written" ] ||
      fail "fl-kvd reported recovered_records $recovered after restart; the log holds $written acknowledged records"

    result=PASS
    if ! less_than "$seconds" "$recovery_target_s"; then
      result=FAIL
      failures+=("recovery of $wal_mb MB WAL ($cache cache): $seconds s (target < $recovery_target_s s)")
    fi
    target_results+=("recovery of $wal_mb MB WAL ($cache cache): $seconds s (target < $recovery_target_s s) $result")
    print_line "recovery of $wal_mb MB WAL: $seconds s ($cache cache), recovered_records $recovered, target < $recovery_target_s s: $result"
  done
  print_line "restart time: from just before exec until the first PONG, polled every 10 ms"
}

if [ "$recovery" -eq 1 ]; then
  measure_recovery
else
  echo
  print_line "recovery: skipped (--no-recovery)"
fi

# ---------------------------------------------------------------------------
# Summary

echo
for result in "${target_results[@]}"; do
  echo "target $result"
done
[ -z "$stretch_result" ] || echo "stretch $stretch_result"
for failure in "${failures[@]}"; do
  echo "FAIL $failure"
done

if [ ${#failures[@]} -gt 0 ]; then
  if [ "$quick" -eq 1 ]; then
    echo "quick run: missed targets do not fail it (exit 0)"
    exit 0
  fi
  exit 1
fi
exit 0
