#!/usr/bin/env bash
# Counts fsync/fdatasync calls of one fresh apply on disk per contender,
# with `strace -f -c`, and prints a markdown table.
#
#   migrate-bench/fsyncs.sh [N]        (N = 100 by default)
#
# Each contender runs in its own process (`peers --once --only NAME`), so the
# count is that contender's alone: the harness's setup writes its files
# without syncing them.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100}"
command -v strace >/dev/null || { echo "strace is not installed (apt-get install -y strace)" >&2; exit 1; }
cargo build --quiet --release -p migrate-bench --features peers --bin peers
bin=target/release/peers
echo "| contender (fresh apply on disk, N = $n) | fsync | fdatasync |"
echo "|---|---:|---:|"
for c in floor-per-migration ours-per-migration refinery sqlx \
         floor-one-transaction ours-grouped refinery-grouped rusqlite_migration; do
    out=$(strace -f -c -e trace=fsync,fdatasync "$bin" --workload disk --n "$n" --once --only "$c" 2>&1 >/dev/null)
    count() { awk -v s="$1" '$NF == s { print $4 + 0; found = 1 } END { if (!found) print 0 }' <<<"$out"; }
    echo "| $c | $(count fsync) | $(count fdatasync) |"
done
