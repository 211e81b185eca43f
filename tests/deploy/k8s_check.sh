#!/usr/bin/env bash
# k8s_check.sh [HARVEST_BINARY]
#
# Renders deploy/k8s (and deploy/k8s/storage) with `kubectl kustomize` and checks that the
# manifests start the job the way harvest expects (docs/operations.md, docs/exit-codes.md):
# containers run `harvest coordinator|worker`; the worker Job's completions = parallelism =
# dist.world_size of workers and coordinator (also after changing completions in an overlay);
# rank = the pod's completion index; dist.host = the pod IP; workers dial the headless Service
# the coordinator binds behind; exit 2 fails the Job; GPUs are requested; config, journal and
# checkpoints sit where every pod sees them; the ConfigMap's TOML passes `harvest config check`
# with the workers' overrides (when HARVEST_BINARY is given). The optional loaders component
# (deploy/k8s/loaders) adds a Deployment of `harvest loader` pods and switches the coordinator and
# the workers to data.loader_placement=coordinator; the optional spares component
# (deploy/k8s/spares) adds a Job of spare workers: the worker pod template without a rank.
#
# Offline: no cluster is needed. kubectl parses every object (`kubectl label --local -o json`),
# which catches malformed YAML and unknown kinds; schema validation needs an API server and is
# not done here. Exit 0: pass; 1: a check failed (each failure printed); 77: kubectl or python3
# missing (skip).
set -euo pipefail
cd "$(dirname "$0")/../.."

harvest=${1:-}
for tool in kubectl python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "k8s_check: SKIP: $tool not found on PATH (needed to render/parse deploy/k8s)"
    exit 77
  fi
done
if [[ -n "$harvest" && ! -x "$harvest" ]]; then
  echo "k8s_check: FAIL: '$harvest' is not an executable harvest binary" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

render() {  # render KUSTOMIZATION_DIR OUT_JSON: kustomize, then have kubectl parse every object
  if ! kubectl kustomize "$1" >"$work/rendered.yaml" 2>"$work/err"; then
    echo "k8s_check: FAIL: kubectl kustomize $1 does not render:" >&2
    cat "$work/err" >&2
    exit 1
  fi
  if ! kubectl label --local -f "$work/rendered.yaml" k8s-check=1 -o json >"$2" 2>"$work/err"; then
    echo "k8s_check: FAIL: kubectl does not accept the objects rendered from $1:" >&2
    cat "$work/err" >&2
    exit 1
  fi
}

render deploy/k8s "$work/job.json"
render deploy/k8s/storage "$work/storage.json"

# Changing the world size in an overlay (README.md): patch completions and repeat the base's
# replacements block after it; parallelism and both dist.world_size must follow. Over a copy of
# the base: kustomize takes no absolute paths.
overlay_of() {  # overlay_of BASE_DIR_NAME DIR: an overlay of $work/BASE at DIR with completions 3
  mkdir -p "$2"
  {
    cat <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../$1
patches:
  - target: {kind: Job, name: harvest-worker}
    patch: |-
      - op: replace
        path: /spec/completions
        value: 3
EOF
    sed -n '/^replacements:/,$p' deploy/k8s/kustomization.yaml
  } >"$2/kustomization.yaml"
}
cp -r deploy/k8s "$work/base"
overlay_of base "$work/overlay"
render "$work/overlay" "$work/overlay.json"

# The optional components enabled in (a copy of) the base kustomization.yaml, as their READMEs
# say: then the base's images, ConfigMap and replacements apply to what they add.
with_component() {  # with_component NAME DIR: a copy of the base at DIR with component NAME on
  cp -r deploy/k8s "$2"
  python3 - "$2/kustomization.yaml" "$1" <<'PYC'
import sys
path, name = sys.argv[1], sys.argv[2]
text = open(path).read()
open(path, "w").write(text.replace("resources:\n", f"components:\n  - {name}\n\nresources:\n", 1))
PYC
}
with_component loaders "$work/base-loaders"
render "$work/base-loaders" "$work/loaders.json"
with_component spares "$work/base-spares"
render "$work/base-spares" "$work/spares.json"
# ... and in an overlay that changes the world size (the spares must follow it too).
overlay_of base-spares "$work/spares-overlay"
render "$work/spares-overlay" "$work/spares-overlay.json"

