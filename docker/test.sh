#!/usr/bin/env bash
# Build the container image from docker/Dockerfile and check it for real, on a machine where no
# image registry is reachable: the two base images the Dockerfile names are made locally
# (debootstrap for Debian, the host's Rust toolchain for the build stage), in a Docker engine
# this script starts and stops by pid. The host's firewall and ip_forward are left alone.
#
# Checks: the demo exits 0 with no network; --version and --help; the compose file's lab and
# probe with compose v1 and v2; `lab serve` in one container probed from another; a non-root
# user, no toolchain and a size limit for the image.
#
# Usage (root): docker/test.sh [--prepare] [--export-binary PATH]
#   --prepare             only make the two base images (network-bound: CI runs it early)
#   --export-binary PATH  copy the image's release binary to PATH (CI packages it as the .deb)
# Needs: docker.io docker-compose debootstrap (apt).
# MXTRACE_DOCKER_CACHE (default /var/cache/mxtrace-docker) keeps the engine's data and the base
# rootfs between runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cache=${MXTRACE_DOCKER_CACHE:-/var/cache/mxtrace-docker}
image=mxtrace:test
# Bump when debian_base changes. The runtime image must stay small (the official
# debian:bookworm-slim is about 75 MB; mxtrace adds about 15 MB).
base_recipe=2
max_image_mb=120
mkdir -p "$cache/data"
run=$(mktemp -d)
dockerd_pid=
lab_cid=

log() { printf '== docker: %s\n' "$*"; }
fail() { printf 'docker/test.sh: FAIL: %s\n' "$*" >&2; exit 1; }

cleanup() {
    [ -n "$lab_cid" ] && docker rm -f "$lab_cid" >/dev/null 2>&1 || true
    if [ -n "$dockerd_pid" ]; then
        kill "$dockerd_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
    fi
    # dockerd leaves its namespace bind mounts behind; unmount before removing the folder.
    awk -v r="$run/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r \
        | while read -r m; do umount "$m" 2>/dev/null || true; done
    rm -rf "$run" || true
}
trap cleanup EXIT

# The Debian client (docker.io) matches the engine it installs; another `docker` may be first
# on PATH.
docker() { /usr/bin/docker -H "unix://$run/docker.sock" "$@"; }
export DOCKER_HOST="unix://$run/docker.sock"

start_engine() {
    log "start dockerd (no bridge, no iptables: the host network is left as it is)"
    /usr/sbin/dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
        --data-root "$cache/data" --exec-root "$run/exec" --pidfile "$run/dockerd.pid" \
        -H "unix://$run/docker.sock" >"$run/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 100); do
        docker version >/dev/null 2>&1 && return 0
        kill -0 "$dockerd_pid" 2>/dev/null || { cat "$run/dockerd.log"; fail "dockerd exited"; }
        sleep 0.2
    done
    cat "$run/dockerd.log"
    fail "dockerd did not answer in 20 s"
}

