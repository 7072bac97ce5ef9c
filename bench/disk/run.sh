#!/usr/bin/env bash
# Measures what the seccomp disk-fault supervisor (nemesis/disk.c) costs:
# fl-kvd SET throughput and latency with and without it, and the time it
# adds to single file-system calls. See bench/disk/README.md.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bench/disk/run.sh [OPTIONS] [BUILD_DIR]

Runs two measurements, each once plainly and once under the disk-fault
supervisor (disk_supervise, no fault armed), taking turns:

1. fl-kvd --sync always on a free loopback port with a fresh data
   folder, loaded by kv_set_load with 16-byte SETs from 1 and from 50
   clients. Prints SET/s, p50 and p99 latency, the supervised/plain
   throughput ratio and the supervisor's notifications per SET.
2. disk_call_cost, which times single writes, pwrites, fsyncs,
   fdatasyncs, creating opens and renames. Prints the median and mean
   microseconds per call and what the supervisor adds.

BUILD_DIR is the CMake build folder (default: build). It must contain
systems/kv/fl-kvd and bench/disk/{disk_supervise,kv_set_load,
disk_call_cost}; build them with
  cmake -S . -B build && cmake --build build -j2

Options:
  --quick                 smoke test: 2 s per SET run after 0.5 s of
                          warmup, one repetition, 1000 timed calls of
                          each kind (100 of the slow kinds)
  --markdown              print the tables as Markdown
  --seconds S             measured seconds of each SET run (default
                          $FL_BENCH_SECONDS, else 10)
  --warmup S              seconds of load before each measured window,
                          not counted (default $FL_BENCH_WARMUP_SECONDS,
                          else 2)
  --reps N                runs of each row and mode (default 3); the
                          tables show the median
  --iterations N          timed calls of each fast kind (default 10000)
  --slow-iterations N     timed calls of the kinds that flush to the
                          disk or leave a file behind: fdatasync, fsync,
                          openat-create, rename-replace (default 1000)
  --data-dir-parent DIR   folder on the disk to measure; the script
                          creates its temporary folder inside it and
                          removes it on exit (default: $TMPDIR or /tmp).
                          tmpfs and ramfs are rejected because fsync
                          costs nothing there
  -h, --help              show this help

Requires Linux 5.19 or later (for the supervisor), ss (iproute2) and
sync from coreutils 8.24 or later.

Exit codes: 0 when every run finished, 1 when a server, the supervisor
or a benchmark program failed, 2 on a usage or setup error.
EOF
}

die() {
  echo "run.sh: $*" >&2
  exit 2
}

# Reports a failure of a measured program and exits with 1.
fail() {
  echo "run.sh: error: $*" >&2
  exit 1
}

readonly client_counts=(1 50)

build_dir=build
build_dir_given=0
quick=0
markdown=0
seconds=${FL_BENCH_SECONDS:-}
warmup=${FL_BENCH_WARMUP_SECONDS:-}
reps=
iterations=
slow_iterations=
data_dir_parent=${TMPDIR:-/tmp}

while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --markdown) markdown=1 ;;
    --seconds | --warmup | --reps | --iterations | --slow-iterations | --data-dir-parent)
      [ $# -ge 2 ] || die "$1 requires a value"
      case $1 in
        --seconds) seconds=$2 ;;
        --warmup) warmup=$2 ;;
        --reps) reps=$2 ;;
        --iterations) iterations=$2 ;;
        --slow-iterations) slow_iterations=$2 ;;
        --data-dir-parent) data_dir_parent=$2 ;;
      esac
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
  seconds=${seconds:-2}
  warmup=${warmup:-0.5}
  reps=${reps:-1}
  iterations=${iterations:-1000}
  slow_iterations=${slow_iterations:-100}
else
  seconds=${seconds:-10}
  warmup=${warmup:-2}
  reps=${reps:-3}
  iterations=${iterations:-10000}
  slow_iterations=${slow_iterations:-1000}
