#!/usr/bin/env python3
"""Validates the Helm chart deploy/helm/hearth without a cluster.

Uses helm-python-sdk (Helm's own Go code, v4, as a library: `helm lint
--strict` and the offline renderer of `helm template`) and kubernetes-validate
(the Kubernetes OpenAPI schemas, strict: unknown fields fail). For the default
values and every ci/*-values.yaml it lints, renders, validates every manifest
and checks what the chart promises: probes on /readyz and /healthz, config from
the ConfigMap and secrets from the Secret, a PodDisruptionBudget when there is
more than one node, the Service selecting only the nodes' pods, WebSocket
timeouts on the Ingress; with the search role, its own Deployment, Service and
Ingress paths, search on there and off on the nodes. Run by scripts/check-deploy.sh (which installs both).
"""
import pathlib
import sys

import helm_python as helm
import kubernetes_validate
import yaml

CHART = pathlib.Path(__file__).resolve().parent / "hearth"
KUBE = "1.29.0"  # the oldest version the checks must pass on
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def scenarios():
    yield "default", {}
    for f in sorted((CHART / "ci").glob("*-values.yaml")):
        yield f.name, yaml.safe_load(f.read_text()) or {}


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def role(doc):
    return doc["metadata"]["labels"].get("app.kubernetes.io/component")


def env(deployment, key):
    c = deployment["spec"]["template"]["spec"]["containers"][0]
    return next((e.get("value") for e in c.get("env", []) if e["name"] == key), None)


