#!/usr/bin/env python3
"""Offline checks of vmsbench's Kubernetes manifests (run through validate.sh).

Two kinds of check, neither needing a cluster or the network:

* schema: every object against the Kubernetes OpenAPI schemas bundled by kubernetes-validate,
  in strict mode (an unknown field is an error), for each pinned Kubernetes version. A kind
  with no schema is an error too (kubernetes-validate itself only warns), and so is a key
  given twice in one mapping (YAML keeps the last one silently; kubectl refuses the file).
* run: what a schema cannot see, for every rendered kustomization holding a vmsbench run —
  that the coordinator's --place rules name exactly the agents the Indexed Jobs start, that
  every --place key is a role or server of the preset, that every server host has a --host
  rule naming the pod that runs it, that agents dial the coordinator's stable name, that no
  Job restarts a crashed part, that the token comes from the Secret, and so on. Every pod,
  run or not, is also held to the `restricted` Pod Security Standard, and every resource
  quantity to Kubernetes' syntax (the schema takes any string there).

Usage:
  validate.py tree DIR            every manifest and kustomization under DIR (not testdata/)
  validate.py check PATH|-...     files, kustomization directories or stdin, as one input each
  validate.py render DIR          print a kustomization as it would be applied
"""

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys

import yaml

try:
    import tomllib
except ImportError:  # Python < 3.11: the preset checks need tomli then
    import tomli as tomllib

import kubernetes_validate
from kubernetes_validate import utils as kv

HERE = os.path.dirname(os.path.abspath(__file__))
PRESETS = os.path.join(HERE, "..", "..", "harness", "presets")
DEFAULT_VERSIONS = ["1.30", "1.37"]
CONTROL_PORT = 7979
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
QUANTITY = re.compile(
    r"^[+-]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$"
)
INDEX_ANNOTATION = "metadata.annotations['batch.kubernetes.io/job-completion-index']"


class Problems:
    """Errors found so far, each naming where it is."""

    def __init__(self):
        self.items = []

    def add(self, where, what):
        self.items.append(f"{where}: {what}")

    def __bool__(self):
        return bool(self.items)


# ---------------------------------------------------------------------------------------------
# Reading YAML


class StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a mapping key given twice."""


def _mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_documents(text, where, problems):
    """The non-empty documents of a YAML stream; problems if it does not parse."""
    try:
        docs = [d for d in yaml.load_all(text, Loader=StrictLoader) if d is not None]
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problems.add(where, f"not valid YAML: {at}{e.problem or e.context}")
        return []
    except yaml.YAMLError as e:
        problems.add(where, f"not valid YAML: {e}".replace("\n", " "))
        return []
    out = []
    for i, d in enumerate(docs):
        if not isinstance(d, dict) or not d.get("apiVersion") or not d.get("kind") \
                or not isinstance(d.get("metadata"), dict) or not d["metadata"].get("name"):
            problems.add(where, f"document {i + 1} is not a Kubernetes object "
                                "(apiVersion, kind and metadata.name needed)")
            continue
        out.append(d)
    return out


def ref(obj):
    return f"{obj['kind']}/{obj['metadata']['name']}"


# ---------------------------------------------------------------------------------------------
# Rendering kustomizations


def kustomization_file(directory):
    for name in KUSTOMIZATION_NAMES:
        p = os.path.join(directory, name)
        if os.path.isfile(p):
            return p
    return None


def renderer():
    """The command that renders a kustomization, and how to name it; None for the built-in
    reader."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"], "kustomize build"
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"], "kubectl kustomize"
    return None, "the built-in reader (resources and namespace only: no kustomize or kubectl found)"


def sources(directory, seen=None):
    """Every manifest file a kustomization includes, through its bases."""
    seen = set() if seen is None else seen
    k = yaml.safe_load(open(kustomization_file(directory))) or {}
    for r in k.get("resources") or []:
        p = os.path.normpath(os.path.join(directory, r))
        if os.path.isdir(p):
            if kustomization_file(p):
                sources(p, seen)
        else:
            seen.add(p)
    return seen


CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume",
                  "StorageClass", "CustomResourceDefinition", "PriorityClass"}


