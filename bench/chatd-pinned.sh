#!/bin/sh
# Runs chatd pinned to one core, for `chat-bench ... --chatd bench/chatd-pinned.sh`
# under `taskset -c 1` (server core 0, load generator core 1).
# CHATD_BIN picks another build (e.g. the previous one, for same-run comparisons).
here=$(dirname "$0")
exec taskset -c "${CHATD_CPUS:-0}" "${CHATD_BIN:-$here/../target/release/chatd}" "$@"
