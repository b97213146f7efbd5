#!/usr/bin/env bash
# Runs every fuzz target for the given number of seconds each (default 60) and fails on any
# crash. Built on the stable toolchain with plain cargo + libfuzzer-sys: the flags below are
# the coverage instrumentation `cargo fuzz build --sanitizer none` passes (all stable rustc
# flags), so neither nightly nor cargo-fuzz is needed. Corpora: fuzz/corpus/<target>
# (seeds committed, the rest git-ignored); crashes: fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
export CARGO_TARGET_DIR="$PWD/target"
# RUSTFLAGS apply only to the target (not to build scripts and proc macros) with --target.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"
targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^portcullis-fuzz$')
cargo build --release --target "$triple" ${FUZZ_JOBS:+-j "$FUZZ_JOBS"} --bins
failed=()
total=0
printf '%-18s %14s %8s %s\n' target executions corpus result
for t in $targets; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log="artifacts/$t/last-run.log"
  rc=0
  "target/$triple/release/$t" -max_total_time="$secs" -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    "corpus/$t" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  size=$(find "corpus/$t" -type f | wc -l)
  total=$((total + ${execs:-0}))
  if [ "$rc" -eq 0 ]; then res=ok; else res="CRASH (see $log)"; failed+=("$t"); fi
  printf '%-18s %14s %8s %s\n' "$t" "${execs:-?}" "$size" "$res"
done
echo "total executions: $total"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]}" >&2
  for t in "${failed[@]}"; do tail -n 30 "artifacts/$t/last-run.log" >&2; done
  exit 1
fi
