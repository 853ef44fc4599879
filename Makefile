# Image URLs for the three programs. One Dockerfile builds each (see the docker-build target).
IMG_REGISTRY ?= ghcr.io/lendo
IMG_TAG ?= latest
CONTROLLER_IMG ?= $(IMG_REGISTRY)/loan-controller:$(IMG_TAG)
GATEWAY_IMG ?= $(IMG_REGISTRY)/loan-gateway:$(IMG_TAG)
BANKSIM_IMG ?= $(IMG_REGISTRY)/bank-sim:$(IMG_TAG)

# The Kubernetes version of the test control plane (kube-apiserver and etcd in bin/k8s/<version>).
K8S_VERSION ?= 1.37.2

# Get the currently used golang install path (in GOPATH/bin, unless GOBIN is set)
ifeq (,$(shell go env GOBIN))
GOBIN=$(shell go env GOPATH)/bin
else
GOBIN=$(shell go env GOBIN)
endif

# CONTAINER_TOOL defines the container tool to be used for building images.
CONTAINER_TOOL ?= docker

# Setting SHELL to bash allows bash commands to be executed by recipes.
# Options are set to exit when a recipe line exits non-zero or a piped command fails.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRD and the RBAC roles from the +kubebuilder markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/..." paths="./internal/controller/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	$(CONTROLLER_GEN) rbac:roleName=gateway-role paths="./internal/gateway/..." output:rbac:artifacts:config=config/rbac/gateway

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods from the +kubebuilder markers.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: verify-generated
verify-generated: manifests generate chart fmt ## Fail when the committed generated files or formatting are stale.
	@git diff --exit-code --stat -- api config internal cmd test hack dist/chart || { \
		echo "Generated files or formatting are stale: run 'make manifests generate chart fmt' and commit."; exit 1; }

.PHONY: fmt
fmt: ## Run go fmt against code.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet against code.
	go vet ./...

.PHONY: envtest-assets
envtest-assets: setup-envtest ## Provide kube-apiserver and etcd for the tests in bin/k8s (built once, then reused).
	@K8S_VERSION=$(K8S_VERSION) SETUP_ENVTEST=$(ENVTEST) hack/envtest-assets.sh

# Unit and envtest suites: everything but the whole-system tests (test/e2e, test/faults). The
# benchmark's own unit tests (test/bench: its figures, targets and --strict) run here too; the
# benchmark itself is make bench.
TEST_PACKAGES = $$(go list ./... | grep -vE "/test/(e2e|faults)")

.PHONY: test
test: manifests generate chart fmt vet setup-envtest helm ## Run the tests (unit and envtest) against a real kube-apiserver and etcd.
	HELM=$(HELM) KUBEBUILDER_ASSETS="$$(K8S_VERSION=$(K8S_VERSION) SETUP_ENVTEST=$(ENVTEST) hack/envtest-assets.sh)" \
		go test $(TEST_PACKAGES) -count=1 -coverprofile cover.out

.PHONY: test-e2e
test-e2e: manifests generate fmt vet setup-envtest build ## Run the end-to-end, fault and hostile-input tests on real processes.
	# One package at a time: each starts a whole stack of processes on a 2-core machine.
	KUBEBUILDER_ASSETS="$$(K8S_VERSION=$(K8S_VERSION) SETUP_ENVTEST=$(ENVTEST) hack/envtest-assets.sh)" \
		go test ./test/e2e/... ./test/faults/... -p 1 -count=1 -timeout 20m -v
	hack/fuzz.sh

.PHONY: lint
lint: golangci-lint lint-openapi ## Run golangci-lint and the OpenAPI linter.
	$(GOLANGCI_LINT) run

# Spectral is a linter of its own, not the library the tests validate answers with: the REST
# contract must pass its recommended rules (spectral:oas, .spectral.yaml) without an error or a
# warning.
.PHONY: lint-openapi
lint-openapi: spectral ## Lint the gateway's OpenAPI document with Spectral's recommended rules.
	$(SPECTRAL) lint --ruleset .spectral.yaml --fail-severity=warn internal/gateway/openapi.yaml

