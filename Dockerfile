# One Dockerfile builds each of the three programs; PROGRAM picks which (the folder under cmd/):
#   docker build --build-arg PROGRAM=controller -t ghcr.io/lendo/loan-controller:latest .
#   docker build --build-arg PROGRAM=gateway    -t ghcr.io/lendo/loan-gateway:latest .
#   docker build --build-arg PROGRAM=bank-sim   -t ghcr.io/lendo/bank-sim:latest .
# `make docker-build` runs all three.

# Build the program
FROM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH
ARG PROGRAM=controller

WORKDIR /workspace
# Copy the Go module manifests and download the modules before the sources, so that this layer
# is cached and rebuilt only when the dependencies change.
COPY go.mod go.mod
COPY go.sum go.sum
RUN go mod download

# Copy the Go sources (.dockerignore leaves out binaries and local state).
COPY api/ api/
COPY cmd/ cmd/
COPY internal/ internal/

# CGO off gives a static binary that runs on distroless/static. GOARCH is left empty when
# TARGETARCH is unset, so that the build works on the host's architecture without BuildKit and
# cross-compiles with `docker buildx build --platform=linux/arm64`.
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/app ./cmd/${PROGRAM}

# Use distroless as a minimal base image to package the binary:
# no shell, no package manager, a non-root user (65532).
# Refer to https://github.com/GoogleContainerTools/distroless for more details.
FROM gcr.io/distroless/static:nonroot
WORKDIR /
# The path is the same for every program: ENTRYPOINT cannot expand a build argument, and the
# manifests then need no `command`, only `args`.
COPY --from=builder /out/app /app
USER 65532:65532

ENTRYPOINT ["/app"]
