#!/usr/bin/env bash
# Builds kube-apiserver and etcd (and kubectl when the machine has none) from the Go module proxy
# into bin/k8s/<version>/, the layout envtest expects in KUBEBUILDER_ASSETS. setup-envtest would
# download prebuilt binaries instead, but these machines reach only the module proxy.
#
# A binary already present is never rebuilt: kube-apiserver takes about four minutes here.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
version=${K8S_VERSION:-1.37.2}
out=${1:-"$root/bin/k8s/$version"}
mkdir -p "$out"
cd "$root/hack/tools"

# The API server reports this version to `kubectl version`; without the stamp it says v0.0.0.
pkg=k8s.io/component-base/version
major=${version%%.*}
minor=${version#*.}; minor=${minor%%.*}
ldflags="-s -w -X $pkg.gitVersion=v$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"

build() { # name package
  if [ -x "$out/$1" ]; then
    echo "control plane: $out/$1 is there, not rebuilding"
    return
  fi
  echo "control plane: building $1 from the Go module proxy (minutes, once)"
  local start=$SECONDS
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/$1.tmp" "$2"
  mv "$out/$1.tmp" "$out/$1"
  echo "control plane: built $1 in $((SECONDS - start))s"
}

build etcd ./etcd
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
if ! command -v kubectl >/dev/null 2>&1; then
  build kubectl k8s.io/kubernetes/cmd/kubectl
fi
