#!/usr/bin/env bash
# The register workload against real servers on loopback. A 3-node fl-raftd
# cluster runs the workload while its leader is killed with SIGKILL and
# restarted. Then one fl-kvd runs it while it is killed and restarted. For
# each, reg_driver checks that the history reader accepts the history, that
# the history is linearizable, that operations succeeded and that the final
# reads covered every key. This script also runs `faultline check` on each
# history, and checks that the leader's kill broke requests.
#
# Usage: register_servers.sh REG_DRIVER FL_RAFTD FL_KVD FAULTLINE
# FL_SEED fixes the workload seed; the seed is printed either way.
set -uo pipefail

driver=$1
raftd=$2
kvd=$3
faultline=$4
seed=${FL_SEED:-$(( $(date +%s%N) & 0x7fffffffffffffff ))}
echo "seed=$seed (set FL_SEED=$seed to repeat the operation choices)"

dir=$(mktemp -d /tmp/fl-wl-register.XXXXXX)
failures=0
declare -A node_pid=()
kvd_pid=
driver_pid=

cleanup() {
    for pid in "${node_pid[@]}" $kvd_pid $driver_pid; do
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [[ $failures -eq 0 ]]; then
        rm -rf "$dir"
    else
        echo "     logs and histories kept in $dir"
    fi
}
trap cleanup EXIT
trap 'failures=$((failures + 1)); exit 130' INT TERM

check() { # check CONDITION_EXIT_STATUS MESSAGE
    if [[ $1 -eq 0 ]]; then
        echo "ok   $2"
    else
        echo "FAIL $2"
        failures=$((failures + 1))
    fi
}

# Prints the value of FIELD from the driver output's "counts" line.
count_field() {
    sed -n "s/^counts .*\b$2=\([0-9-]*\).*/\1/p" "$1"
}

# Waits for the driver run NAME, shows its output, and checks its exit
# status and the verdict `faultline check` gives its history.
finish_run() { # finish_run NAME LABEL
    local name=$1 label=$2 status
    wait "$driver_pid"
    status=$?
    driver_pid=
    sed 's/^/     /' "$dir/$name.out"
    check $status "$label: reg_driver checks pass"
    "$faultline" check --model cas-register "$dir/$name.jsonl" >"$dir/$name.check" 2>&1
    check $? "$label: faultline check --model cas-register: $(grep -m 1 '^verdict' "$dir/$name.check")"
}

mapfile -t ports < <("$driver" free-ports 7)
if [[ ${#ports[@]} -ne 7 ]]; then
    echo "FAIL finding free loopback ports"
    failures=1
    exit 1
fi

# ---- fl-raftd: three nodes, the leader killed and restarted ----------------

peers="1=127.0.0.1:${ports[0]},2=127.0.0.1:${ports[1]},3=127.0.0.1:${ports[2]}"
clients="1=127.0.0.1:${ports[3]},2=127.0.0.1:${ports[4]},3=127.0.0.1:${ports[5]}"
addrs="127.0.0.1:${ports[3]},127.0.0.1:${ports[4]},127.0.0.1:${ports[5]}"

start_node() {
    local id=$1
    "$raftd" --id "$id" --peers "$peers" --clients "$clients" \
        --data-dir "$dir/node$id" --listen-client "127.0.0.1:${ports[$((id + 2))]}" \
        --election-timeout-ms 300 --heartbeat-ms 50 2>>"$dir/node$id.log" &
    node_pid[$id]=$!
}

wait_leader() {
    local leader=0
    for _ in $(seq 100); do
        leader=$("$driver" leader "$addrs")
        [[ $leader -ne 0 ]] && break
        sleep 0.1
    done
    echo "$leader"
}

for id in 1 2 3; do
    start_node "$id"
done
leader=$(wait_leader)
check $([[ $leader -ne 0 ]]; echo $?) "fl-raftd: a leader is elected (node $leader)"

# Debug logs name each request whose connection failed.
FL_LOG_LEVEL=debug "$driver" run --target raft --addrs "$addrs" \
    --history "$dir/raft.jsonl" --seconds 6 --seed "$seed" \
    >"$dir/raft.out" 2>"$dir/raft.err" &
driver_pid=$!
sleep 2
leader=$("$driver" leader "$addrs")
if [[ $leader -ne 0 ]]; then
    kill -KILL "${node_pid[$leader]}"
    wait "${node_pid[$leader]}" 2>/dev/null
    unset "node_pid[$leader]"
    sleep 1.5
    start_node "$leader"
fi
check $([[ $leader -ne 0 ]]; echo $?) "fl-raftd: leader node $leader killed with SIGKILL mid-run and restarted"
finish_run raft fl-raftd
# Every client has a connection open to the leader, so the kill breaks
# requests, which the workload retries elsewhere or records as info.
info=$(count_field "$dir/raft.out" info)
broken=$(grep -c 'msg="request failed"' "$dir/raft.err")
check $([[ $((${info:-0} + broken)) -gt 0 ]]; echo $?) \
    "fl-raftd: the kill broke requests that were retried or ended info (broken=$broken info=${info:-?})"

for id in "${!node_pid[@]}"; do
    kill -TERM "${node_pid[$id]}"
    wait "${node_pid[$id]}" 2>/dev/null
    unset "node_pid[$id]"
done

# ---- fl-kvd: one node, killed and restarted --------------------------------

start_kvd() {
    "$kvd" --data-dir "$dir/kv" --listen "127.0.0.1:${ports[6]}" 2>>"$dir/kvd.log" &
    kvd_pid=$!
}

start_kvd
"$driver" run --target kv --addrs "127.0.0.1:${ports[6]}" \
    --history "$dir/kv.jsonl" --seconds 4 --seed "$seed" \
    >"$dir/kv.out" 2>"$dir/kv.err" &
driver_pid=$!
sleep 1.5
kill -KILL "$kvd_pid"
wait "$kvd_pid" 2>/dev/null
sleep 0.5
start_kvd
finish_run kv fl-kvd
kill -TERM "$kvd_pid"
wait "$kvd_pid" 2>/dev/null
kvd_pid=

[[ $failures -eq 0 ]]
