#!/bin/sh
# run-fuzzer.sh TARGET SEED_DIR WORK_DIR: fuzz for FUZZ_SECONDS (default 20)
# starting from the seeds; new inputs go to WORK_DIR, never the source tree.
set -eu
mkdir -p "$3"
exec "$1" -max_total_time="${FUZZ_SECONDS:-20}" -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 "$3" "$2"