# debian:bookworm-slim, trimmed the way the official slim image is.
debian_base() {
    # The recipe's version is a label, so a base made by an older recipe is made again.
    [ "$(docker image inspect -f '{{index .Config.Labels "mxtrace.base-recipe"}}' \
        debian:bookworm-slim 2>/dev/null)" = "$base_recipe" ] && return 0
    log "make debian:bookworm-slim with debootstrap"
    local mirror rootfs=$run/rootfs
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null \
        || true)
    debootstrap --variant=minbase bookworm "$rootfs" "${mirror:-http://deb.debian.org/debian}" \
        >"$run/debootstrap.log" 2>&1 || { tail -n 20 "$run/debootstrap.log"; fail debootstrap; }
    rm -rf "$rootfs"/usr/share/{doc,man,info,locale}/* "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
    # As the official image's docker-clean: apt keeps no package cache (two 39 MB .bin files
    # after every `apt-get update`) and no downloaded .deb in any later layer.
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CLEAN'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CLEAN
    tar -C "$rootfs" -c . | docker import --change "LABEL mxtrace.base-recipe=$base_recipe" \
        - debian:bookworm-slim >/dev/null
}

# A stand-in for the rust:*-slim-bookworm image the Dockerfile names: Debian plus the host's
# toolchain, gcc, and the host's extra CA certificates (outbound TLS may be intercepted here).
rust_base() {
    local tag
    tag=$(awk '/^FROM rust:/ {print $2; exit}' docker/Dockerfile)
    [ -n "$tag" ] || fail "docker/Dockerfile names no rust: base image"
    docker image inspect "$tag" >/dev/null 2>&1 && return 0
    log "make $tag from the host toolchain ($(rustc --version))"
    local ctx=$run/rust-ctx sysroot
    sysroot=$(rustc --print sysroot)
    mkdir -p "$ctx/rust" "$ctx/ca"
    cp -a "$sysroot/bin" "$sysroot/lib" "$sysroot/libexec" "$ctx/rust/"
    cp /usr/local/share/ca-certificates/*.crt "$ctx/ca/" 2>/dev/null || true
    cat >"$ctx/Dockerfile" <<'EOF'
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
COPY rust/ /usr/local/rust/
ENV CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/rust/bin:$PATH
EOF
    docker build -q --network host -t "$tag" "$ctx" >/dev/null
}

build_image() {
    log "docker build -f docker/Dockerfile (the dependencies are their own cached layer)"
    local t0=$SECONDS
    local version source revision
    version=$(awk -F'"' '/^version *=/ {print $2; exit}' Cargo.toml)
    source=$(git remote get-url origin 2>/dev/null || echo "file://$PWD")
    revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
    docker build --network host -f docker/Dockerfile -t "$image" --build-arg "VERSION=$version" \
        --build-arg "SOURCE=$source" --build-arg "REVISION=$revision" . >"$run/build.log" 2>&1 \
        || { tail -n 40 "$run/build.log"; fail "docker build"; }
    local mb
    mb=$(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%d", $1/1e6}')
    log "built in $((SECONDS - t0)) s, $mb MB"
    [ "$mb" -le "$max_image_mb" ] || fail "the image is $mb MB, over $max_image_mb MB"
}

check_basics() {
    log "--version, --help"
    docker run --rm --network none "$image" --version | grep -q '^mxtrace ' || fail "--version"
    docker run --rm --network none "$image" --help | grep -q 'Exit codes' || fail "--help"
    log "the demo, with no network"
    docker run --rm --network none "$image" >"$run/demo.log" 2>&1 \
        || { tail -n 30 "$run/demo.log"; fail "demo in the container"; }
    log "non-root, no toolchain"
    local uid
    uid=$(docker run --rm --network none --entrypoint /bin/sh "$image" -c 'id -u')
    [ "$uid" != 0 ] || fail "the image runs as root"
    if docker run --rm --network none --entrypoint /bin/sh "$image" -c \
        'command -v cargo || command -v rustc || command -v cc || command -v gcc'; then
        fail "a build tool is in the image"
    fi
    local label version
    label=$(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.version"}}' \
        "$image")
    version=$(docker run --rm --network none "$image" --version | awk '{print $2}')
    [ "$label" = "$version" ] || fail "OCI version label '$label' is not the binary's '$version'"
}

# `lab serve` in one container, a trace from another sharing its network namespace (the lab
# binds loopback only), as compose does.
check_two_containers() {
    log "lab serve in one container, probed from another"
    docker volume rm -f mxtrace-test-lab >/dev/null 2>&1 || true
    lab_cid=$(docker run -d --network none -v mxtrace-test-lab:/lab "$image" \
        lab serve --bind 127.0.25.1 --port 2525 --dir /lab)
    for _ in $(seq 50); do
        docker exec "$lab_cid" test -s /lab/lab.json 2>/dev/null && break
        sleep 0.2
    done
    docker run --rm --network "container:$lab_cid" -v mxtrace-test-lab:/lab:ro "$image" \
        trace contoso.test --resolver 127.0.25.1:2525 --port 2525 --tls-ca-file /lab/ca.pem \
        --ehlo server.fabrikam.test --from user@fabrikam.test --rcpt user@contoso.test \
        >"$run/probe.log" 2>&1 || { cat "$run/probe.log"; fail "probe of the lab container"; }
    docker rm -f "$lab_cid" >/dev/null
    lab_cid=
    docker volume rm -f mxtrace-test-lab >/dev/null
}

# Compose v2 (the `docker compose` plugin) is not in Debian 12; Debian 13's package is a static
# binary, fetched from the Debian archive, checked against its pinned SHA-256, and unpacked as a
# CLI plugin in a private DOCKER_CONFIG (nothing is installed on the host).
compose_v2_deb=pool/main/d/docker-compose/docker-compose_2.26.1-4_amd64.deb
compose_v2_sha256=47681197cb2b1ab88206b42a1a92fc75f50d9530a6322d03494a473eed0408ea
compose_v2() {
    local deb=$cache/${compose_v2_deb##*/} mirror
    if ! sha256sum "$deb" 2>/dev/null | grep -q "^$compose_v2_sha256 "; then
        mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources \
            2>/dev/null || true)
        curl -fsS -m 120 -o "$deb" "${mirror:-http://deb.debian.org/debian}/$compose_v2_deb" \
            || fail "download of compose v2 ($compose_v2_deb)"
        sha256sum "$deb" | grep -q "^$compose_v2_sha256 " || fail "compose v2: SHA-256 mismatch"
    fi
    dpkg-deb -x "$deb" "$run/compose-v2"
    mkdir -p "$run/docker-config/cli-plugins"
    ln -sf "$run/compose-v2/usr/libexec/docker/cli-plugins/docker-compose" \
        "$run/docker-config/cli-plugins/docker-compose"
    DOCKER_CONFIG="$run/docker-config" /usr/bin/docker compose version | grep -Eq ' v?2\.' \
        || fail "docker compose is not compose v2"
}

