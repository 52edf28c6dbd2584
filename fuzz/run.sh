#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each, one after the other, at
# low priority, and prints one summary line per target (executions, time,
# crashes). Usage: fuzz/run.sh [SECONDS] [TARGET...]   (default 60 s, all)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain;
# without nightly it falls back to RUSTC_BOOTSTRAP=1 on stable.
# Corpora grow in fuzz/corpus/<target>, crashes land in
# fuzz/artifacts/<target>, logs in fuzz/logs/<target>.log.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(control_line query last_event_id jwt)

TOOLCHAIN=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  TOOLCHAIN=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi

# Targets whose inputs need room (the control splitter's 64 KiB lines are
# reached by repetition inside the target, so 4 KiB is enough everywhere).
MAX_LEN=4096
mkdir -p logs
status=0
for target in "${TARGETS[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  log="logs/$target.log"
  nice -n 19 cargo "${TOOLCHAIN[@]}" fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$SECONDS_EACH" -max_len="$MAX_LEN" -rss_limit_mb=2048 \
    -artifact_prefix="artifacts/$target/" -print_final_stats=1 >"$log" 2>&1 || status=1
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  crashes=$(find "artifacts/$target" -type f | wc -l)
  echo "$target: ${SECONDS_EACH}s, $execs executions, $crashes crash files (log: fuzz/$log)"
done
exit "$status"
