#!/usr/bin/env bash
# Runs every fuzz target under fuzz/ for SECONDS (default 60) each, one after another, on
# its committed seed corpus plus what earlier runs on this machine found. Installs
# cargo-fuzz if it is missing, builds all targets once, and fails if any target crashes
# (the crashing input is left in fuzz/artifacts/<target>/; see fuzz/README.md).
#
# Environment: FUZZ_SANITIZER (default none; "address" for ASan, slower to build and run),
# FUZZ_WORK (where found inputs accumulate, default fuzz/target/corpus).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-60}"
sanitizer="${FUZZ_SANITIZER:-none}"
work="${FUZZ_WORK:-target/corpus}"
# cargo-fuzz passes nightly-only flags (-Zsanitizer, sancov passes); the stable toolchain
# accepts them with this set.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi

cargo fuzz build -s "$sanitizer"

crashed=()
for target in $(cargo fuzz list); do
  mkdir -p "$work/$target"
  echo "fuzz: $target for ${seconds}s"
  # The first corpus directory receives new inputs; the committed seeds stay untouched.
  if ! cargo fuzz run -s "$sanitizer" "$target" "$work/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -timeout=30 -print_final_stats=1; then
    crashed+=("$target")
  fi
done

if [ ${#crashed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${crashed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz: no crash in any target"