.PHONY: lint-fix
lint-fix: golangci-lint ## Run golangci-lint and fix what it can.
	$(GOLANGCI_LINT) run --fix

# Extra flags of the benchmark program, e.g. BENCH_FLAGS=--strict to fail on a missed target.
BENCH_FLAGS ?=

.PHONY: bench
bench: build setup-envtest ## Run the scale benchmarks (10,000 to 100,000 applications); figures in bin/bench/.
	KUBEBUILDER_ASSETS="$$(K8S_VERSION=$(K8S_VERSION) SETUP_ENVTEST=$(ENVTEST) hack/envtest-assets.sh)" \
		go run ./test/bench --scale full --out bin/bench $(BENCH_FLAGS)

.PHONY: bench-quick
bench-quick: build setup-envtest ## Run the benchmarks at 1,000 applications (a few minutes).
	KUBEBUILDER_ASSETS="$$(K8S_VERSION=$(K8S_VERSION) SETUP_ENVTEST=$(ENVTEST) hack/envtest-assets.sh)" \
		go run ./test/bench --scale quick --out bin/bench $(BENCH_FLAGS)

# The reports bench-summary combines: the three newest runs unless named.
BENCH_REPORTS ?= $$(ls -t bin/bench/2*.json | head -3)

.PHONY: bench-summary
bench-summary: ## Combine benchmark reports (BENCH_REPORTS, default the three newest): min/median/max of each figure.
	go run ./test/bench summarize $(BENCH_REPORTS)

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the controller, the gateway and the bank simulator into bin/.
	go build -o bin/loan-controller ./cmd/controller
	go build -o bin/loan-gateway ./cmd/gateway
	go build -o bin/bank-sim ./cmd/bank-sim

.PHONY: dev
dev: build setup-envtest ## Run the whole system locally (etcd, kube-apiserver, bank simulator or BANK_URL, controller, gateway).
	go build -o bin/devenv ./cmd/devenv
	@# exec, and no `go run`: Ctrl-C reaches devenv itself, which stops the stack and exits 0.
	KUBEBUILDER_ASSETS="$$(K8S_VERSION=$(K8S_VERSION) SETUP_ENVTEST=$(ENVTEST) hack/envtest-assets.sh)" \
		exec bin/devenv

.PHONY: dev-reset
dev-reset: ## Like dev, but delete the stored applications first (DEV_DIR/etcd).
	DEV_RESET=1 $(MAKE) dev

.PHONY: run
run: manifests generate fmt vet ## Run the controller from your host against the cluster in your kubeconfig.
	go run ./cmd/controller

# If you wish to build the images targeting other platforms you can use the --platform flag.
# (i.e. docker build --platform linux/arm64). However, you must enable docker buildKit for it.
# More info: https://docs.docker.com/develop/develop-images/build_enhancements/
.PHONY: docker-build
docker-build: ## Build the controller, gateway and bank simulator images.
	$(CONTAINER_TOOL) build --build-arg PROGRAM=controller -t ${CONTROLLER_IMG} .
	$(CONTAINER_TOOL) build --build-arg PROGRAM=gateway -t ${GATEWAY_IMG} .
	$(CONTAINER_TOOL) build --build-arg PROGRAM=bank-sim -t ${BANKSIM_IMG} .

.PHONY: docker-push
docker-push: ## Push the three images.
	$(CONTAINER_TOOL) push ${CONTROLLER_IMG}
	$(CONTAINER_TOOL) push ${GATEWAY_IMG}
	$(CONTAINER_TOOL) push ${BANKSIM_IMG}

.PHONY: build-installer
build-installer: manifests generate ## Generate dist/install.yaml: the CRD and everything needed to deploy.
	mkdir -p dist
	$(KUSTOMIZE) $(DEPLOY_OVERLAY) > dist/install.yaml

