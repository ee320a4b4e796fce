#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS; fails on any crash.
#
#   fuzz/run.sh SECONDS [TARGET…]
#
# All targets are built by one `cargo fuzz build` (release profile with debug assertions,
# AddressSanitizer) into target/fuzz, apart from the main build. The targets then run as
# many at a time as there are CPUs, each from its committed seeds (fuzz/corpus/TARGET) and
# the inputs earlier runs found (target/fuzz/corpus/TARGET, where new ones go). A crashing
# input is saved as fuzz/artifacts/TARGET/crash-… (or oom-…, timeout-…). One line per
# target at the end: executions, executions per second, coverage (cov: edges, ft: features),
# corpus size and verdict.
set -euo pipefail

usage() {
    echo "usage: $0 SECONDS [TARGET…]" >&2
    exit 2
}
[[ $# -ge 1 && $1 =~ ^[0-9]+$ && $1 -gt 0 ]] || usage
seconds=$1
shift

fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$fuzz_dir")
target_dir=${FUZZ_TARGET_DIR:-$root/target/fuzz}
triple=$(rustc -vV | sed -n 's/^host: //p')
# Memory per target: two at a time must fit beside the rest of a CI runner.
rss_limit_mb=${FUZZ_RSS_LIMIT_MB:-1024}

# cargo fuzz needs a nightly compiler; without one, stable with RUSTC_BOOTSTRAP.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    cargo=(cargo +nightly)
else
    export RUSTC_BOOTSTRAP=1
    cargo=(cargo)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cd "$fuzz_dir"
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <("${cargo[@]}" fuzz list)
fi

built=$(date +%s)
# One build for every target, even when only some run: they share all their dependencies.
mkdir -p "$target_dir"
if ! "${cargo[@]}" fuzz build --target-dir "$target_dir" >"$target_dir/build.log" 2>&1; then
    tail -40 "$target_dir/build.log" >&2
    exit 1
fi
echo "built in $(($(date +%s) - built)) s"

logs=$target_dir/logs
mkdir -p "$logs"

run_one() {
    local t=$1
    local bin=$target_dir/$triple/release/$t
    mkdir -p "$target_dir/corpus/$t" "$fuzz_dir/artifacts/$t" "$fuzz_dir/corpus/$t"
    "$bin" "$target_dir/corpus/$t" "$fuzz_dir/corpus/$t" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb="$rss_limit_mb" \
        -print_final_stats=1 -artifact_prefix="$fuzz_dir/artifacts/$t/" \
        >"$logs/$t.log" 2>&1
}

jobs=$(nproc 2>/dev/null || echo 1)
declare -A status=()
declare -A pid_of=()
running=0
for t in "${targets[@]}"; do
    if ((running >= jobs)); then
        wait -n || true
        running=$((running - 1))
    fi
    run_one "$t" &
    pid_of[$t]=$!
    running=$((running + 1))
done
for t in "${targets[@]}"; do
    if wait "${pid_of[$t]}"; then status[$t]=ok; else status[$t]=CRASH; fi
done

failed=0
printf '%-14s %12s %9s %7s %7s %7s  %s\n' target execs exec/s cov ft corpus result
for t in "${targets[@]}"; do
    log=$logs/$t.log
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
    result=${status[$t]}
    if [[ $result != ok ]]; then
        failed=1
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        result="CRASH ${artifact:-(see $log)}"
    fi
    printf '%-14s %12s %9s %7s %7s %7s  %s\n' "$t" "${execs:--}" "${rate:--}" "${cov:--}" \
        "${ft:--}" "${corp:--}" "$result"
done
if ((failed)); then
    echo "crashes found; logs in $logs" >&2
    for t in "${targets[@]}"; do
        [[ ${status[$t]} == ok ]] || grep -m5 -E 'panicked|ERROR|SUMMARY' "$logs/$t.log" >&2 || true
    done
fi
exit "$failed"
