#!/usr/bin/env bash
# Runs the linking guide's two organizations on real kind clusters, for a machine with Docker.
# Installs kind and helm when missing, raises the inotify limits that several kind clusters
# need, runs orgmesh with the kind provider and leaves report.json, junit.xml and diagnostics
# in $RUN_DIR for the workflow to upload. Exits with orgmesh's exit code.
set -euo pipefail
cd "$(dirname "$0")/.."

KIND_VERSION="${KIND_VERSION:-v0.32.0}"
HELM_VERSION="${HELM_VERSION:-v3.21.4}"
RUN_DIR="${RUN_DIR:-$PWD/orgmesh-runs/kind-e2e}"
BIN_DIR="${BIN_DIR:-$HOME/.local/bin}"
mkdir -p "$BIN_DIR"
export PATH="$BIN_DIR:$PATH"

if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
  echo "error: a running Docker engine is needed (docker info failed)" >&2
  exit 3
fi
if ! command -v kind >/dev/null; then
  curl -fsSLo "$BIN_DIR/kind" "https://kind.sigs.k8s.io/dl/${KIND_VERSION}/kind-linux-amd64"
  chmod +x "$BIN_DIR/kind"
fi
if ! command -v helm >/dev/null; then
  curl -fsSL "https://get.helm.sh/helm-${HELM_VERSION}-linux-amd64.tar.gz" | tar -xz -C /tmp linux-amd64/helm
  mv /tmp/linux-amd64/helm "$BIN_DIR/helm"
fi
# Several kind clusters exhaust the default inotify limits (kind known issue).
if [ "$(cat /proc/sys/fs/inotify/max_user_instances)" -lt 512 ]; then
  sudo sysctl -w fs.inotify.max_user_instances=512
fi
if [ "$(cat /proc/sys/fs/inotify/max_user_watches)" -lt 524288 ]; then
  sudo sysctl -w fs.inotify.max_user_watches=524288
fi

cargo build --release --locked
./target/release/orgmesh doctor ci/guide-kind.yaml
status=0
./target/release/orgmesh run ci/guide-kind.yaml --run-dir "$RUN_DIR" --timeout 15m || status=$?
echo "orgmesh exited with $status; reports in $RUN_DIR"
exit "$status"