##@ Images

# make images builds the three images without a container engine (hack/images, with
# go-containerregistry): OCI layouts in bin/images/<program>, the same digests for the same commit.
# make images-push pushes them to IMG_REGISTRY with the credentials of ~/.docker/config.json.
IMG_VERSION ?= $(shell git describe --tags --always 2>/dev/null || echo dev)
IMAGES_FLAGS = -out bin/images -registry $(IMG_REGISTRY) -tag $(IMG_TAG) -version $(IMG_VERSION) \
	-revision $$(git rev-parse HEAD) -created $$(git log -1 --format=%ct)

.PHONY: images
images: ## Build the controller, gateway and bank simulator images as OCI layouts in bin/images.
	go run ./hack/images $(IMAGES_FLAGS)

.PHONY: images-push
images-push: ## Build the three images and push them to IMG_REGISTRY (tag IMG_TAG).
	go run ./hack/images $(IMAGES_FLAGS) -push

##@ Helm chart

# dist/chart installs what config/default installs. Its copies of generated files (the CRD, the
# roles from the +kubebuilder:rbac markers), of the admission policy and of the flow-control
# objects are refreshed here, never edited by hand; test/manifests checks that chart and
# config/default render the same objects.
CHART_DIR ?= dist/chart

.PHONY: chart
chart: manifests ## Copy the CRD, the generated roles, the admission policy and the flow control into dist/chart.
	mkdir -p $(CHART_DIR)/crds $(CHART_DIR)/files
	cp config/crd/bases/*.yaml $(CHART_DIR)/crds/
	cp config/rbac/role.yaml $(CHART_DIR)/files/manager-role.yaml
	cp config/rbac/gateway/role.yaml $(CHART_DIR)/files/gateway-role.yaml
	cp config/policy/status_label_policy.yaml config/policy/status_label_policy_binding.yaml $(CHART_DIR)/files/
	cp config/flowcontrol/*_priority_level.yaml config/flowcontrol/*_flow_schema.yaml $(CHART_DIR)/files/

.PHONY: helm-lint
helm-lint: chart helm ## Lint the chart.
	$(HELM) lint --strict $(CHART_DIR)

.PHONY: helm-package
helm-package: chart helm ## Package the chart into dist/ (loan-operator-<version>.tgz), for `helm push`.
	$(HELM) package $(CHART_DIR) --destination dist

##@ Deployment

# What deploy, undeploy and build-installer render: config/default (with the bank simulator) or
# another overlay, e.g. DEPLOY_OVERLAY=config/overlays/real-bank.
DEPLOY_OVERLAY ?= config/default

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests ## Install the CRD into the cluster in ~/.kube/config.
	$(KUSTOMIZE) config/crd | $(KUBECTL) apply -f -

.PHONY: uninstall
uninstall: manifests ## Uninstall the CRD. Call with ignore-not-found=true to ignore resource not found errors.
	$(KUSTOMIZE) config/crd | $(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -f -

.PHONY: deploy
deploy: manifests ## Deploy the controller and the gateway to the cluster in ~/.kube/config.
	$(KUSTOMIZE) $(DEPLOY_OVERLAY) | $(KUBECTL) apply -f -

.PHONY: undeploy
undeploy: ## Undeploy from the cluster. Call with ignore-not-found=true to ignore resource not found errors.
	$(KUSTOMIZE) $(DEPLOY_OVERLAY) | $(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -f -

##@ Dependencies

## Location to install dependencies to
LOCALBIN ?= $(shell pwd)/bin
$(LOCALBIN):
	mkdir -p $(LOCALBIN)

## Tool Binaries
KUBECTL ?= kubectl
# kustomize is built into kubectl, so nothing needs downloading.
KUSTOMIZE ?= $(KUBECTL) kustomize
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
ENVTEST ?= $(LOCALBIN)/setup-envtest
GOLANGCI_LINT = $(LOCALBIN)/golangci-lint
SPECTRAL ?= $(LOCALBIN)/spectral
HELM ?= $(LOCALBIN)/helm

## Tool Versions
CONTROLLER_TOOLS_VERSION ?= v0.23.0
ENVTEST_VERSION ?= v0.25.1
GOLANGCI_LINT_VERSION ?= v2.15.0
# Spectral's version is the one hack/tools/spectral/package.json names; its lockfile pins the rest.
SPECTRAL_PACKAGE = hack/tools/spectral/package.json
SPECTRAL_LOCK = hack/tools/spectral/package-lock.json
SPECTRAL_VERSION := $(shell sed -n 's/.*"@stoplight\/spectral-cli": *"\([^"]*\)".*/\1/p' $(SPECTRAL_PACKAGE))
HELM_VERSION ?= v4.3.1

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Download controller-gen locally if necessary.
$(CONTROLLER_GEN): $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: setup-envtest
setup-envtest: $(ENVTEST) ## Download setup-envtest locally if necessary (used only where the internet is reachable).
$(ENVTEST): $(LOCALBIN)
	$(call go-install-tool,$(ENVTEST),sigs.k8s.io/controller-runtime/tools/setup-envtest,$(ENVTEST_VERSION))

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT) ## Download golangci-lint locally if necessary.
$(GOLANGCI_LINT): $(LOCALBIN)
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

