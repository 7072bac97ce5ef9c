# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034 # variables shared with the sourcing script
# Helpers the benchmark scripts share; they source this file. A script sets
# work_dir (removed at exit), bench_grace_s (seconds between SIGTERM and
# SIGKILL at exit) and client_timeout_s (0: clients may run forever), puts
# each server it starts into `running` (pid -> name) and removes it once
# stopped, then calls bench_trap_exit.

declare -A running=() # pid -> name of each server started and not stopped
client_pids=()        # benchmark clients running in the background

# Stops every process the script started: SIGTERM, then SIGKILL for any
# still running after bench_grace_s. Removes the temporary folder.
# shellcheck disable=SC2317 # the EXIT trap calls it
bench_cleanup() {
  # A second Ctrl-C must not stop the cleanup half way; it takes at most
  # about bench_grace_s.
  trap '' INT TERM
  local pids=("${!running[@]}" "${client_pids[@]}") pid alive
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for _ in $(seq $((bench_grace_s * 10))); do
    alive=0
    for pid in "${pids[@]}"; do
      if kill -0 "$pid" 2>/dev/null; then alive=1; fi
    done
    [ "$alive" -eq 1 ] || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      echo "run.sh: process $pid (${running[$pid]:-benchmark client}) still running $bench_grace_s s after SIGTERM; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work_dir"
}

# Installs bench_cleanup for every way the script ends. An exit from the
# signal traps runs the EXIT trap, so Ctrl-C also cleans up.
bench_trap_exit() {
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# Stops a server the script started: SIGTERM, then waits up to timeout_s
# seconds for it to exit with status 0, and removes it from `running`.
# Fails (the script's fail) when it does not stop or exits with an error,
# showing the end of its log.
bench_stop_server() { # pid log_file timeout_s
  local pid=$1 log_file=$2 timeout_s=$3 name=${running[$1]} status=0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq $((timeout_s * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    fail "$name (pid $pid) did not stop within $timeout_s s of SIGTERM"
  fi
  wait "$pid" || status=$?
  unset "running[$pid]"
  if [ "$status" -ne 0 ]; then
    echo "--- last lines of $log_file:" >&2
    tail -n 20 "$log_file" >&2
    fail "$name (pid $pid) exited with status $status after SIGTERM"
  fi
}

# Runs a client command in the background with the given standard input,
# output and error files, and waits for it. Bash delays a trap until a
# foreground command ends, but `wait` returns at once on a signal, so Ctrl-C
# is handled while a long benchmark runs. The redirections sit on the
# command, not on this function, so that messages of the EXIT trap still
# reach the script's stderr. Pass the same file twice to merge both outputs.
# A client still running after client_timeout_s is stopped and fails.
run_client() { # stdin_file out_file err_file command...
  local stdin_file=$1 out_file=$2 err_file=$3 status=0
  shift 3
  if [ "$err_file" = "$out_file" ]; then
    timeout "$client_timeout_s" "$@" <"$stdin_file" >"$out_file" 2>&1 &
  else
    timeout "$client_timeout_s" "$@" <"$stdin_file" >"$out_file" 2>"$err_file" &
  fi
  client_pids=("$!")
  wait "${client_pids[0]}" || status=$?
  client_pids=()
  if [ "$client_timeout_s" -ne 0 ] && [ "$status" -eq 124 ]; then
    echo "run.sh: $1 did not finish within $client_timeout_s s" >>"$err_file"
  fi
  return "$status"
}

# Ports handed out already, so no two servers get the same one.
declare -A taken_ports=()
free_port=""

# Sets free_port to a free TCP port below the default Linux ephemeral port
# range (32768 to 60999). The kernel picks the local port of an outgoing
# connection from that range, so no client can take it between the check
# and the bind. It sets a variable rather than printing, because a command
# substitution would run it in a subshell, whose changes to taken_ports are lost.
pick_free_port() {
  local listening port
  listening=$(ss -Htln | awk '{ n = split($4, part, ":"); print part[n] }')
  while :; do
    port=$((20000 + RANDOM % 12000))
    if [ -z "${taken_ports[$port]:-}" ] && ! grep -qx "$port" <<<"$listening"; then
      break
    fi
  done
  taken_ports[$port]=1
  free_port=$port
}
