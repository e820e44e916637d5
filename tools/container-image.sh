#!/usr/bin/env bash
# Build the project's own Dockerfile, unchanged, with Debian's buildah (no Docker daemon, no registry), for the
# container test (tests/deploy/test_image.py). Prints `root=`, `runroot=` and `image=` lines: the buildah
# storage and the image to run.
#
# The Dockerfile's base (python:3.11-slim-bookworm) cannot be pulled without a registry, so a stand-in with
# the same Python is made by debootstrap from the Debian mirror apt already uses (read from apt at run time)
# and passed as PYTHON_IMAGE; users keep the Dockerfile's default. Both images are cached in build/container
# (vfs storage): the base by its package list, the image by a hash of its build context and base, so a
# second run builds nothing. Root only: buildah's vfs storage and debootstrap's chroot need it.
#
#   DEBIAN_MIRROR=<url>   use this mirror instead of apt's
set -euo pipefail
cd "$(dirname "$0")/.."

STATE="$PWD/build/container"
BUILDAH=(buildah --root "$STATE/storage" --runroot "$STATE/run" --storage-driver vfs)
SUITE=bookworm  # python3.11, like python:3.11-slim-bookworm
PACKAGES=python3.11,python3-venv,python3-pip,python-is-python3,ca-certificates
BASE_KEY="$SUITE $PACKAGES minbase v1"

fail() {
    echo "container-image: $*" >&2
    exit 1
}
say() { echo "container-image: $*" >&2; }

[ "$(id -u)" -eq 0 ] || fail "needs root (buildah's vfs storage, debootstrap's chroot): run make test as root, as .ci/run does"
for tool in buildah debootstrap; do
    command -v "$tool" >/dev/null || fail "$tool is missing: bash tools/system-deps.sh (make test runs it)"
done
mkdir -p "$STATE"
exec 9>"$STATE/lock"
flock 9 # one build at a time per checkout

hash_of() { sha256sum | cut -c1-12; }
has_image() { "${BUILDAH[@]}" inspect --type image "$1" >/dev/null 2>&1; }

# Debian's archive as apt sees it (sources.list or deb822 .sources): the main component of the release suite.
mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then
        echo "$DEBIAN_MIRROR"
        return
    fi
    apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT) $(IDENTIFIER) $(ORIGIN)' 2>/dev/null |
        awk '$3 == "main" && $4 == "Packages" && $2 !~ /-/ { print $1; exit }'
}

BASE="localhost/iot-connector-test-base:$SUITE-$(echo "$BASE_KEY" | hash_of)"
if ! has_image "$BASE"; then
    url="$(mirror)"
    [ -n "$url" ] || fail "apt lists no Debian mirror with a main component; set DEBIAN_MIRROR=<url of a Debian archive>"
    say "debootstrap $SUITE ($PACKAGES) from $url: the stand-in for python:3.11-slim-bookworm"
    started=$SECONDS
    rootfs="$(mktemp -d "$STATE/rootfs.XXXXXX")"
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$url" >"$STATE/debootstrap.log" 2>&1 ||
        fail "debootstrap failed; the end of $STATE/debootstrap.log: $(tail -5 "$STATE/debootstrap.log")"
    container="$("${BUILDAH[@]}" from scratch)"
    mount="$("${BUILDAH[@]}" mount "$container")"
    tar -C "$rootfs" --exclude='./var/cache/apt/archives/*.deb' --exclude='./var/lib/apt/lists/*' -cf - . |
        tar -C "$mount" -xpf -
    "${BUILDAH[@]}" umount "$container" >/dev/null
    "${BUILDAH[@]}" config --env LANG=C.UTF-8 --cmd python3 "$container"
    "${BUILDAH[@]}" commit --quiet --rm "$container" "$BASE" >/dev/null
    rm -rf "$rootfs"
    say "base $BASE in $((SECONDS - started)) s"
fi

# The build context's files that the Dockerfile copies, and the base: a change to any rebuilds the image.
context_hash="$(
    {
        "${BUILDAH[@]}" images --noheading --no-trunc --format '{{.ID}}' "$BASE"
        find Dockerfile .dockerignore requirements.txt setup.py pyproject.toml README.md src deploy -type f \
            ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum
    } | hash_of
)"
IMAGE="localhost/iot-connector:test-$context_hash"
if ! has_image "$IMAGE"; then
    say "building the Dockerfile as $IMAGE on $BASE"
    started=$SECONDS
    # --format docker keeps HEALTHCHECK (as `docker build` does; OCI images have no such field)
    args=(bud --isolation chroot --pull=never --network host --format docker --layers=false
        --build-arg "PYTHON_IMAGE=$BASE" --tag "$IMAGE" --file Dockerfile)
    # pip in the build trusts what this machine trusts (a TLS-inspecting proxy's CA), only while it runs
    [ -f /etc/ssl/certs/ca-certificates.crt ] &&
        args+=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
    for name in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy PIP_INDEX_URL; do
        [ -n "${!name:-}" ] && args+=(--build-arg "$name=${!name}")
    done
    "${BUILDAH[@]}" "${args[@]}" . >"$STATE/build.log" 2>&1 ||
        fail "buildah bud failed; the end of $STATE/build.log: $(tail -20 "$STATE/build.log")"
    say "image $IMAGE in $((SECONDS - started)) s"
    # older test images only take space (each is a full copy in vfs)
    "${BUILDAH[@]}" images --format '{{.Name}}:{{.Tag}}' |
        awk -v keep="$IMAGE" 'index($0, "localhost/iot-connector:test-") == 1 && $0 != keep' |
        xargs -r "${BUILDAH[@]}" rmi --force >/dev/null
fi

echo "root=$STATE/storage"
echo "runroot=$STATE/run"
echo "image=$IMAGE"
