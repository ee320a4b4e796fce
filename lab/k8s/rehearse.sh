#!/usr/bin/env bash
# Plays a preset's Kubernetes manifests on this Docker host: one container per pod the Jobs
# would start, with the pod's hostname and its DNS name behind the headless Service
# (`recorders-0.vmsbench`, …) as a network alias on a private network, and exactly the
# arguments the manifests give (JOB_COMPLETION_INDEX filled in). It checks what a schema
# cannot: that the coordinator's --place and --host rules, the agents' names and the names
# they dial fit together and make a run. Not checked: the cluster itself (scheduling, the
# volume, resource limits, security contexts).
#
#   lab/k8s/rehearse.sh PRESET [--image IMAGE] [--reports DIR] [-- EXTRA COORDINATOR ARGS…]
#
# e.g. lab/k8s/rehearse.sh small -- --duration=3s --repeat=1. The reports land in DIR
# (default: a new temporary directory, printed); the exit status is the coordinator's.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
preset="${1:?usage: lab/k8s/rehearse.sh PRESET [--image IMAGE] [--reports DIR] [-- ARGS…]}"
shift
image="vmsbench:latest"
reports=""
while [ $# -gt 0 ]; do
    case "$1" in
        --image) image="$2"; shift 2 ;;
        --reports) reports="$2"; shift 2 ;;
        --) shift; break ;;
        *) echo "rehearse.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -d "lab/k8s/$preset" ] || { echo "rehearse.sh: no lab/k8s/$preset" >&2; exit 2; }
[ -n "$reports" ] || reports="$(mktemp -d)"
mkdir -p "$reports"
chmod 0777 "$reports"

# The manifests are read with the validator's Python (PyYAML); validate.sh installs it.
requirements="$here/requirements.txt"
stamp="$(cksum <"$requirements" | cut -d ' ' -f 1)"
venv="${VMSBENCH_K8S_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/vmsbench/kubernetes-validate-$stamp}"
if ! "$venv/bin/python" -c 'import yaml' 2>/dev/null; then
    "$here/validate.sh" >/dev/null
fi
pods="$("$venv/bin/python" - "lab/k8s/$preset" <<'PY'
import glob, sys, yaml
for path in sorted(glob.glob(sys.argv[1] + "/*.yaml")):
    for doc in yaml.safe_load_all(open(path)):
        if not doc or doc.get("kind") != "Job":
            continue
        spec = doc["spec"]
        pod = spec["template"]["spec"]
        args = pod["containers"][0]["args"]
        for i in range(spec.get("completions", 1)):
            host = pod.get("hostname") or f"{doc['metadata']['name']}-{i}"
            filled = [a.replace("$(JOB_COMPLETION_INDEX)", str(i)) for a in args]
            print("\t".join([host, f"{host}.{pod['subdomain']}", *filled]))
PY
)"

run="vmsbench-rehearsal-$$"
docker network create --internal "$run" >/dev/null
cleanup() {
    docker ps -aq --filter "label=$run" | xargs -r docker rm -f >/dev/null 2>&1 || true
    docker network rm "$run" >/dev/null 2>&1 || true
}
trap cleanup EXIT
token="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
while IFS=$'\t' read -r host dns args; do
    read -r -a argv <<<"$args"
    extra=()
    mount=()
    if [ "$host" = coordinator ]; then
        extra=("$@")
        mount=(--volume "$reports:/reports" --user "$(id -u)")
    fi
    docker run --detach --label "$run" --name "$run-$host" --network "$run" \
        --network-alias "$dns" --hostname "$host" "${mount[@]}" \
        --env "VMSBENCH_TOKEN=$token" "$image" "${argv[@]}" "${extra[@]}" >/dev/null
done <<<"$pods"
code="$(docker wait "$run-coordinator")"
docker logs "$run-coordinator" 2>&1
echo "rehearsal of lab/k8s/$preset: coordinator exited $code; reports in $reports" >&2
exit "$code"