# Spectral comes from the npm registry (it is written for Node.js) into a folder of its version
# under bin/, with bin/spectral linking to its command. npm ci installs exactly the tree that
# hack/tools/spectral/package-lock.json pins (versions and integrity hashes), so that a clean
# clone lints with the same code as the last one; it installs again when the lockfile changes
# (installed.lock is the lockfile of the last install that succeeded).
.PHONY: spectral
spectral: $(SPECTRAL) ## Install the Spectral OpenAPI linter locally if necessary.
$(SPECTRAL): $(LOCALBIN) $(SPECTRAL_LOCK)
	@dir="$(LOCALBIN)/spectral-$(SPECTRAL_VERSION)"; \
	cmp -s "$(SPECTRAL_LOCK)" "$$dir/installed.lock" || { \
		echo "Installing @stoplight/spectral-cli@$(SPECTRAL_VERSION) as $(SPECTRAL_LOCK) pins it"; \
		rm -rf "$$dir" && mkdir -p "$$dir" && cp "$(SPECTRAL_PACKAGE)" "$(SPECTRAL_LOCK)" "$$dir/" && \
		npm ci --prefix "$$dir" --no-audit --no-fund --loglevel=error && \
		cp "$(SPECTRAL_LOCK)" "$$dir/installed.lock"; \
	}
	ln -sf "$(LOCALBIN)/spectral-$(SPECTRAL_VERSION)/node_modules/.bin/spectral" $(SPECTRAL)

.PHONY: helm
helm: $(HELM) ## Build helm from the Go module proxy if necessary (a few minutes, once).
$(HELM): $(LOCALBIN)
	$(call go-install-tool,$(HELM),helm.sh/helm/v4/cmd/helm,$(HELM_VERSION))

# go-install-tool will 'go install' any package with custom target and name of binary, if it doesn't exist
# $1 - target path with name of binary
# $2 - package url which can be installed
# $3 - specific version of package
define go-install-tool
@[ -f "$(1)-$(3)" ] && [ "$$(readlink -- "$(1)" 2>/dev/null)" = "$(1)-$(3)" ] || { \
set -e; \
package=$(2)@$(3) ;\
echo "Downloading $${package}" ;\
rm -f $(1) ;\
GOBIN=$(LOCALBIN) go install $${package} ;\
mv $(1) $(1)-$(3) ;\
} ;\
ln -sf $$(realpath $(1)-$(3)) $(1)
endef