fi
if [[ ! $seconds =~ ^[0-9]+(\.[0-9]+)?$ ]] || [[ $seconds =~ ^0+(\.0+)?$ ]]; then
  die "invalid --seconds '$seconds': expected a positive number of seconds"
fi
[[ $warmup =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "invalid --warmup '$warmup': expected a number of seconds"
for setting in reps iterations slow_iterations; do
  [[ ${!setting} =~ ^[1-9][0-9]*$ ]] ||
    die "invalid --${setting//_/-} '${!setting}': expected a positive integer"
done

# ---------------------------------------------------------------------------
# Setup checks

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ -d "$build_dir" ] || die "build folder '$build_dir' not found; build first: cmake -S . -B $build_dir && cmake --build $build_dir -j2"
build_dir=$(cd "$build_dir" && pwd)
fl_kvd="$build_dir/systems/kv/fl-kvd"
disk_supervise="$build_dir/bench/disk/disk_supervise"
kv_set_load="$build_dir/bench/disk/kv_set_load"
disk_call_cost="$build_dir/bench/disk/disk_call_cost"
for program in "$fl_kvd" "$disk_supervise" "$kv_set_load" "$disk_call_cost"; do
  [ -x "$program" ] ||
    die "$program not found; build it first: cmake -S . -B $build_dir && cmake --build $build_dir -j2"
done
command -v ss >/dev/null || die "ss not found; install the Debian package iproute2"

build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_dir/CMakeCache.txt" 2>/dev/null || true)
sanitize=$(sed -n 's/^FL_SANITIZE:BOOL=//p' "$build_dir/CMakeCache.txt" 2>/dev/null || true)
if [ "$sanitize" = ON ]; then
  echo "run.sh: warning: $build_dir is built with sanitizers (FL_SANITIZE=ON), which slow every program down; measure a build without them" >&2
fi

[ -d "$data_dir_parent" ] || die "--data-dir-parent '$data_dir_parent' is not a folder"
[ -w "$data_dir_parent" ] || die "--data-dir-parent '$data_dir_parent' is not writable"
read -r fs_device fs_type fs_mount < <(df -PT "$data_dir_parent" | awk 'NR == 2 { print $1, $2, $7 }')
case $fs_type in
  tmpfs | ramfs)
    die "--data-dir-parent '$data_dir_parent' is on $fs_type, where fsync costs nothing; pass a folder on a disk"
    ;;
esac

work_dir=$(mktemp -d "$data_dir_parent/fl-bench-disk.XXXXXX")
# A SET run lasts the warmup and the window, plus up to 10 s for the
# server to reply to PING. The margin covers a slow start or stop.
client_timeout_s=$(awk -v s="$seconds" -v w="$warmup" 'BEGIN { printf "%d", s + w + 70 }')
bench_grace_s=5
# shellcheck source=bench/lib.sh
source "$repo_root/bench/lib.sh"
bench_trap_exit

# ---------------------------------------------------------------------------
# Servers

# Waits until the server started as pid listens on port. The listener is
# pid itself, or in a supervised run its child fl-kvd. Returns 1 when the
# server exited first or timeout_s passed.
wait_for_listener() { # pid port timeout_s
  local pid=$1 port=$2 listener parent
  for _ in $(seq $(($3 * 100))); do
    kill -0 "$pid" 2>/dev/null || return 1
    listener=$(ss -Htlnp "sport = :$port" | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2)
    if [ -n "$listener" ]; then
      parent=$(ps -o ppid= -p "$listener" | tr -d ' ')
      [ "$listener" = "$pid" ] || [ "$parent" = "$pid" ] ||
        die "a process other than the fl-kvd started as pid $pid (pid $listener) is listening on 127.0.0.1:$port"
      return 0
    fi
    sleep 0.01
  done
  return 1
}