check_compose() {
    check_compose_with "docker-compose v1" docker-compose
    compose_v2
    check_compose_with "docker compose v2" env DOCKER_CONFIG="$run/docker-config" \
        /usr/bin/docker compose
}

check_compose_with() {
    local name=$1
    shift
    log "compose: lab and probe ($name)"
    local compose=("$@" -p mxtracetest -f docker/compose.yaml)
    local rc=0
    "${compose[@]}" up --no-build --abort-on-container-exit --exit-code-from probe \
        >"$run/compose.log" 2>&1 || rc=$?
    "${compose[@]}" down -v >/dev/null 2>&1 || true
    [ "$rc" = 0 ] || { tail -n 40 "$run/compose.log"; fail "compose run exited $rc"; }
}

# The release binary the image was built with, copied out of it (CI packages this same build
# as the .deb instead of compiling mxtrace in release a second time).
export_binary() {
    local cid
    mkdir -p "$(dirname "$1")"
    cid=$(docker create "$image")
    docker cp "$cid:/usr/local/bin/mxtrace" "$1" || { docker rm "$cid" >/dev/null; fail "docker cp"; }
    docker rm "$cid" >/dev/null
    log "exported the image's binary to $1"
}

prepare_only=0
export_to=
while [ $# -gt 0 ]; do
    case "$1" in
    --prepare) prepare_only=1 ;;
    --export-binary) export_to=${2:?--export-binary needs a path}; shift ;;
    *) fail "usage: docker/test.sh [--prepare] [--export-binary PATH]" ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || fail "run as root (it starts a Docker engine)"
for c in /usr/sbin/dockerd /usr/bin/docker docker-compose debootstrap; do
    command -v "$c" >/dev/null || fail "$c is missing: apt-get install docker.io docker-compose debootstrap"
done
start_engine
debian_base
rust_base
if [ "$prepare_only" = 1 ]; then
    log "base images ready (--prepare)"
    exit 0
fi
build_image
docker tag "$image" mxtrace:local
[ -z "$export_to" ] || export_binary "$export_to"
check_basics
check_two_containers
check_compose
log "all checks passed"