python3 - "$work" "$harvest" <<'PY'
import json
import os
import re
import subprocess
import sys

work, harvest = sys.argv[1], sys.argv[2]
failures = []


def fail(msg):
    failures.append(msg)


def load(path):
    """kubectl prints one JSON document per object (or a List); return the objects."""
    text, objs, pos = open(path).read(), [], 0
    dec = json.JSONDecoder()
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        obj, pos = dec.raw_decode(text, pos)
        objs.extend(obj.get("items", []) if obj.get("kind") == "List" else [obj])
    return objs


def one(objs, kind, where):
    found = [o for o in objs if o.get("kind") == kind]
    if len(found) != 1:
        fail(f"{where}: expected exactly one {kind}, found {len(found)}")
        return None
    return found[0]


def pod_spec(obj):
    return obj["spec"]["template"]["spec"]


def container(obj, name):
    cs = [c for c in pod_spec(obj).get("containers", []) if c.get("name") == name]
    if len(cs) != 1:
        fail(f"{obj['kind']} {obj['metadata']['name']}: no container named '{name}'")
        return None
    return cs[0]


def expand(value, env):
    """Kubernetes $(VAR) expansion; unknown or valueFrom variables stay as $(VAR)."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: env.get(m.group(1), m.group(0)), value)


def argv(c):
    env = {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}
    return [expand(a, env) for a in c.get("command", []) + c.get("args", [])]


def option(args, flag):
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == flag] + \
           [a.split("=", 1)[1] for a in args if a.startswith(flag + "=")]


def sets(args):
    out = {}
    for s in option(args, "--set"):
        key, _, value = s.partition("=")
        out[key] = value
    return out


def env_source(c, var):
    """fieldRef path of env var VAR of container c, or None."""
    for e in c.get("env", []):
        if e["name"] == var:
            return e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    return None


def var_of(value):
    m = re.fullmatch(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", value or "")
    return m.group(1) if m else None


def config_check(toml, name, overrides):
    """`harvest config check` of TOML text with --set overrides ($(VAR) values become an IP)."""
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(toml)
    cmd = [harvest, "config", "check", path]
    for key, value in overrides.items():
        cmd += ["--set", f"{key}={re.sub(r'[$][(][A-Z_]+[)]', '10.0.0.1', value)}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"`{' '.join(cmd)}` exit {r.returncode}: {r.stdout}{r.stderr}")


def check_job(objs, where, expect_world=None):
    """Checks of one rendered job; returns (world size, worker container, ConfigMap) for more."""
    job = one(objs, "Job", where)
    sts = one(objs, "StatefulSet", where)
    svc = one(objs, "Service", where)
    cm = one(objs, "ConfigMap", where)
    if not (job and sts and svc and cm):
        return None, None, None, None
    worker, coord = container(job, "worker"), container(sts, "coordinator")
    if not (worker and coord):
        return None, None, None, None

    # Roles: the commands harvest has.
    for name, c, role in (("worker", worker, "worker"), ("coordinator", coord, "coordinator")):
        a = argv(c)
        if a[:2] != ["harvest", role]:
            fail(f"{where}: the {name} container runs {a[:2]}, expected ['harvest', '{role}']")
    for obj in (job, sts):
        for c in pod_spec(obj).get("containers", []) + pod_spec(obj).get("initContainers", []):
            a = argv(c)
            if len(a) < 2 or a[0] != "harvest" or a[1] not in ("coordinator", "worker"):
                fail(f"{where}: container '{c['name']}' runs {a[:2]}: not `harvest coordinator|worker`")

    wargs, cargs = argv(worker), argv(coord)
    wset, cset = sets(wargs), sets(cargs)

    # World size: completions = parallelism = dist.world_size passed to workers and coordinator.
    spec = job["spec"]
    world = spec.get("completions")
    if spec.get("completionMode") != "Indexed":
        fail(f"{where}: the worker Job is not completionMode: Indexed (rank = completion index)")
    if spec.get("parallelism") != world:
        fail(f"{where}: worker Job parallelism {spec.get('parallelism')} != completions {world}")
    for name, s in (("worker", wset), ("coordinator", cset)):
        if s.get("dist.world_size") != str(world):
            fail(f"{where}: the {name} gets dist.world_size={s.get('dist.world_size')}, "
                 f"the worker Job runs {world} pods (completions)")
    if expect_world is not None and world != expect_world:
        fail(f"{where}: completions is {world}, the overlay set {expect_world}")

    # Rank from the pod index, dist.host from the pod IP.
    rank = option(wargs, "--rank")
    index_paths = ("metadata.annotations['batch.kubernetes.io/job-completion-index']",)
    rank_var = var_of(rank[0]) if len(rank) == 1 else None
    if not rank_var or (rank_var != "JOB_COMPLETION_INDEX"
                        and env_source(worker, rank_var) not in index_paths):
        fail(f"{where}: worker --rank is {rank}, expected $(VAR) with VAR from the Job's "
             "completion index (JOB_COMPLETION_INDEX or the job-completion-index annotation)")
    host_var = var_of(wset.get("dist.host"))
    if not host_var or env_source(worker, host_var) != "status.podIP":
        fail(f"{where}: worker dist.host is {wset.get('dist.host')!r}, expected $(VAR) with VAR "
             "from the downward API status.podIP")

    # Workers dial the headless Service that selects the coordinator pod on the port it binds.
    address = wset.get("coordinator.address")
    m = re.fullmatch(r"tcp://([a-z0-9.-]+):(\d+)", address or "")
    if not m:
        fail(f"{where}: worker coordinator.address {address!r} is not tcp://SERVICE:PORT")
    else:
        host, port = m.group(1), int(m.group(2))
        name = svc["metadata"]["name"]
        if host.split(".")[0] != name:
            fail(f"{where}: workers dial {host}, the coordinator's Service is {name}")
        if svc["spec"].get("clusterIP") != "None":
            fail(f"{where}: Service {name} is not headless (clusterIP: None)")
        labels = sts["spec"]["template"]["metadata"].get("labels", {})
        selector = svc["spec"].get("selector", {})
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            fail(f"{where}: Service {name} selector {selector} does not select the coordinator "
                 f"pod (labels {labels})")
        ports = [p for p in svc["spec"].get("ports", []) if p.get("port") == port]
        if not ports:
            fail(f"{where}: Service {name} exposes no port {port}")
        else:
            target = ports[0].get("targetPort", port)
            cports = {p.get("name"): p["containerPort"] for p in coord.get("ports", [])}
            target = cports.get(target, target) if isinstance(target, str) else target
            if target != port:
                fail(f"{where}: Service port {port} targets {target}; keep them equal")
            bind = cset.get("coordinator.address", "")
            if not re.fullmatch(rf"tcp://(\*|0\.0\.0\.0|\$\(\w+\)):{target}", bind):
                fail(f"{where}: the coordinator binds {bind!r}, expected tcp://0.0.0.0:{target} "
                     "(all interfaces, the port the Service targets)")
            if target not in cports.values():
                fail(f"{where}: the coordinator container declares no containerPort {target}")

    # Failure policy: exit 2 fails the Job, other failures are retried by replacing the pod.
    rules = spec.get("podFailurePolicy", {}).get("rules", [])
    fail_on_2 = any(r.get("action") == "FailJob"
                    and r.get("onExitCodes", {}).get("operator") == "In"
                    and 2 in r["onExitCodes"].get("values", [])
                    and r["onExitCodes"].get("containerName") in (None, "worker")
                    for r in rules)
    if not fail_on_2:
        fail(f"{where}: no podFailurePolicy rule FailJob onExitCodes In [2] for the worker")
    retries_1 = [r for r in rules if r.get("action") in ("FailJob", "Ignore")
                 and 1 in r.get("onExitCodes", {}).get("values", [])
                 and r["onExitCodes"].get("operator") == "In"]
    if retries_1:
        fail(f"{where}: exit 1 (runtime failure) must be retried, a rule stops that: {retries_1}")
    if pod_spec(job).get("restartPolicy") != "Never":
        fail(f"{where}: worker restartPolicy is {pod_spec(job).get('restartPolicy')}, "
             "podFailurePolicy needs Never")
    if not spec.get("backoffLimit", 6) > 0:
        fail(f"{where}: worker backoffLimit {spec.get('backoffLimit')} allows no retry")

    # GPUs: one per worker (extended resources must be in limits).
    limits = worker.get("resources", {}).get("limits", {})
    if int(limits.get("nvidia.com/gpu", 0)) < 1:
        fail(f"{where}: the worker container requests no GPU (limits nvidia.com/gpu)")

    # Graceful stop writes a final checkpoint: give it time.
    for obj in (job, sts):
        grace = pod_spec(obj).get("terminationGracePeriodSeconds", 30)
        if grace < 120:
            fail(f"{where}: {obj['kind']} {obj['metadata']['name']} terminationGracePeriodSeconds "
                 f"{grace} is short for a final checkpoint (want >= 120)")

    # Config from the ConfigMap; run dir (journal, checkpoints) on the shared claim.
    for obj, c in ((job, worker), (sts, coord)):
        vols = {v["name"]: v for v in pod_spec(obj).get("volumes", [])}
        mounts = {m["mountPath"]: vols.get(m["name"], {}) for m in c.get("volumeMounts", [])}
        config = option(argv(c), "--config")
        if len(config) != 1:
            fail(f"{where}: {c['name']} has no single --config")
            continue
        folder, key = os.path.split(config[0])
        cmv = mounts.get(folder, {}).get("configMap", {})
        if cmv.get("name") != cm["metadata"]["name"] or key not in cm.get("data", {}):
            fail(f"{where}: {c['name']} reads {config[0]}, which is not key '{key}' of ConfigMap "
                 f"{cm['metadata']['name']} mounted at {folder}")
        workdir = c.get("workingDir", "")
        claim = mounts.get(workdir, {}).get("persistentVolumeClaim", {}).get("claimName")
        if claim != "harvest-shared":
            fail(f"{where}: {c['name']} workingDir {workdir!r} is not the harvest-shared claim's "
                 "mount (relative run_dir, journal and checkpoints must land on it)")
    return world, worker, cm, wset


world, worker, cm, wset = check_job(load(f"{work}/job.json"), "deploy/k8s")
check_job(load(f"{work}/overlay.json"), "deploy/k8s with completions 3", expect_world=3)

# The loaders component: a Deployment running `harvest loader` that dials the same coordinator as
# the workers, data.loader_placement=coordinator for the loaders, the workers and the coordinator
# (and for nobody without the component), data.loaders_per_worker x world size replicas, no GPU,
# the ConfigMap at its --config path, no CURVE secret key beyond a client's.
if "data.loader_placement" in (wset or {}):
    fail("deploy/k8s: without the loaders component the workers must keep worker-placed loaders")
lobjs = load(f"{work}/loaders.json")
lworld, lworker, lcm, lwset = check_job(lobjs, "deploy/k8s with the loaders component")
deployments = [o for o in lobjs if o.get("kind") == "Deployment"]
loader_replicas = deployments[0]["spec"].get("replicas") if len(deployments) == 1 else None
if len(deployments) != 1:
    fail(f"deploy/k8s/loaders: expected one Deployment, found {len(deployments)}")
else:
    dep = deployments[0]
    lc = container(dep, "loader")
    sts = one(lobjs, "StatefulSet", "deploy/k8s/loaders")
    coord = container(sts, "coordinator") if sts else None
    if lc and coord and lwset is not None:
        largs = argv(lc)
        lset = sets(largs)
        if largs[:2] != ["harvest", "loader"]:
            fail(f"deploy/k8s/loaders: the loader container runs {largs[:2]}")
        if option(largs, "--endpoint"):
            fail("deploy/k8s/loaders: a placed loader takes no --endpoint")
        for name, s_ in (("loader", lset), ("worker", lwset), ("coordinator", sets(argv(coord)))):
            if s_.get("data.loader_placement") != "coordinator":
                fail(f"deploy/k8s/loaders: the {name} does not get data.loader_placement=coordinator")
        if lset.get("coordinator.address") != lwset.get("coordinator.address"):
            fail(f"deploy/k8s/loaders: loaders dial {lset.get('coordinator.address')}, workers "
                 f"{lwset.get('coordinator.address')}")
        toml = next(iter(lcm["data"].values())) if lcm else ""
        m = re.search(r"^\s*loaders_per_worker\s*=\s*(\d+)", toml, re.M)
        per_worker = int(m.group(1)) if m else 1
        if lworld and dep["spec"].get("replicas") != per_worker * lworld:
            fail(f"deploy/k8s/loaders: {dep['spec'].get('replicas')} replicas, expected "
                 f"data.loaders_per_worker {per_worker} x {lworld} workers")
        if "nvidia.com/gpu" in lc.get("resources", {}).get("limits", {}):
            fail("deploy/k8s/loaders: loaders request a GPU")
        vols = {v["name"]: v for v in pod_spec(dep).get("volumes", [])}
        mounts = {mt["mountPath"]: vols.get(mt["name"], {}) for mt in lc.get("volumeMounts", [])}
        config = option(largs, "--config")
        folder = os.path.split(config[0])[0] if len(config) == 1 else None
        if mounts.get(folder, {}).get("configMap", {}).get("name") != (lcm or {}).get("metadata", {}).get("name"):
            fail(f"deploy/k8s/loaders: --config {config} is not the ConfigMap's mount")
        for v in vols.values():
            items = [i["key"] for i in v.get("secret", {}).get("items", [])]
            if v.get("secret") and (not items or "server.secret" in items):
                fail("deploy/k8s/loaders: loaders must get the client key pair and the server's "
                     "public key only (secret items)")
        if harvest and toml:
            config_check(toml, "loader.toml", lset)

# The spares component: a second Job of `harvest worker` pods with no --rank, the worker Job's pod
# template otherwise (image, resources, volumes, grace, failure policy), dist.world_size = the
# worker Job's completions (also after an overlay changed it), and no change to anything else.


def without_rank(spec):
    """The worker pod spec with the rank (--rank and its env var) taken out."""
    spec = json.loads(json.dumps(spec))
    for c in spec.get("containers", []):
        args = c.get("args", [])
        if "--rank" in args:
            i = args.index("--rank")
            del args[i:i + 2]
        c["env"] = [e for e in c.get("env", []) if e["name"] != "HARVEST_RANK"]
    return spec


def check_spares(path, where, expect_world):
    objs = load(path)
    spares = [o for o in objs
              if o.get("kind") == "Job" and o["metadata"]["name"] == "harvest-spare-worker"]
    rest = [o for o in objs if o not in spares]
    world, w, _, ws = check_job(rest, where, expect_world=expect_world)
    if len(spares) != 1:
        fail(f"{where}: expected one Job harvest-spare-worker, found {len(spares)}")
        return
    job = spares[0]
    workers = [o for o in rest if o.get("kind") == "Job"]
    sc = container(job, "worker")
    if not (sc and w and workers):
        return
    sargs = argv(sc)
    if sargs[:2] != ["harvest", "worker"]:
        fail(f"{where}: the spare container runs {sargs[:2]}")
    if option(sargs, "--rank"):
        fail(f"{where}: spares must not ask for a rank (--rank {option(sargs, '--rank')})")
    sset = sets(sargs)
    if sset.get("dist.world_size") != str(world):
        fail(f"{where}: spares get dist.world_size={sset.get('dist.world_size')}, the worker Job "
             f"runs {world}")
    if sset != ws:
        fail(f"{where}: spares get --set {sset}, workers {ws}")
    spec = job["spec"]
    if not spec.get("completions") or spec.get("parallelism") != spec.get("completions"):
        fail(f"{where}: spare Job completions {spec.get('completions')} / parallelism "
             f"{spec.get('parallelism')}: keep them equal and >= 1")
    if spec.get("podFailurePolicy") != workers[0]["spec"].get("podFailurePolicy"):
        fail(f"{where}: the spare Job's podFailurePolicy differs from the worker Job's")
    if without_rank(pod_spec(job)) != without_rank(pod_spec(workers[0])):
        fail(f"{where}: the spare pod template differs from the worker Job's beyond the rank")


check_spares(f"{work}/spares.json", "deploy/k8s with the spares component", None)
check_spares(f"{work}/spares-overlay.json", "deploy/k8s with spares and completions 3", 3)
if any(o.get("metadata", {}).get("name") == "harvest-spare-worker"
       for o in load(f"{work}/job.json")):
    fail("deploy/k8s: spare workers appear without the spares component")

# Every container runs the image the base's `images:` block names (a component's pods too).
for path in ("job.json", "loaders.json", "spares.json", "spares-overlay.json"):
    images = {c.get("image") for o in load(f"{work}/{path}") if "template" in o.get("spec", {})
              for c in pod_spec(o).get("containers", [])}
    if len(images) != 1 or "harvest" in images:
        fail(f"{path}: containers run images {sorted(images)}, expected the one the base's "
             "images: block sets")

# The shared claim: ReadWriteMany (pods on several nodes write one checkpoint folder).

pvc = one(load(f"{work}/storage.json"), "PersistentVolumeClaim", "deploy/k8s/storage")
if pvc:
    if pvc["metadata"]["name"] != "harvest-shared":
        fail(f"deploy/k8s/storage: the claim is {pvc['metadata']['name']}, pods mount harvest-shared")
    if "ReadWriteMany" not in pvc["spec"].get("accessModes", []):
        fail("deploy/k8s/storage: harvest-shared is not ReadWriteMany")

# The TOML: run_dir relative (so on the shared working directory), and `harvest config check`.
if cm:
    toml = next(iter(cm["data"].values()))
    m = re.search(r'^\s*run_dir\s*=\s*"([^"]*)"', toml, re.M)
    if m and m.group(1).startswith("/") and not m.group(1).startswith("/shared/"):
        fail(f"ConfigMap: logging.run_dir {m.group(1)} is outside the shared volume")
    if harvest:
        config_check(toml, "harvest.toml", wset)
        for role in ("coordinator", "worker"):
            r = subprocess.run([harvest, role, "--help"], capture_output=True, text=True)
            if r.returncode != 0:
                fail(f"`{harvest} {role} --help` exit {r.returncode}: not a harvest subcommand?")
    else:
        print("k8s_check: note: no harvest binary given, `harvest config check` of the ConfigMap skipped")

if failures:
    for f in failures:
        print(f"k8s_check: FAIL: {f}", file=sys.stderr)
    sys.exit(1)
print(f"k8s_check: ok (world size {world}; overlay with completions 3 propagates; loaders component: {loader_replicas} placed loaders; spares component: the worker pod without a rank)")
PY
