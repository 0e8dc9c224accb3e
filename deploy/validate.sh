#!/usr/bin/env bash
# Validates every deploy file without a container engine (tests/run.sh runs it):
#   - Kubernetes: the kustomization rendered by kubectl, and every manifest on its own, pass
#     `kubernetes-validate --strict` for Kubernetes $K8S_VERSION; every Secret ships empty;
#   - the compose file passes check-jsonschema against the vendored compose-spec schema
#     (schemas/compose-spec.json, Apache-2.0, schemas/LICENSE.compose-spec);
#   - the systemd units pass `systemd-analyze verify` with ExecStart pointed at a copy of the
#     built binary in a temporary root; any warning fails.
# Usage: deploy/validate.sh PATH_TO_BUILT_DRDSURV
set -euo pipefail
cd "$(dirname "$0")"
K8S_VERSION="${K8S_VERSION:-1.32.0}"
bin="${1:?usage: deploy/validate.sh PATH_TO_BUILT_DRDSURV}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

kubectl kustomize . > "$work/rendered.yaml"
kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$work/rendered.yaml" k8s/*.yaml
python3 - "$work/rendered.yaml" <<'PY'
import sys, yaml
n = 0
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if not doc:
        continue
    n += 1
    if doc["kind"] == "Secret":
        filled = [k for k, v in {**doc.get("data", {}), **doc.get("stringData", {})}.items() if v]
        assert not filled, f"Secret {doc['metadata']['name']} ships values for {filled}"
    if doc["kind"] == "Deployment":
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"], c["name"]
            assert "limits" in c["resources"] and "requests" in c["resources"], c["name"]
            assert "livenessProbe" in c and "readinessProbe" in c, c["name"]
print(f"kubernetes: {n} rendered resources valid for {sys.argv[1].split('/')[-1]}")
PY
echo "kubernetes: every manifest passes kubernetes-validate --strict for $K8S_VERSION"

check-jsonschema --schemafile schemas/compose-spec.json docker-compose.yml

mkdir -p "$work/root/usr/local/bin" "$work/units"
cp "$bin" "$work/root/usr/local/bin/drdsurv"
for u in systemd/*.service; do
  sed "s#/usr/local/bin/drdsurv#$work/root/usr/local/bin/drdsurv#g" "$u" > "$work/units/$(basename "$u")"
done
out=$(systemd-analyze verify "$work"/units/*.service 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then
  echo "systemd-analyze verify warned:"; echo "$out"; exit 1
fi
echo "systemd: $(ls systemd/*.service | wc -l) units pass systemd-analyze verify"