# Starts fl-kvd on a free loopback port, under disk_supervise when mode
# is supervised. Sets server_pid and server_port. Retries with another
# port when the port was taken in the meantime.
start_fl_kvd() { # mode data_dir log_file
  local mode=$1 data_dir=$2 log_file=$3 attempt port pid log_offset
  local -a command
  for attempt in 1 2 3; do
    pick_free_port
    port=$free_port
    command=("$fl_kvd" --data-dir "$data_dir" --listen "127.0.0.1:$port" --sync always)
    [ "$mode" = plain ] || command=("$disk_supervise" "$data_dir" "${command[@]}")
    log_offset=$(stat -c %s "$log_file" 2>/dev/null || echo 0)
    "${command[@]}" >>"$log_file" 2>&1 &
    pid=$!
    running[$pid]="fl-kvd ($mode)"
    if wait_for_listener "$pid" "$port" 10; then
      server_pid=$pid
      server_port=$port
      return 0
    fi
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "running[$pid]"
    # Only this attempt's lines count, because a log file serves several starts.
    tail -c +$((log_offset + 1)) "$log_file" | grep -q 'Address already in use' || break
    echo "run.sh: port $port was taken before fl-kvd could listen on it (attempt $attempt); trying another" >&2
  done
  echo "--- last lines of $log_file:" >&2
  tail -n 20 "$log_file" >&2
  fail "fl-kvd ($mode) did not listen on 127.0.0.1:$port within 10 s"
}

# Sends SIGTERM and waits up to 30 s for a clean exit with status 0.
# disk_supervise passes the signal on and exits with fl-kvd's status.
stop_server() { # pid log_file
  bench_stop_server "$1" "$2" 30
}

# Prints the sum of the supervisor's notification counts from the stats
# line disk_supervise wrote to the log.
notifications_in() { # log_file
  awk '/^disk_supervise: stats / {
      n = 0
      for (i = 3; i <= NF; i++) {
        split($i, field, "=")
        if (field[1] ~ /^(write|fsync|sync_range|resize|open|rename|unlink)$/) n += field[2]
      }
      print n
      found = 1
    }
    END { if (!found) exit 1 }' "$1"
}

# Prints the value of key in a line of key=value fields.
field() { # line key
  sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"
}

# ---------------------------------------------------------------------------
# Measurement

declare -A samples=() # "row mode metric" -> space-separated values, one per repetition

# Writes back the dirty pages of earlier runs, so that their writeback
# does not fall into the next run.
write_back_dirty_pages() {
  sync -f "$work_dir"
}

# One SET run: a fresh fl-kvd and data folder, loaded by kv_set_load.
measure_set() { # mode clients rep
  local mode=$1 clients=$2 rep=$3 dir="$work_dir/set-$1-$2-$3" status=0 line total notifications
  mkdir -p "$dir/data"
  write_back_dirty_pages
  start_fl_kvd "$mode" "$dir/data" "$dir/server.log"
  run_client /dev/null "$dir/load.out" "$dir/load.err" "$kv_set_load" \
    --addr "127.0.0.1:$server_port" --clients "$clients" --seconds "$seconds" --warmup "$warmup" ||
    status=$?
  if [ "$status" -ne 0 ]; then
    cat "$dir/load.err" >&2
    echo "--- last lines of $dir/server.log:" >&2
    tail -n 20 "$dir/server.log" >&2
    fail "kv_set_load with $clients clients against fl-kvd ($mode) exited with status $status"
  fi
  stop_server "$server_pid" "$dir/server.log"

  line=$(cat "$dir/load.out")
  samples["set $clients $mode rps"]+=" $(field "$line" ops_per_s)"
  samples["set $clients $mode p50"]+=" $(field "$line" p50_ms)"
  samples["set $clients $mode p99"]+=" $(field "$line" p99_ms)"
  if [ "$mode" = supervised ]; then
    total=$(field "$line" total_ops)
    notifications=$(notifications_in "$dir/server.log") ||
      fail "no stats line from disk_supervise in $dir/server.log"
    samples["set $clients $mode notifications"]+=" $(awk -v n="$notifications" -v t="$total" 'BEGIN { printf "%.3f", n / t }')"
  fi
  rm -rf "$dir"
}

