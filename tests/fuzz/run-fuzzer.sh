#!/bin/sh
# run-fuzzer.sh TARGET SEED_DIR WORK_DIR: fuzz for FUZZ_SECONDS (default 20)
# starting from the seeds; new inputs go to WORK_DIR, never the source tree.
# libFuzzer exits 77 on a crash by default, which meson reads as "skipped":
# a finding must fail the test.
set -eu
mkdir -p "$3"
exec "$1" -max_total_time="${FUZZ_SECONDS:-20}" -timeout=10 -rss_limit_mb=2048 \
	-error_exitcode=1 -timeout_exitcode=1 -artifact_prefix="$3/" \
	-print_final_stats=1 "$3" "$2"
