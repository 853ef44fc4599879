#!/usr/bin/env bash
# Prints the directory that holds kube-apiserver and etcd for envtest (KUBEBUILDER_ASSETS),
# providing them first if needed. In order of preference:
#   1. KUBEBUILDER_ASSETS, when it already names a directory with both binaries;
#   2. bin/k8s/<version>/, built or downloaded by an earlier run (never rebuilt);
#   3. setup-envtest, the kubebuilder convention where the internet is reachable, only if it
#      answers within a few seconds;
#   4. a build from the Go module proxy (hack/build-control-plane.sh, about four minutes once).
# Everything but the final path goes to stderr, so that callers can capture stdout.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
version=${K8S_VERSION:-1.37.2}
cached="$root/bin/k8s/$version"
setup_envtest=${SETUP_ENVTEST:-"$root/bin/setup-envtest"}

has_binaries() { [ -x "$1/kube-apiserver" ] && [ -x "$1/etcd" ]; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && has_binaries "$KUBEBUILDER_ASSETS"; then
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi
if has_binaries "$cached"; then
  # kubectl is built only where the machine has none; check again in case it went away.
  command -v kubectl >/dev/null 2>&1 || [ -x "$cached/kubectl" ] || "$root/hack/build-control-plane.sh" "$cached" >&2
  echo "$cached"
  exit 0
fi
if [ -x "$setup_envtest" ]; then
  if dir=$(timeout "${SETUP_ENVTEST_TIMEOUT:-20}" "$setup_envtest" use "$version" --bin-dir "$root/bin" -p path 2>/dev/null) \
      && has_binaries "$dir"; then
    mkdir -p "$cached"
    cp "$dir/kube-apiserver" "$dir/etcd" "$cached/"
    echo "envtest assets: downloaded by setup-envtest into $cached" >&2
    echo "$cached"
    exit 0
  fi
  echo "envtest assets: setup-envtest did not answer in time (no internet?); building instead" >&2
fi
"$root/hack/build-control-plane.sh" "$cached" >&2
echo "$cached"