# One run of disk_call_cost in fresh folders.
measure_calls() { # mode rep
  local mode=$1 dir="$work_dir/calls-$1-$2" status=0 line name
  local -a command
  mkdir -p "$dir/data" "$dir/outside"
  write_back_dirty_pages
  command=("$disk_call_cost" --data-dir "$dir/data" --outside-dir "$dir/outside"
    --iterations "$iterations" --slow-iterations "$slow_iterations")
  [ "$mode" = plain ] || command=("$disk_supervise" "$dir/data" "${command[@]}")
  run_client /dev/null "$dir/calls.out" "$dir/calls.err" "${command[@]}" || status=$?
  if [ "$status" -ne 0 ]; then
    cat "$dir/calls.out" "$dir/calls.err" >&2
    fail "disk_call_cost ($mode) exited with status $status"
  fi
  while read -r line; do
    name=$(field "$line" call)
    [ -n "$name" ] || continue
    call_names[$name]=1
    samples["call $name $mode p50"]+=" $(field "$line" p50_us)"
    samples["call $name $mode mean"]+=" $(field "$line" mean_us)"
  done <"$dir/calls.out"
  # The folder stays until the script exits, because on ext4 without a
  # journal thousands of freed inodes would slow down file creation in
  # the next run (see disk_call_cost's rename-replace).
}

median() {
  printf '%s\n' "$@" | sort -g | awk '
    { value[NR] = $1 }
    END { if (NR % 2) print value[(NR + 1) / 2]; else print (value[NR / 2] + value[NR / 2 + 1]) / 2 }'
}

# Prints the median of the samples stored under key.
median_of() { # key
  # Word splitting of the sample list is intended.
  # shellcheck disable=SC2086
  median ${samples[$1]}
}

# ---------------------------------------------------------------------------
# Formatting

print_set_row() { # clients plain_rps supervised_rps ratio plain_latency supervised_latency notifications
  if [ "$markdown" -eq 1 ]; then
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$@"
  else
    printf '%7s %11s %11s %6s %15s %15s %13s\n' "$@"
  fi
}

print_call_row() { # call plain_p50 supervised_p50 added_p50 plain_mean supervised_mean added_mean
  if [ "$markdown" -eq 1 ]; then
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$@"
  else
    printf '%-22s %10s %10s %10s %10s %10s %10s\n' "$@"
  fi
}

report_set_row() { # clients
  local clients=$1 plain_rps supervised_rps ratio
  plain_rps=$(median_of "set $clients plain rps")
  supervised_rps=$(median_of "set $clients supervised rps")
  ratio=$(awk -v a="$supervised_rps" -v b="$plain_rps" 'BEGIN { printf "%.2f", a / b }')
  print_set_row "$clients" "$(printf '%.0f' "$plain_rps")" "$(printf '%.0f' "$supervised_rps")" "$ratio" \
    "$(printf '%.3f/%.3f' "$(median_of "set $clients plain p50")" "$(median_of "set $clients plain p99")")" \
    "$(printf '%.3f/%.3f' "$(median_of "set $clients supervised p50")" "$(median_of "set $clients supervised p99")")" \
    "$(printf '%.2f' "$(median_of "set $clients supervised notifications")")"
}

