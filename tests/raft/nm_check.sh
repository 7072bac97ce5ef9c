#!/usr/bin/env bash
# Usage: nm_check.sh LIBRARY. Fails when the Raft core library references a
# function that would give it I/O, a clock, threads or a global random
# generator: the core must stay a pure state machine so the simulator can
# replay it exactly.
set -euo pipefail
lib=$1
forbidden='^(time|clock|clock_gettime|gettimeofday|nanosleep|usleep|sleep|rand|random|srand|srandom|drand48|lrand48|getrandom|pthread_.*|open|openat|close|read|write|pread|pwrite|pread64|pwrite64|fsync|fdatasync|socket|connect|accept|accept4|send|sendto|recv|recvfrom|epoll_.*|select|poll|fopen|fwrite|fread|printf|fprintf|puts|fputs|syslog|getpid|fork|exit|abort)$'
undefined=$(nm -u "$lib" | awk '{print $NF}' | sed 's/@.*//' | sort -u)
found=$(grep -E "$forbidden" <<<"$undefined" || true)
if [ -n "$found" ]; then
  echo "nm_check: $lib references functions the pure core must not use:" >&2
  echo "$found" | sed 's/^/  /' >&2
  exit 1
fi
echo "nm_check: $lib uses none of the forbidden functions ($(wc -l <<<"$undefined") undefined symbols checked)"