def read_kustomization(directory, problems):
    """What the built-in reader makes of a kustomization: its resources, with its namespace.
    Refuses what it does not understand rather than render it wrong."""
    path = kustomization_file(directory)
    k = yaml.safe_load(open(path)) or {}
    unknown = set(k) - {"apiVersion", "kind", "namespace", "resources"}
    if unknown:
        problems.add(path, f"uses {', '.join(sorted(unknown))}: install kustomize or kubectl "
                           "to render it")
        return []
    objects = []
    for r in k.get("resources") or []:
        p = os.path.normpath(os.path.join(directory, r))
        if os.path.isdir(p):
            objects += read_kustomization(p, problems)
        else:
            objects += load_documents(open(p).read(), p, problems)
    for o in objects:
        if k.get("namespace") and o["kind"] not in CLUSTER_SCOPED:
            o["metadata"]["namespace"] = k["namespace"]
    return objects


def render(directory, problems):
    """The objects a kustomization applies, and the YAML text of them."""
    cmd, _ = renderer()
    if cmd is None:
        objects = read_kustomization(directory, problems)
        return objects, yaml.safe_dump_all(objects, sort_keys=False)
    done = subprocess.run(cmd + [directory], capture_output=True, text=True)
    if done.returncode != 0:
        problems.add(directory, f"{' '.join(cmd)} failed: {done.stderr.strip()}")
        return [], ""
    return load_documents(done.stdout, directory, problems), done.stdout


# ---------------------------------------------------------------------------------------------
# Schemas


def check_schemas(objects, where, versions, problems):
    """Each object against each version's strict schema; one line per distinct error."""
    for obj in objects:
        found = collections.OrderedDict()
        for v in versions:
            try:
                kubernetes_validate.validate(obj, v, strict=True)
            except kv.VersionNotSupportedError:
                sys.exit(f"FAIL kubernetes-validate {kubernetes_validate.__version__} has no "
                         f"schemas for Kubernetes {v} (it has up to {kv.latest_version()})")
            except kv.ValidationError as e:
                path = ".".join(str(p) for p in e.path) or "(top)"
                found.setdefault(f"{path}: {e.message}", []).append(v)
            except kv.SchemaNotFoundError:
                found.setdefault(
                    f"no schema for kind {obj['kind']} in {obj['apiVersion']} (a typo, or a kind "
                    "this version does not have)", []).append(v)
        for what, vs in found.items():
            problems.add(f"{where}: {ref(obj)}", f"{what} [Kubernetes {', '.join(vs)}]")


def check_quantities(objects, where, problems):
    for obj in objects:
        for c in containers(obj):
            for part in ("requests", "limits"):
                for name, q in ((c.get("resources") or {}).get(part) or {}).items():
                    if not QUANTITY.match(str(q)):
                        problems.add(f"{where}: {ref(obj)}",
                                     f"container {c.get('name')}: {part}.{name} {q!r} is not a "
                                     "quantity (e.g. 500m, 2, 512Mi)")


