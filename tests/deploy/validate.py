"""Offline checks of the Kubernetes manifests (deploy/kubernetes): each overlay
renders with kustomize and passes the Kubernetes schemas (kubernetes-validate,
strict), the k6 TestRun passes the operator's CRD schema, the ConfigMap's
sluice.toml is valid for the real binary (`sluice check`), and the pod's
termination grace is above sluice's shutdown grace.

Usage: python tests/deploy/validate.py KUBECTL SLUICE_BINARY
"""

import json
import pathlib
import subprocess
import sys
import tempfile
import tomllib

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.32.0"
kubectl, sluice = sys.argv[1], sys.argv[2]


def render(folder: pathlib.Path, *flags: str) -> list[dict]:
    text = subprocess.run([kubectl, "kustomize", *flags, str(folder)], check=True, capture_output=True, text=True).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def validate_builtin(objects: list[dict], what: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        yaml.safe_dump_all(objects, file)
        file.flush()
        subprocess.run(
            [str(pathlib.Path(sys.executable).parent / "kubernetes-validate"), "--strict", "--quiet",
             "-k", KUBERNETES_VERSION, file.name],
            check=True,
        )
    print(f"{what}: {len(objects)} objects pass the Kubernetes {KUBERNETES_VERSION} schemas")


def check_sluice_config(objects: list[dict], what: str) -> None:
    [config_map] = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "sluice-config"]
    text = config_map["data"]["sluice.toml"]
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as file:
        file.write(text)
        file.flush()
        subprocess.run([sluice, "check", file.name], check=True, capture_output=True)
    grace = tomllib.loads(text).get("shutdown_grace", "8s")
    assert grace.endswith("s") and grace[:-1].isdigit(), grace
    [deployment] = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "sluice"]
    pod_grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert int(grace[:-1]) + 5 <= pod_grace, f"shutdown_grace {grace} too close to terminationGracePeriodSeconds {pod_grace}"
    print(f"{what}: sluice check passes its sluice.toml; shutdown_grace {grace} < terminationGracePeriodSeconds {pod_grace}")


for overlay in ("mock", "proxy"):
    objects = render(KUBE / "overlays" / overlay)
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "Service"], kinds
    validate_builtin(objects, f"overlays/{overlay}")
    check_sluice_config(objects, f"overlays/{overlay}")
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == [overlay]

# The fleet overlay: the mock with components/redis (docs/fleet.md).
fleet = render(KUBE / "overlays" / "fleet")
kinds = sorted(o["kind"] for o in fleet)
assert kinds == ["ConfigMap", "Deployment", "Deployment", "PodDisruptionBudget", "Secret", "Service", "Service", "Service"], kinds
validate_builtin(fleet, "overlays/fleet")
check_sluice_config(fleet, "overlays/fleet")
[sluice_deployment] = [o for o in fleet if o["kind"] == "Deployment" and o["metadata"]["name"] == "sluice"]
env = {e["name"]: e for e in sluice_deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
assert env["SLUICE_FLEET_STORE"]["valueFrom"]["secretKeyRef"] == {"name": "sluice-fleet-store", "key": "url"}, env
[secret] = [o for o in fleet if o["kind"] == "Secret"]
[redis_service] = [o for o in fleet if o["kind"] == "Service" and o["metadata"]["name"] == "sluice-redis"]
url = secret["stringData"]["url"]
assert url == f"redis://{redis_service['metadata']['name']}:{redis_service['spec']['ports'][0]['port']}", url
[redis] = [o for o in fleet if o["kind"] == "Deployment" and o["metadata"]["name"] == "sluice-redis"]
selector = redis["spec"]["selector"]["matchLabels"]
assert all(redis_service["spec"]["selector"][k] == v for k, v in selector.items() if k in redis_service["spec"]["selector"])
assert selector != sluice_deployment["spec"]["selector"]["matchLabels"], "Redis and sluice select different pods"
# The URL from the Secret is one sluice accepts.
with tempfile.NamedTemporaryFile("w", suffix=".toml") as file:
    file.write("error_rate = 0\n")
    file.flush()
    subprocess.run([sluice, "check", file.name], check=True, capture_output=True, env={"SLUICE_FLEET_STORE": url, "PATH": "/usr/bin:/bin"})
print("overlays/fleet: the Redis component's Secret, Deployment and Service; every replica's SLUICE_FLEET_STORE from the Secret")

k6 = render(KUBE / "k6", "--load-restrictor", "LoadRestrictionsNone")
[script] = [o for o in k6 if o["kind"] == "ConfigMap"]
assert script["data"]["baseline.k6.js"] == (ROOT / "tests" / "performance" / "baseline.k6.js").read_text()
validate_builtin([script], "k6 script ConfigMap")
schema = json.loads((KUBE / "k6" / "testrun.schema.json").read_text())
[testrun] = [o for o in k6 if o["kind"] == "TestRun"]
jsonschema.validate(testrun, schema)
assert testrun["spec"]["script"]["configMap"]["name"] == script["metadata"]["name"]
# The schema refuses what the CRD refuses.
for broken in ({"parallelism": "4"}, {"cleanup": "always"}, {"script": {"configMap": {"file": "x.js"}}}, {"paralelism": 4}):
    bad = {**testrun, "spec": {**testrun["spec"], **broken}}
    try:
        jsonschema.validate(bad, schema)
    except jsonschema.ValidationError:
        continue
    raise AssertionError(f"the TestRun schema accepts {broken}")
print("k6/TestRun: passes the k6 operator's CRD schema (deploy/kubernetes/k6/testrun.schema.json)")

