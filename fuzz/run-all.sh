#!/usr/bin/env bash
# Runs every fuzz target for a fixed time, two at a time, and prints a
# Markdown table of the figures. Usage, from this directory:
#
#   ./run-all.sh            # the durations below
#   SCALE=0.1 ./run-all.sh  # a tenth of them (a quick check)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). On a stable
# toolchain RUSTC_BOOTSTRAP=1 lets rustc accept the -Z flags cargo-fuzz
# passes. Defects already reported (regressions/) are skipped so a run can
# look for new ones; unset MIGRATE_FUZZ_SKIP_KNOWN to check them too.
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
export MIGRATE_FUZZ_SKIP_KNOWN="${MIGRATE_FUZZ_SKIP_KNOWN-1}"
SCALE="${SCALE:-1}"
mkdir -p logs

# target:seconds:dictionary, run in pairs (two cores).
PAIRS=(
  "statement_split_vs_sqlite:240:sql scan:240:"
  "config:180:config statement_lines:150:sql"
  "file_name:120:file_name directives:120:directives"
)

cargo fuzz build >/dev/null

run() {
  local target=$1 seconds=$2 dict=$3
  local args=(-max_total_time="$seconds" -print_final_stats=1)
  [ -n "$dict" ] && args+=(-dict="dicts/$dict.dict")
  local start end
  start=$(date +%s)
  cargo fuzz run "$target" -- "${args[@]}" >"logs/$target.log" 2>&1 || true
  end=$(date +%s)
  echo $((end - start)) >"logs/$target.seconds"
}

for pair in "${PAIRS[@]}"; do
  pids=()
  for spec in $pair; do
    IFS=: read -r target seconds dict <<<"$spec"
    seconds=$(awk -v s="$seconds" -v k="$SCALE" 'BEGIN { printf "%d", s * k < 1 ? 1 : s * k }')
    run "$target" "$seconds" "$dict" &
    pids+=($!)
  done
  wait "${pids[@]}"
done

echo "| target | seconds | executions | exec/s | corpus (files / bytes) | crashes |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for pair in "${PAIRS[@]}"; do
  for spec in $pair; do
    target=${spec%%:*}
    log="logs/$target.log"
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{print $2}' || true)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | awk '{print $2}' || true)
    corp=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1 | awk '{print $2}' || true)
    crashes=$(grep -c 'Test unit written to' "$log" || true)
    echo "| $target | $(cat "logs/$target.seconds") | ${execs:-?} | ${rate:-?} | ${corp:-?} | $crashes |"
  done
done
