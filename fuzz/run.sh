#!/usr/bin/env bash
# fuzz/run.sh [seconds] [target...]
#
# Runs the fuzz targets (all, or those named) for the given number of seconds each (default 60)
# and fails on any crash. Built on the stable toolchain with plain cargo + libfuzzer-sys: the
# RUSTFLAGS below are the coverage instrumentation `cargo fuzz build --sanitizer none` passes
# (all stable rustc flags), so neither nightly nor cargo-fuzz is needed. Corpora:
# fuzz/corpus/<target> (seeds committed, the rest git-ignored); crashes: fuzz/artifacts/<target>/.
#
# Environment:
#   CARGO_TARGET_DIR  build directory (default fuzz/target)
#   FUZZ_PROFILE      cargo profile: release (default) or smoke (opt-level 1, no LTO, quick to build)
#   FUZZ_BUILD=0      do not build; run the binaries already in the target dir
#   FUZZ_JOBS=N       build with N jobs
#   FUZZ_LOCKED=1     require fuzz/Cargo.lock to be up to date (fail instead of updating it)
#   FUZZ_ARGS         extra libFuzzer flags for every target (e.g. "-jobs=2 -workers=2")
set -euo pipefail
cd "$(dirname "$0")"
here="$PWD"
secs="${1:-60}"
shift || true
case "$secs" in
  '' | *[!0-9]*) echo "usage: fuzz/run.sh [seconds] [target...]" >&2; exit 2 ;;
esac
profile="${FUZZ_PROFILE:-release}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
target_dir="${CARGO_TARGET_DIR:-$here/target}"
case "$target_dir" in /*) ;; *) target_dir="$OLDPWD/$target_dir" ;; esac
export CARGO_TARGET_DIR="$target_dir"
bin_dir="$target_dir/$triple/$profile"

all=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^portcullis-fuzz$')
if [ $# -gt 0 ]; then
  for t in "$@"; do
    if ! grep -qx -- "$t" <<<"$all"; then
      echo "fuzz: no target named '$t' (targets: $(echo $all))" >&2
      exit 2
    fi
  done
  targets="$*"
else
  targets="$all"
fi

if [ "${FUZZ_BUILD:-1}" != 0 ]; then
  # fuzz/Cargo.lock pins the fuzz crate's dependencies, the main crate's included (it is a
  # path dependency). When the main crate's dependencies change and fuzz/Cargo.lock was not
  # updated with them, build without --locked (cargo adds what is missing, keeping every other
  # pinned version) and say so, rather than fail CI on a clean clone. FUZZ_LOCKED=1 refuses.
  locked=(--locked)
  if ! cargo metadata --locked --format-version 1 >/dev/null 2>&1; then
    if [ "${FUZZ_LOCKED:-0}" = 1 ]; then
      echo "fuzz: fuzz/Cargo.lock is out of date (run: cd fuzz && cargo update -p portcullis)" >&2
      exit 1
    fi
    echo "fuzz: warning: fuzz/Cargo.lock is out of date with the main crate; building without" \
      "--locked (update it: cd fuzz && cargo update -p portcullis, and commit it)" >&2
    locked=()
  fi
  # RUSTFLAGS apply only to the target (not to build scripts and proc macros) with --target.
  export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"
  bins=()
  for t in $targets; do bins+=(--bin "$t"); done
  cargo build "${locked[@]}" --profile "$profile" --target "$triple" \
    ${FUZZ_JOBS:+-j "$FUZZ_JOBS"} "${bins[@]}"
fi

failed=()
total=0
total_corpus=0
printf '%-18s %14s %8s %s\n' target executions corpus result
for t in $targets; do
  if [ ! -x "$bin_dir/$t" ]; then
    echo "fuzz: $bin_dir/$t is not built (FUZZ_BUILD=0 with FUZZ_PROFILE=$profile?)" >&2
    exit 1
  fi
  mkdir -p "corpus/$t" "artifacts/$t"
  log="artifacts/$t/last-run.log"
  before=$(find "artifacts/$t" -maxdepth 1 -type f ! -name last-run.log | sort)
  rc=0
  # shellcheck disable=SC2086
  "$bin_dir/$t" -max_total_time="$secs" -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    ${FUZZ_ARGS:-} "corpus/$t" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | awk '{s+=$1} END {print s+0}')
  size=$(find "corpus/$t" -type f | wc -l)
  total=$((total + execs))
  total_corpus=$((total_corpus + size))
  if [ "$rc" -eq 0 ]; then
    res=ok
  else
    new=$(comm -13 <(echo "$before") <(find "artifacts/$t" -maxdepth 1 -type f ! -name last-run.log | sort) | sed 's|^|fuzz/|' | tr '\n' ' ')
    res="CRASH (exit $rc) artifact: ${new:-none written }log: fuzz/$log"
    failed+=("$t")
  fi
  printf '%-18s %14s %8s %s\n' "$t" "$execs" "$size" "$res"
done
printf '%-18s %14s %8s\n' total "$total" "$total_corpus"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]}" >&2
  for t in "${failed[@]}"; do
    echo "---- $t (fuzz/artifacts/$t/last-run.log, last 30 lines)" >&2
    tail -n 30 "artifacts/$t/last-run.log" >&2
    echo "reproduce: RUST_BACKTRACE=1 $bin_dir/$t fuzz/artifacts/$t/<crash-file> (see fuzz/README.md)" >&2
  done
  exit 1
fi
