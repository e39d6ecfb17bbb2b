#!/bin/sh
# Runs the release chatd under callgrind, for `chat-bench ... --spawn --chatd
# bench/chatd-callgrind.sh`: the instructions the server executes for a fixed
# workload (callgrind's "I refs", printed when it exits) do not depend on
# what else the machine is doing, unlike wall-clock figures.
here=$(dirname "$0")
exec valgrind --tool=callgrind --callgrind-out-file="${TMPDIR:-/tmp}/chatd.callgrind.%p" \
    "$here/../target/release/chatd" "$@"