for name, values in scenarios():
    report = helm.lint(str(CHART), values, strict=True, kube_version=KUBE)
    for m in report.get("messages", []):
        # severity: 0 unknown, 1 info, 2 warning, 3 error
        if m.get("severity", 0) >= 2:
            failures.append(f"{name}: lint {m}")
    for e in report.get("errors", []) or []:
        failures.append(f"{name}: lint error {e}")

    chart = helm.Chart.load(str(CHART))
    out = chart.render(values, name="hearth", namespace="chat", is_install=True)
    docs = []
    for path, text in sorted(out.items()):
        if not path.endswith(".yaml"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append((path, doc))
                try:
                    kubernetes_validate.validate(doc, KUBE, strict=True)
                except kubernetes_validate.ValidationError as e:
                    failures.append(f"{name}: {path}: {doc['kind']}: {e.message} at {list(e.path)}")
                except kubernetes_validate.SchemaNotFoundError as e:
                    failures.append(f"{name}: {path}: no schema: {e}")
    kinds = {}
    for path, doc in docs:
        kinds.setdefault(doc["kind"], []).append(doc)

    deps = {role(d): d for d in kinds.get("Deployment", [])}
    dep = deps.get("server")
    check(dep is not None, f"{name}: no Deployment")
    if dep is None:
        continue
    replicas = dep["spec"]["replicas"]
    pod = dep["spec"]["template"]
    c = pod["spec"]["containers"][0]
    # Node scope: a database or Redis every pod shares being down must not
    # leave the Service without endpoints (the pods answer 503 themselves).
    check(c["readinessProbe"]["httpGet"]["path"] == "/readyz?scope=node",
          f"{name}: readiness probe is not /readyz?scope=node")
    check(c["livenessProbe"]["httpGet"]["path"] == "/healthz", f"{name}: liveness probe is not /healthz")
    refs = {("ConfigMap" if "configMapRef" in e else "Secret"): (e.get("configMapRef") or e.get("secretRef"))["name"]
            for e in c["envFrom"]}
    cm = [d for d in kinds.get("ConfigMap", []) if d["metadata"]["name"] == refs.get("ConfigMap")]
    check(len(cm) == 1, f"{name}: envFrom ConfigMap {refs.get('ConfigMap')} not rendered")
    if cm:
        check("HEARTH_NATS_URL" in cm[0]["data"], f"{name}: ConfigMap lacks HEARTH_NATS_URL")
        check(not any(k in cm[0]["data"] for k in ("HEARTH_DATABASE_URL", "HEARTH_JWT_SECRET", "HEARTH_REDIS_URL")),
              f"{name}: a secret setting is in the ConfigMap")
    if values.get("existingSecret"):
        check(refs.get("Secret") == values["existingSecret"], f"{name}: existingSecret not used")
        check("Secret" not in kinds, f"{name}: a Secret rendered although existingSecret is set")
    else:
        sec = [d for d in kinds.get("Secret", []) if d["metadata"]["name"] == refs.get("Secret")]
        check(len(sec) == 1 and "HEARTH_DATABASE_URL" in sec[0]["stringData"], f"{name}: Secret with HEARTH_DATABASE_URL")
    pdbs = [d for d in kinds.get("PodDisruptionBudget", []) if role(d) == "server"]
    if replicas > 1:
        check(len(pdbs) == 1 and labels_match(pdbs[0]["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"]),
              f"{name}: PodDisruptionBudget missing or not selecting the nodes")
    svc = next((d for d in kinds.get("Service", []) if role(d) == "server"), None)
    check(svc is not None and labels_match(svc["spec"]["selector"], pod["metadata"]["labels"]),
          f"{name}: Service does not select the nodes' pods")
    # No other pod (hook Job, test) may be selected by the Service, the Deployment or the PDB.
    for kind in ("Job", "Pod"):
        for d in kinds.get(kind, []):
            lab = (d["spec"]["template"]["metadata"]["labels"] if kind == "Job" else d["metadata"]["labels"])
            check(not labels_match(dep["spec"]["selector"]["matchLabels"], lab),
                  f"{name}: {kind} {d['metadata']['name']} matches the Deployment's selector")
    if values.get("logStream", {}).get("create", True):
        jobs = [d for d in kinds.get("Job", []) if "log-stream" in d["metadata"]["name"]]
        check(len(jobs) == 1 and "--replicas 3" in jobs[0]["spec"]["template"]["spec"]["containers"][0]["command"][-1],
              f"{name}: log stream Job with --replicas 3")
    for ing in kinds.get("Ingress", []):
        ann = ing["metadata"].get("annotations", {})
        check(int(ann.get("nginx.ingress.kubernetes.io/proxy-read-timeout", "0")) >= 3600,
              f"{name}: Ingress without a long proxy-read-timeout for the gateway")
    # The search role: its own nodes keep the index, the others none, and searches reach it.
    search = deps.get("search")
    if values.get("search", {}).get("role"):
        check(search is not None, f"{name}: search role on, but no search Deployment")
        if search is not None:
            want = values["search"].get("replicaCount", 2)
            check(search["spec"]["replicas"] == want, f"{name}: search Deployment replicas != {want}")
            check(env(search, "HEARTH_SEARCH_ENABLED") == "true", f"{name}: search nodes without search")
            check(env(dep, "HEARTH_SEARCH_ENABLED") == "false", f"{name}: the nodes keep an index too")
            spod = search["spec"]["template"]["metadata"]["labels"]
            check(not labels_match(dep["spec"]["selector"]["matchLabels"], spod)
                  and not labels_match(search["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"]),
                  f"{name}: the two Deployments' selectors overlap")
            ssvc = next((d for d in kinds.get("Service", []) if role(d) == "search"), None)
            check(ssvc is not None and labels_match(ssvc["spec"]["selector"], spod)
                  and not labels_match(ssvc["spec"]["selector"], pod["metadata"]["labels"]),
                  f"{name}: no Service selecting only the search nodes")
            if want > 1:
                check(any(role(d) == "search" and labels_match(d["spec"]["selector"]["matchLabels"], spod)
                          for d in kinds.get("PodDisruptionBudget", [])),
                      f"{name}: no PodDisruptionBudget for the search nodes")
            if values.get("ingress", {}).get("enabled") and ssvc is not None:
                routed = {p["path"] for ing in kinds.get("Ingress", []) for r in ing["spec"]["rules"]
                          for p in r["http"]["paths"]
                          if p["backend"]["service"]["name"] == ssvc["metadata"]["name"]}
                check(routed == {"/api/v1/communities/[0-9]+/messages/search", "/api/v1/dms/messages/search"},
                      f"{name}: the Ingress sends {sorted(routed)} to the search nodes")
    else:
        check(search is None and env(dep, "HEARTH_SEARCH_ENABLED") is None,
              f"{name}: search role off, but the nodes are split")
    print(f"helm chart, {name}: lint ok, {len(docs)} manifests valid for Kubernetes {KUBE} "
          f"({', '.join(sorted(k for k in kinds))})")

# Refusals: what the server would refuse at start, the chart refuses at render.
for bad, why in (({"secrets": {"jwtSecret": "too short"}}, "a JWT secret under 32 bytes"),
                 ({"secrets": {"databaseUrl": ""}}, "no database URL")):
    try:
        helm.Chart.load(str(CHART)).render(bad, name="hearth", namespace="chat", is_install=True)
        failures.append(f"rendering with {why} did not fail")
    except helm.HelmError:
        print(f"helm chart: rendering with {why} fails, as it should")

if failures:
    print("\n".join(f"FAIL {f}" for f in failures), file=sys.stderr)
    sys.exit(1)
