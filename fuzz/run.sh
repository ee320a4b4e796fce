#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS; fails on any crash.
#
#   fuzz/run.sh SECONDS [TARGET…]
#
# Two builds, chosen by FUZZ_SANITIZER:
#
# - `none` (the default, what CI runs): `cargo build` of the dev profile into the main target
#   directory. fuzz/rustc-wrapper.sh instruments the project's own crates (vmsbench,
#   simulators, the targets) for libFuzzer, as `cargo fuzz build` would; every dependency is
#   compiled exactly as the workspace's dev profile compiles it, so after `cargo test
#   --workspace` only the project's crates, libfuzzer-sys and arbitrary are compiled (about
#   85 s of CPU, against 14 minutes of two cores for the build below). Stable Rust, no
#   cargo-fuzz. Coverage guides the fuzzer through the project's code only, and a fault shows
#   only as a panic, an abort, a timeout or running out of memory: no AddressSanitizer.
# - `address`: `cargo fuzz build` (release profile with debug assertions, AddressSanitizer,
#   everything instrumented) into target/fuzz, apart from the main build; for long runs by
#   hand. It needs cargo-fuzz (installed if missing) and nightly (else stable with
#   RUSTC_BOOTSTRAP=1).
#
# FUZZ_TARGET_DIR overrides the build's target directory. The targets then run as many at a
# time as there are CPUs, each from its committed seeds (fuzz/corpus/TARGET) and the inputs
# earlier runs found (target/fuzz/corpus/TARGET, where new ones go). A crashing input is saved
# as fuzz/artifacts/TARGET/crash-… (or oom-…, timeout-…). One line per target at the end:
# executions, executions per second, coverage (cov: edges, ft: features), corpus size and
# verdict.
set -euo pipefail

usage() {
    echo "usage: $0 SECONDS [TARGET…]  (FUZZ_SANITIZER=none|address)" >&2
    exit 2
}
[[ $# -ge 1 && $1 =~ ^[0-9]+$ && $1 -gt 0 ]] || usage
seconds=$1
shift

fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
root=$(dirname "$fuzz_dir")
# Corpus, logs and the build log, whichever build.
out=$root/target/fuzz
sanitizer=${FUZZ_SANITIZER:-none}
# Memory per target: two at a time must fit beside the rest of a CI runner.
rss_limit_mb=${FUZZ_RSS_LIMIT_MB:-1024}

# The targets are the [[bin]] sections of fuzz/Cargo.toml.
mapfile -t all < <(awk '/^\[\[bin\]\]/ { bin = 1; next }
    /^\[/ { bin = 0 }
    bin && /^name *=/ { gsub(/^name *= *"|".*$/, ""); print; bin = 0 }' "$fuzz_dir/Cargo.toml")
if [[ $# -gt 0 ]]; then
    targets=("$@")
    for t in "${targets[@]}"; do
        if [[ " ${all[*]} " != *" $t "* ]]; then
            echo "$0: no fuzz target '$t' (targets: ${all[*]})" >&2
            exit 2
        fi
    done
else
    targets=("${all[@]}")
fi

case $sanitizer in
none)
    target_dir=${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$root/target}}
    bin_dir=$target_dir/debug
    # A wrapper already configured (sccache, say) runs inside ours.
    export VMSBENCH_FUZZ_INNER_WRAPPER=${RUSTC_WRAPPER:-}
    build=(env RUSTC_WRAPPER="$fuzz_dir/rustc-wrapper.sh"
        cargo build --manifest-path "$fuzz_dir/Cargo.toml" --bins --target-dir "$target_dir")
    # The dependencies are shared with the workspace's dev builds only while both workspaces
    # compile them with the same settings.
    section() { awk '/^\[profile\.dev\.package\."\*"\]/ { on = 1; next } /^\[/ { on = 0 }
        on && NF' "$1"; }
    if [[ $(section "$root/Cargo.toml") != "$(section "$fuzz_dir/Cargo.toml")" ]]; then
        echo "NOTE: [profile.dev.package.\"*\"] differs between Cargo.toml and fuzz/Cargo.toml:" \
            "the fuzz build cannot share the workspace's dependencies" >&2
    fi
    ;;
address)
    target_dir=${FUZZ_TARGET_DIR:-$out}
    triple=$(rustc -vV | sed -n 's/^host: //p')
    bin_dir=$target_dir/$triple/release
    # cargo fuzz needs a nightly compiler; without one, stable with RUSTC_BOOTSTRAP.
    if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
        cargo=(cargo +nightly)
    else
        export RUSTC_BOOTSTRAP=1
        cargo=(cargo)
    fi
    if ! "${cargo[@]}" fuzz --version >/dev/null 2>&1; then
        cargo install cargo-fuzz --locked
    fi
    build=("${cargo[@]}" fuzz build --target-dir "$target_dir")
    ;;
*)
    echo "$0: FUZZ_SANITIZER must be none or address, not '$sanitizer'" >&2
    exit 2
    ;;
esac

built=$(date +%s)
# One build for every target, even when only some run: they share all their dependencies.
mkdir -p "$out"
if ! (cd "$fuzz_dir" && "${build[@]}") >"$out/build.log" 2>&1; then
    tail -40 "$out/build.log" >&2
    echo "$0: the fuzz build failed (sanitizer $sanitizer); its log is $out/build.log" >&2
    exit 1
fi
compiled=$(sed -n 's/^ *Compiling \([^ ]*\) .*/\1/p' "$out/build.log" | sort -u | paste -sd ' ')
echo "built in $(($(date +%s) - built)) s (sanitizer $sanitizer; compiled: ${compiled:-nothing})"

logs=$out/logs
mkdir -p "$logs"

run_one() {
    local t=$1
    mkdir -p "$out/corpus/$t" "$fuzz_dir/artifacts/$t" "$fuzz_dir/corpus/$t"
    "$bin_dir/$t" "$out/corpus/$t" "$fuzz_dir/corpus/$t" \
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
crashed=0
for t in "${targets[@]}"; do [[ ${status[$t]} == ok ]] || crashed=$((crashed + 1)); done
echo "fuzz: $((${#targets[@]} - crashed)) passed, $crashed failed"
if ((failed)); then
    echo "crashes found; logs in $logs" >&2
    for t in "${targets[@]}"; do
        [[ ${status[$t]} == ok ]] || grep -m5 -E 'panicked|ERROR|SUMMARY' "$logs/$t.log" >&2 || true
    done
fi
exit "$failed"
