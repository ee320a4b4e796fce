#!/usr/bin/env bash
# Validates the Kubernetes manifests under lab/k8s offline, then proves that it can fail.
#
#   lab/k8s/validate.sh
#
# 1. Every manifest and every rendered kustomization against the Kubernetes OpenAPI schemas of
#    the versions pinned below, strictly (an unknown field is an error; so is an unknown kind
#    and a key given twice), and every run for what a schema cannot see (validate.py: the
#    coordinator's --place and --host rules against the agents the Jobs start and the preset's
#    roles, no restarts, the token from a Secret, reports on the volume, every pod within the
#    `restricted` Pod Security Standard, …).
# 2. A self-check: every file in testdata/ and a few mutations of the real manifests must be
#    rejected, each with the error it names; a check that cannot fail fails the script.
#
# Needs python3 (3.10 or later) and, to render kustomizations, kustomize or kubectl (else a
# built-in reader that understands only `resources` and `namespace`, which is all these use).
# kubernetes-validate and its dependencies (requirements.txt, pinned) are installed from PyPI
# into a virtual environment the first time: $VMSBENCH_K8S_VENV, by default
# ~/.cache/vmsbench/kubernetes-validate-<hash of requirements.txt> (pip's own settings apply: PIP_INDEX_URL for a
# mirror, PIP_FIND_LINKS for a directory of wheels). Validating never uses the network: the
# schemas are inside the package, and where unprivileged user namespaces are allowed
# (unshare -rn) the checks run in a network namespace with no interface at all.
# Exit status: 0 when everything passes, 1 on any problem (each printed as FAIL file: what).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."

k8s_versions=(1.30 1.37) # the oldest Kubernetes the manifests support, and the newest bundled
requirements="$here/requirements.txt"
kv_version="$(sed -n 's/^kubernetes-validate==//p' "$requirements")"
stamp="$(cksum <"$requirements" | cut -d ' ' -f 1)"
venv="${VMSBENCH_K8S_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/vmsbench/kubernetes-validate-$stamp}"
py="$venv/bin/python"
if ! "$py" -c "import sys, kubernetes_validate as k; sys.exit(k.__version__ != '$kv_version')" \
    2>/dev/null; then
    if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ]; then
        echo "FAIL $venv exists and is not a virtual environment: not replacing it" >&2
        exit 1
    fi
    echo "installing kubernetes-validate $kv_version into $venv" >&2
    python3 -m venv --clear "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
fi

# No network from here on, where this machine lets an unprivileged user say so.
offline=""
if command -v unshare >/dev/null 2>&1 && unshare -rn true 2>/dev/null; then
    offline="unshare -rn"
fi
check() { $offline "$py" "$here/validate.py" "${k8s_versions[@]/#/-k}" "$@"; }

status=0
check tree lab/k8s || status=1

echo "self-check: each broken input must be rejected, with its error"
rejected=0
expect_rejection() { # NAME LABEL EXPECTED OUTPUT RC
    local name="$1" label="$2" expected="$3" out="$4" rc="$5"
    if [ "$rc" -eq 0 ]; then
        echo "FAIL $name was accepted; it must be rejected with: $expected"
        status=1
    elif ! grep -qF -- "$expected" <<<"$out"; then
        echo "FAIL $name was rejected, but not with: $expected"
        sed 's/^/     | /' <<<"$out"
        status=1
    else
        rejected=$((rejected + 1))
        local why
        why="$(grep -F -- "$expected" <<<"$out" | head -n 1)"
        why="${why#"FAIL $label: "}"
        echo "ok   $name: $why" | cut -c 1-140
    fi
}
for f in lab/k8s/testdata/*.yaml; do
    expected="$(sed -n 's/^# expect: //p' "$f" | head -n 1)"
    if [ -z "$expected" ]; then
        echo "FAIL $f has no '# expect: …' line"
        status=1
        continue
    fi
    rc=0
    out="$(check check "$f" 2>&1)" || rc=$?
    expect_rejection "$f" "$f" "$expected" "$out" "$rc"
done

# The real manifests, rendered, with one mistake each:
#   PRESET | what is wrong | sed expression making it so | error expected
mutations=(
    'small|an agent no Job starts|s/--place=recorder-1=recorders-0/--place=recorder-1=recorders-7/|names agent recorders-7, which no Indexed Job starts'
    'small|a --host at the wrong pod|s/recorder-1.vms.test=recorders-0.vmsbench/recorder-1.vms.test=clients-0.vmsbench/|but recorder-1.vms.test runs in recorders-0'
    'small|a role the preset lacks|s/--place=phones=/--place=integrations=/|preset small has no role or server '"'"'integrations'"'"
    'medium|a server without --host|/--host=failover-1.vms.test=/d|no --host failover-1.vms.test=recorders-2.vmsbench'
    'medium|an agent no rule names|s/completions: 3/completions: 4/|starts agent clients-3, which no --place rule names'
    'medium|restarts|s/restartPolicy: Never/restartPolicy: OnFailure/|restartPolicy must be Never'
    'small|privilege escalation|s/allowPrivilegeEscalation: false/allowPrivilegeEscalation: true/|needs allowPrivilegeEscalation: false (restricted)'
)
for m in "${mutations[@]}"; do
    IFS='|' read -r preset what expr expected <<<"$m"
    if ! rendered="$(check render "lab/k8s/$preset")"; then
        echo "FAIL lab/k8s/$preset/ does not render (see above)"
        status=1
        continue
    fi
    mutated="$(sed -e "$expr" <<<"$rendered")"
    if [ "$mutated" = "$rendered" ]; then
        echo "FAIL lab/k8s/$preset/ with $what: $expr changes nothing (were the manifests changed?)"
        status=1
        continue
    fi
    rc=0
    label="lab/k8s/$preset/ with $what"
    out="$(check --label "$label" check - <<<"$mutated" 2>&1)" || rc=$?
    expect_rejection "$label" "$label" "$expected" "$out" "$rc"
done

if [ "$status" -eq 0 ]; then
    echo "PASS: lab/k8s valid against Kubernetes ${k8s_versions[*]} (kubernetes-validate" \
        "$kv_version, strict${offline:+, no network}); $rejected broken inputs rejected"
else
    echo "FAILED: see the FAIL lines above" >&2
fi
exit "$status"