report_call_row() { # call
  local name=$1 plain_p50 supervised_p50 plain_mean supervised_mean
  plain_p50=$(median_of "call $name plain p50")
  supervised_p50=$(median_of "call $name supervised p50")
  plain_mean=$(median_of "call $name plain mean")
  supervised_mean=$(median_of "call $name supervised mean")
  print_call_row "$name" \
    "$(printf '%.2f' "$plain_p50")" "$(printf '%.2f' "$supervised_p50")" \
    "$(awk -v a="$supervised_p50" -v b="$plain_p50" 'BEGIN { printf "%+.2f", a - b }')" \
    "$(printf '%.2f' "$plain_mean")" "$(printf '%.2f' "$supervised_mean")" \
    "$(awk -v a="$supervised_mean" -v b="$plain_mean" 'BEGIN { printf "%+.2f", a - b }')"
}

# ---------------------------------------------------------------------------
# Header

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
source_revision=$(git -C "$repo_root" describe --always --dirty 2>/dev/null || echo unknown)

echo "disk-fault supervisor benchmark ($([ "$quick" -eq 1 ] && echo quick || echo full) run)"
echo "date:        $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "kernel:      $(uname -sr)"
echo "cpu:         ${cpu_model:-unknown}, $(nproc) cores online"
echo "load:        $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min; other processes slow every run down)"
echo "repository:  $source_revision; build: $build_dir (${build_type:-unknown build type}$([ "$sanitize" = ON ] && echo ", sanitizers on"); may be built from another revision)"
echo "data dirs:   $work_dir on $fs_type ($fs_device, mounted on $fs_mount)"
echo "SET runs:    fl-kvd --sync always (fdatasync before each reply, one per batch), 16-byte values,"
echo "             100000 keys, ${warmup} s warmup + ${seconds} s measured, $reps run(s) per row and mode"
echo "calls:       $iterations timed calls of each kind, $slow_iterations of the slow kinds; $reps run(s) per mode"
echo

# ---------------------------------------------------------------------------
# SET throughput and latency

for clients in "${client_counts[@]}"; do
  # The modes take turns, so a burst of other load falls on both.
  for rep in $(seq "$reps"); do
    measure_set plain "$clients" "$rep"
    measure_set supervised "$clients" "$rep"
  done
done

if [ "$markdown" -eq 1 ]; then
  print_set_row clients "plain SET/s" "supervised SET/s" ratio "plain p50/p99 ms" "supervised p50/p99 ms" "notifications/SET"
  echo "|---:|---:|---:|---:|---:|---:|---:|"
else
  print_set_row clients "plain SET/s" "superv SET/s" ratio "plain p50/p99" "superv p50/p99" "notif/SET"
fi
for clients in "${client_counts[@]}"; do
  report_set_row "$clients"
done
echo
echo "ratio: supervised SET/s divided by plain SET/s; latencies in ms; notifications/SET: seccomp"
echo "notifications the supervisor handled per SET sent, warmup included; each value is the median of $reps run(s)"
echo

# ---------------------------------------------------------------------------
# Cost per call

declare -A call_names=()
for rep in $(seq "$reps"); do
  measure_calls plain "$rep"
  measure_calls supervised "$rep"
done

# The order disk_call_cost prints them in.
call_order=(getppid write-untracked write-tracked pwrite-tracked pwrite-tracked-thread
  fdatasync-tracked fsync-tracked openat-create rename-new rename-replace)
for name in "${call_order[@]}"; do
  [ -n "${call_names[$name]:-}" ] || fail "disk_call_cost printed no line for $name"
done

if [ "$markdown" -eq 1 ]; then
  print_call_row call "plain p50 µs" "supervised p50 µs" "added p50 µs" "plain mean µs" "supervised mean µs" "added mean µs"
  echo "|---|---:|---:|---:|---:|---:|---:|"
else
  print_call_row call "plain p50" "superv p50" "added p50" "plain mean" "superv mean" "added mean"
fi
for name in "${call_order[@]}"; do
  report_call_row "$name"
done
echo
echo "microseconds per call; p50 is the median call of a run, mean its average; each value is the"
echo "median over $reps run(s); writes are 64 bytes"
