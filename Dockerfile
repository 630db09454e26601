# syntax=docker/dockerfile:1
#
# Gatehouse image: one binary that runs as `worker`, `gateway` or `setup`
# (see docker-compose.yml), with OpenTofu for the worker. Build with
#   docker build -t gatehouse .
# tests/compose_test.go checks the parts of this file the deployment relies
# on (what is built, the entrypoint, the non-root user).

############################## build stage ##############################
# The Go version matches the go directive of go.mod exactly, and
# GOTOOLCHAIN=local makes a mismatch fail the build instead of silently
# downloading another toolchain at build time.
FROM golang:1.26.8-bookworm AS build
ENV GOTOOLCHAIN=local
WORKDIR /src

# Modules first, in their own layer: it is rebuilt only when go.mod or
# go.sum change, not on every source edit (the Temporal server dependency
# tree is large, so this saves minutes per build).
COPY go.mod go.sum ./
RUN go mod download

COPY . .
# CGO_ENABLED=0: a static binary that needs no libc from the runtime image
# (the SQLite driver of `gatehouse dev` is pure Go, so nothing is lost).
# -trimpath: no build machine paths in the binary, reproducible builds.
# The cache mount keeps Go's build cache between builds (BuildKit, the
# default builder of docker compose); it is not part of any layer.
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -o /gatehouse ./cmd/gatehouse

############################## tofu stage ##############################
# OpenTofu for the workspaces Gatehouse plans and applies itself (terraform:
# mode). Built from its Go module source at the version the tests pin in
# .ci/tofu.sh (tests/compose_test.go checks they agree), the same way: no
# Debian package ships it, and building it here means the binary comes from
# the Go module proxy's checksummed source rather than a download we would
# have to verify. The module's go.mod has replace directives, so `go install
# …@version` refuses it: download the module and build inside a copy.
FROM golang:1.26.8-bookworm AS tofu
ENV GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
ARG TOFU_VERSION=v1.12.6
WORKDIR /tofu
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    dir="$(go mod download -json "github.com/opentofu/opentofu@${TOFU_VERSION}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" \
    && test -n "$dir" \
    && cp -r "$dir" src && chmod -R u+w src \
    && cd src \
    && go build -trimpath -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" -o /tofu/tofu ./cmd/tofu \
    && /tofu/tofu version

############################## runtime stage ##############################
# Not distroless: the worker's apply step runs a command from the config,
# and the example one (examples/apply.sh) is a POSIX sh script, so the image
# needs /bin/sh and the usual coreutils (date, mkdir, dirname). Debian slim
# is the smallest common base that has them, and it matches the builder's
# Debian release.
FROM debian:bookworm-slim

# CA certificates, for apply commands that talk to cloud APIs over TLS
# (terraform providers do); git, for terraform workspaces checked out per
# run (git: in the config), the way to give tofu a writable copy of the
# code in a container. Lists removed to keep the layer small.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git \
    && rm -rf /var/lib/apt/lists/*

# A dedicated unprivileged user with a fixed numeric UID/GID, so that
# volume ownership is predictable and Kubernetes' runAsNonRoot can verify
# it. /var/lib/gatehouse is created owned by it: a named volume mounted
# there for the first time is initialised from the image, ownership
# included, so the user can write stored plans and the apply log into it.
# (No VOLUME instruction: an anonymous volume per container would silently
# break the plan store the worker and the gateway must share.)
RUN groupadd --system --gid 10001 gatehouse \
    && useradd --system --uid 10001 --gid gatehouse \
        --home-dir /var/lib/gatehouse --no-create-home \
        --shell /usr/sbin/nologin gatehouse \
    && install -d -o gatehouse -g gatehouse -m 0750 /var/lib/gatehouse

COPY --from=build /gatehouse /usr/local/bin/gatehouse
# One image for every role, tofu included: the gateway never runs it (about
# 100 MB it carries for nothing), but one build and one tag to deploy keep
# worker, gateway and setup on the same gatehouse binary, which they must
# be (they share signing keys, the config's version and the workflow code).
COPY --from=tofu /tofu/tofu /usr/local/bin/tofu
# The example configs and their apply script. An apply dir resolves against
# the config file's directory, so with the default config,
# /etc/gatehouse/examples/compose/gatehouse.yaml (whose users have no tokens
# until `gatehouse token new` gives them some) and its apply dir "../..",
# the command ./examples/apply.sh runs from /etc/gatehouse and finds this
# copy. Owned by root, read-only for the
# service user: the worker must not be able to rewrite what it executes.
COPY examples/ /etc/gatehouse/examples/

# Defaults that make the image usable on its own; docker-compose.yml sets
# the same values explicitly. The gateway must listen on all interfaces to
# be reachable from outside the container (its own default is 127.0.0.1).
# The example apply script logs to ./.gatehouse by default, which would be
# under the read-only /etc/gatehouse: point it into the data directory.
ENV GATEHOUSE_CONFIG=/etc/gatehouse/examples/compose/gatehouse.yaml \
    GATEHOUSE_DATA_DIR=/var/lib/gatehouse \
    GATEHOUSE_HTTP_ADDR=0.0.0.0:8080 \
    APPLY_LOG=/var/lib/gatehouse/applied.log

WORKDIR /var/lib/gatehouse
USER 10001:10001
EXPOSE 8080

# Exec form: gatehouse is PID 1 and receives SIGTERM directly, so
# `docker stop` shuts the worker and the gateway down gracefully. (Reaping
# the apply command's orphaned children is left to an init: compose runs
# the containers with `init: true`.)
ENTRYPOINT ["gatehouse"]
CMD ["--help"]
