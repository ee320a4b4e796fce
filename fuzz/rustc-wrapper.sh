#!/usr/bin/env bash
# RUSTC_WRAPPER of the default fuzz build (fuzz/run.sh, FUZZ_SANITIZER=none): libFuzzer's
# coverage instrumentation, the flags `cargo fuzz build` passes, for the project's own crates
# only (vmsbench, simulators and the fuzz targets: every crate whose manifest lies in this
# repository), never their build scripts. Every other crate is compiled exactly as the
# workspace's dev profile compiles it, so cargo finds it already built by `cargo test`.
# Cargo does not see the flags added here: after changing them, touch the three crates'
# sources (harness, simulators, fuzz) so that cargo compiles them again.
set -euo pipefail

rustc=$1
shift
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)

ours=0
case ${CARGO_MANIFEST_DIR:-} in
"$root"/*) ours=1 ;;
esac
flags=()
if ((ours)); then
    prev=
    for arg in "$@"; do
        # Build scripts and proc macros run inside the build, without libFuzzer to link.
        if [[ $prev == --crate-name && $arg == build_script_* ]] ||
            [[ $prev == --crate-type && $arg == proc-macro ]]; then
            ours=0
        fi
        prev=$arg
    done
fi
if ((ours)); then
    flags=(
        -Cpasses=sancov-module
        -Cllvm-args=-sanitizer-coverage-level=4
        -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
        -Cllvm-args=-sanitizer-coverage-pc-table
        -Cllvm-args=-sanitizer-coverage-trace-compares
        -Cllvm-args=-sanitizer-coverage-stack-depth
        -Cllvm-args=-simplifycfg-branch-fold-threshold=0
        -Clink-dead-code
        --cfg fuzzing
        --check-cfg "cfg(fuzzing)"
    )
fi
# A wrapper the caller had (sccache, say) still runs, inside this one.
exec ${VMSBENCH_FUZZ_INNER_WRAPPER:+"$VMSBENCH_FUZZ_INNER_WRAPPER"} "$rustc" "$@" "${flags[@]}"