def check_restricted(objects, where, problems):
    """Every pod within the `restricted` Pod Security Standard, as the README promises."""
    for obj in objects:
        spec = pod_spec(obj)
        if not spec:
            continue
        psc = spec.get("securityContext") or {}
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(key):
                problems.add(f"{where}: {ref(obj)}", f"{key}: not allowed (restricted)")
        for v in spec.get("volumes") or []:
            if "hostPath" in v:
                problems.add(f"{where}: {ref(obj)}", f"volume {v.get('name')}: hostPath is not "
                                                     "allowed (restricted)")
        for c in containers(obj):
            csc = c.get("securityContext") or {}
            say = lambda what: problems.add(f"{where}: {ref(obj)}",
                                            f"container {c.get('name')}: {what} (restricted)")
            if not (csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
                say("needs runAsNonRoot: true")
            if csc.get("runAsUser", psc.get("runAsUser")) == 0:
                say("runs as user 0")
            seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                say("needs seccompProfile RuntimeDefault")
            if csc.get("allowPrivilegeEscalation") is not False:
                say("needs allowPrivilegeEscalation: false")
            if csc.get("privileged"):
                say("privileged")
            if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
                say("needs capabilities.drop [ALL]")


# ---------------------------------------------------------------------------------------------
# Runs: what the schemas cannot see


def pod_spec(obj):
    if obj["kind"] == "Pod":
        return obj.get("spec") or {}
    if obj["kind"] == "Job":
        return ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return {}


def pod_labels(obj):
    if obj["kind"] == "Pod":
        return obj["metadata"].get("labels") or {}
    return (((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}


def containers(obj):
    spec = pod_spec(obj)
    return (spec.get("initContainers") or []) + (spec.get("containers") or [])


BOOLEAN_FLAGS = {"--resolve"}


def parse_args(args):
    """(positionals, [(flag, value)]) of a vmsbench command line as Kubernetes passes it."""
    positional, flags, i = [], [], 0
    while i < len(args):
        a = str(args[i])
        if a.startswith("--") and "=" in a:
            flag, value = a.split("=", 1)
            flags.append((flag, value))
        elif a.startswith("--") and a not in BOOLEAN_FLAGS and i + 1 < len(args):
            flags.append((a, str(args[i + 1])))
            i += 1
        elif a.startswith("--"):
            flags.append((a, None))
        else:
            positional.append(a)
        i += 1
    return positional, flags


def values(flags, name):
    return [v for f, v in flags if f == name]


def preset_roles(preset):
    """The server hosts of a built-in preset (host → runtime) and its client groups."""
    path = os.path.join(PRESETS, f"{preset}.toml")
    if not os.path.isfile(path):
        return None
    s = tomllib.load(open(path, "rb"))
    servers = {(s.get("management") or {}).get("host", "mgmt.vms.test"): "mgmt"}
    for r in s.get("recorder") or []:
        servers[r["host"]] = r["host"].split(".")[0]
    for f in s.get("failover") or []:
        servers[f["host"]] = f["host"].split(".")[0]
    if s.get("event_server"):
        servers[s["event_server"].get("host", "event.vms.test")] = "event"
    if s.get("mobile_server"):
        servers[s["mobile_server"].get("host", "mobile.vms.test")] = "mobile"
    on = lambda table: any(g.get("count", 1) > 0 for g in s.get(table) or [])
    groups = set()
    if on("viewer"):
        groups.add("viewers")
        if s.get("event_server"):
            groups.add("event-clients")
    if on("viewer") or on("integration"):
        groups.add("login-clients")
    if on("integration"):
        groups.add("integrations")
    if on("phone") and s.get("mobile_server"):
        groups.add("phones")
    if on("collector"):
        groups.add("collectors")
    return servers, groups


def env_of(container):
    return {e.get("name"): e for e in container.get("env") or []}


def check_run(objects, where, problems):
    """The checks of one rendered run; returns a one-line description of it, or None."""
    vms = [o for o in objects if o["kind"] == "Job" and any(
        (c.get("args") or [None])[0] in ("run", "agent") for c in containers(o))]
    if not any((c.get("args") or [None])[0] == "run" for o in vms for c in containers(o)):
        return None  # no coordinator: not a run (one file of several, say)
    say = lambda obj, what: problems.add(f"{where}: {ref(obj)}", what)
    services = [o for o in objects if o["kind"] == "Service"
                and (o.get("spec") or {}).get("clusterIP") == "None"]
    claims = {o["metadata"]["name"] for o in objects if o["kind"] == "PersistentVolumeClaim"}
    if len(services) != 1:
        problems.add(where, f"{len(services)} headless Services; a run needs one, which the pods' "
                            "subdomain names")
        return None
    svc = services[0]
    svc_name, svc_spec = svc["metadata"]["name"], svc["spec"]
    if svc_spec.get("publishNotReadyAddresses") is not True:
        say(svc, "publishNotReadyAddresses must be true: pods have no readiness probe to pass "
                 "before their names must resolve")
    if not any(p.get("port") == CONTROL_PORT and p.get("name") == "control"
               for p in svc_spec.get("ports") or []):
        say(svc, f"needs port {CONTROL_PORT} named control")
    selector = svc_spec.get("selector") or {}

    coordinators, agent_jobs = [], []
    for job in vms:
        vm = [c for c in containers(job) if (c.get("args") or [None])[0] in ("run", "agent")]
        if len(vm) != 1:
            say(job, "needs exactly one vmsbench container")
            continue
        (coordinators if vm[0]["args"][0] == "run" else agent_jobs).append((job, vm[0]))
        check_job(job, vm[0], svc_name, selector, say)
    if len(coordinators) != 1:
        problems.add(where, f"{len(coordinators)} coordinator Jobs (running `vmsbench run`); a run "
                            "needs one")
        return None
    coord, cc = coordinators[0]
    hostname, port = check_coordinator(coord, cc, claims, say)
    agents = check_agents(agent_jobs, coord, f"{hostname}.{svc_name}:{port}", say)
    preset = check_placement(coord, cc, agents, hostname, svc_name, say)
    order = lambda a: (a.rsplit("-", 1)[0], int(a.rsplit("-", 1)[1]))
    return f"run {preset}: coordinator {hostname}, agents {', '.join(sorted(agents, key=order))}"


def check_job(job, c, svc_name, selector, say):
    """What every Job of a run needs: no restarts, bounds, a stable name, the token."""
    spec, pod = job.get("spec") or {}, pod_spec(job)
    if spec.get("backoffLimit") != 0:
        say(job, "backoffLimit must be 0: a crashed part must not be restarted mid-run")
    if pod.get("restartPolicy") != "Never":
        say(job, "restartPolicy must be Never: a crashed part must not be restarted mid-run")
    for field in ("activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        if not isinstance(spec.get(field), int):
            say(job, f"needs {field}")
    if pod.get("subdomain") != svc_name:
        say(job, f"pods need subdomain: {svc_name} (the headless Service) for a stable name")
    labels = pod_labels(job)
    if not selector or any(labels.get(k) != v for k, v in selector.items()):
        say(job, f"pod labels {labels} are not selected by Service {svc_name} ({selector}): "
                 "its pods would have no DNS name")
    anti = ((pod.get("affinity") or {}).get("podAntiAffinity") or {}).get(
        "preferredDuringSchedulingIgnoredDuringExecution")
    if not anti:
        say(job, "needs a preferred podAntiAffinity so that roles land on different nodes")
    if c.get("imagePullPolicy") != "IfNotPresent":
        say(job, "imagePullPolicy must be IfNotPresent (a loaded image has no registry)")
    token = env_of(c).get("VMSBENCH_TOKEN") or {}
    if "value" in token or not ((token.get("valueFrom") or {}).get("secretKeyRef")):
        say(job, "VMSBENCH_TOKEN must come from a Secret (secretKeyRef), never a value")
    if values(parse_args(c["args"])[1], "--token"):
        say(job, "--token on the command line shows the token in the pod spec; use the Secret")
    res = c.get("resources") or {}
    for part in ("requests", "limits"):
        for name in ("cpu", "memory"):
            if name not in (res.get(part) or {}):
                say(job, f"needs resources.{part}.{name}")


def check_coordinator(coord, cc, claims, say):
    """The coordinator's pod: its name, its listeners, its reports. Returns (hostname, control
    port)."""
    cpod = pod_spec(coord)
    _, flags = parse_args(cc["args"])
    hostname = cpod.get("hostname")
    if not hostname:
        say(coord, "the coordinator's pod needs a hostname, which agents dial")
    if (coord.get("spec") or {}).get("completions", 1) != 1 or \
            (coord.get("spec") or {}).get("parallelism", 1) != 1:
        say(coord, "runs one pod: completions and parallelism 1")
    control = (values(flags, "--control-listen") or [f"0.0.0.0:{CONTROL_PORT}"])[-1]
    port = int(control.rsplit(":", 1)[-1])
    if port != CONTROL_PORT:
        say(coord, f"--control-listen port {port} is not the Service's control port")
    if values(flags, "--listen") != ["0.0.0.0"]:
        say(coord, "needs --listen 0.0.0.0: its servers are dialled from other pods")

    # Reports: each export in a volume of the PVC the run declares.
    mounts = {m.get("mountPath"): m.get("name") for m in cc.get("volumeMounts") or []}
    volumes = {v.get("name"): v for v in cpod.get("volumes") or []}
    for fmt in ("json", "markdown", "html"):
        paths = values(flags, f"--export-{fmt}")
        if not paths:
            say(coord, f"needs --export-{fmt}: reports are files, not only logs")
            continue
        mount = next((m for m in mounts if paths[-1].startswith(m.rstrip("/") + "/")), None)
        claim = ((volumes.get(mounts.get(mount)) or {}).get("persistentVolumeClaim") or {}) \
            .get("claimName")
        if claim is None:
            say(coord, f"--export-{fmt} {paths[-1]} is not on a PersistentVolumeClaim: it would "
                       "go with the pod")
        elif claim not in claims:
            say(coord, f"--export-{fmt} goes to claim {claim}, which this run does not declare")
    return hostname, port


def check_agents(agent_jobs, coord, dial, say):
    """The Indexed Jobs of agents: who they are, whom they dial. Returns {agent name: (Job,
    flags)}."""
    agents = {}
    for job, c in agent_jobs:
        spec, name = job.get("spec") or {}, job["metadata"]["name"]
        n = spec.get("completions")
        if spec.get("completionMode") != "Indexed" or not isinstance(n, int) or n < 1:
            say(job, "an agent group is an Indexed Job with completions ≥ 1")
            continue
        if spec.get("parallelism") != n:
            say(job, f"parallelism must equal completions ({n}): every agent runs at once")
        _, aflags = parse_args(c["args"])
        want = f"{name}-$(JOB_COMPLETION_INDEX)"
        if values(aflags, "--name") != [want]:
            say(job, f"--name must be {want}, the pod's own hostname")
        index = env_of(c).get("JOB_COMPLETION_INDEX") or {}
        if ((index.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath") \
                != INDEX_ANNOTATION:
            say(job, f"declare env JOB_COMPLETION_INDEX from {INDEX_ANNOTATION}, so that "
                     "$(JOB_COMPLETION_INDEX) in args is expanded")
        if values(aflags, "--coordinator") != [dial]:
            say(job, f"--coordinator must be {dial} (the coordinator's stable name)")
        if (spec.get("activeDeadlineSeconds") or 0) < \
                ((coord.get("spec") or {}).get("activeDeadlineSeconds") or 0):
            say(job, "activeDeadlineSeconds shorter than the coordinator's: an agent would be "
                     "killed while its run goes on")
        for i in range(n):
            agents[f"{name}-{i}"] = (job, aflags)
    return agents


def check_placement(coord, cc, agents, hostname, svc_name, say):
    """--place and --host against the preset's roles and the agents that run: every agent named
    by a rule runs, every agent that runs is named, every server is dialled at the pod that
    runs it. Returns the preset's name."""
    positional, flags = parse_args(cc["args"])
    preset = positional[1] if len(positional) > 1 else "small"
    roles = preset_roles(preset)
    if roles is None:
        say(coord, f"preset {preset!r} is not one of harness/presets/*.toml")
        return preset
    servers, groups = roles
    runtimes = {rt: h for h, rt in servers.items()}
    placed, named = {}, set()
    for rule in values(flags, "--place"):
        key, _, who = rule.partition("=")
        names = [a for a in who.split(",") if a]
        named.update(names)
        if key in runtimes or key in servers:
            host = runtimes.get(key, key)
            if len(names) != 1:
                say(coord, f"--place {rule}: a server runs on one agent")
            placed[host] = names[0] if names else None
        elif key not in groups:
            say(coord, f"--place {rule}: preset {preset} has no role or server {key!r} (it has "
                       f"{', '.join(sorted(set(runtimes) | groups))})")
    for a in sorted(named - set(agents)):
        say(coord, f"--place names agent {a}, which no Indexed Job starts: the coordinator would "
                   "wait for it in vain")
    for a in sorted(set(agents) - named):
        say(agents[a][0], f"starts agent {a}, which no --place rule names")
    for host, agent in placed.items():
        if agent in agents and values(agents[agent][1], "--listen") != ["0.0.0.0"]:
            say(agents[agent][0], f"{agent} runs {host}: it needs --listen 0.0.0.0")

    # --host: every server host dialled at the pod that runs it.
    rules = {}
    for rule in values(flags, "--host"):
        host, _, name = rule.partition("=")
        if host in rules:
            say(coord, f"--host {host} is given twice")
        rules[host] = name
        if host not in servers:
            say(coord, f"--host {rule}: {host} is not a server of preset {preset}")
    for host in servers:
        pod = placed.get(host) or hostname
        want = f"{pod}.{svc_name}"
        if host not in rules:
            say(coord, f"no --host {host}={want}: clients in other pods could not reach it")
        elif rules[host] != want:
            say(coord, f"--host {host}={rules[host]}, but {host} runs in {pod}: want {want}")
    return preset


# ---------------------------------------------------------------------------------------------
# Commands


def check_input(path, versions, problems, label=None, runs=True):
    """One input (a file, a kustomization directory, or - for stdin): its objects, checked
    (as a run too if it holds a coordinator, and `runs`). Returns (objects, description of
    the run if it is one)."""
    where = label or ("stdin" if path == "-" else os.path.relpath(path))
    if path != "-" and os.path.isdir(path):
        if not kustomization_file(path):
            problems.add(where, "a directory without a kustomization")
            return [], None
        objects, _ = render(path, problems)
    else:
        text = sys.stdin.read() if path == "-" else open(path).read()
        objects = load_documents(text, where, problems)
    check_schemas(objects, where, versions, problems)
    check_quantities(objects, where, problems)
    check_restricted(objects, where, problems)
    return objects, (check_run(objects, where, problems) if runs else None)


def tree(root, versions):
    problems = Problems()
    root = os.path.abspath(root)
    manifests, kustomizations = [], []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x != "testdata" and not x.startswith("."))
        for f in sorted(files):
            if f in KUSTOMIZATION_NAMES:
                kustomizations.append(d)
            elif f.endswith((".yaml", ".yml")):
                manifests.append(os.path.join(d, f))
    _, how = renderer()
    print(f"kubernetes-validate {kubernetes_validate.__version__}, strict, Kubernetes "
          f"{' and '.join(versions)}; kustomizations rendered by {how}")
    for m in manifests:
        check_input(m, versions, problems, runs=False)  # a run is checked whole, below
    included, claims, claimed = set(), set(), []
    for k in kustomizations:
        before = len(problems.items)
        objects, run = check_input(k, versions, problems, label=os.path.relpath(k, root) + "/")
        included |= sources(k)
        for o in objects:
            if o["kind"] == "PersistentVolumeClaim":
                claims.add(o["metadata"]["name"])
            for v in pod_spec(o).get("volumes") or []:
                if v.get("persistentVolumeClaim"):
                    claimed.append((k, o, v["persistentVolumeClaim"].get("claimName")))
        kinds = collections.Counter(o["kind"] for o in objects)
        if len(problems.items) == before:
            print(f"ok   {os.path.relpath(k, root) + '/':<8} "
                  f"{', '.join(f'{n} {kind}' for kind, n in sorted(kinds.items()))}"
                  + (f" — {run}" if run else ""))
    for k, o, claim in claimed:
        if claim not in claims:
            problems.add(f"{os.path.relpath(k, root)}/: {ref(o)}",
                         f"mounts claim {claim}, which no kustomization here declares")
    for m in manifests:
        if m not in included:
            problems.add(os.path.relpath(m), "is in no kustomization: nothing applies it")
    if not problems:
        print(f"ok   {len(manifests)} manifest files, each valid alone and in a kustomization")
    return problems


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-k", "--kubernetes-version", action="append", dest="versions",
                   help=f"validate against this version (repeatable; default "
                        f"{' and '.join(DEFAULT_VERSIONS)})")
    p.add_argument("--label", help="the name to give a single input in messages")
    p.add_argument("command", choices=["tree", "check", "render"])
    p.add_argument("paths", nargs="+")
    a = p.parse_args()
    versions = a.versions or DEFAULT_VERSIONS
    if a.command == "render":
        problems = Problems()
        _, text = render(a.paths[0], problems)
        sys.stdout.write(text)
        for item in problems.items:
            print(f"FAIL {item}", file=sys.stderr)
        return 1 if problems else 0
    elif a.command == "tree":
        problems = tree(a.paths[0], versions)
    else:
        problems = Problems()
        for path in a.paths:
            check_input(path, versions, problems, label=a.label)
    for item in problems.items:
        print(f"FAIL {item}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
