#!/usr/bin/env bash
# Builds the container images etcd-rs:<version> and etcd-rs:dev (deploy/Dockerfile) from
# release binaries. No registry is needed: unless BASE names a base image to use instead,
# the base is made here from the host's files (the shared libraries `ldd` lists for the
# binaries, a passwd/group with the member's user, nsswitch.conf, /tmp and the CA bundle)
# and imported with `docker import` as etcd-rs-base:<version>.
#
# Environment: IMAGE (etcd-rs), VERSION (the workspace's), BASE (a base image to build on
# instead), SKIP_CARGO=1 (use the binaries already in target/release), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

# The binaries the image carries. REQUIRED ones must be built; OPTIONAL ones are copied
# when the build made them.
REQUIRED=(etcd etcdctl etcd-benchmark etcd-gateway)
OPTIONAL=()

# The member's user in the image (distroless' "nonroot" number; deploy/Dockerfile's USER).
UID_GID=65532

IMAGE=${IMAGE:-etcd-rs}
VERSION=${VERSION:-$(awk -F'"' '/^version *=/ { print $2; exit }' Cargo.toml)}
if [ -z "${REVISION:-}" ]; then
  REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
  if [ -n "$(git status --porcelain 2>/dev/null)" ]; then
    REVISION="$REVISION-dirty"
  fi
fi
SOURCE=${SOURCE:-$(git config --get remote.origin.url 2>/dev/null || true)}
case "$SOURCE" in
  http://* | https://* | git@*) ;;
  *) SOURCE="etcd-rs" ;;
esac

if ! docker info >/dev/null 2>&1; then
  echo "images.sh: Docker is not running or not installed (docker info failed)" >&2
  exit 1
fi

target=${CARGO_TARGET_DIR:-target}
if [ "${SKIP_CARGO:-0}" != 1 ]; then
  # Every binary of the workspace but the test harness's (a new crate's binary comes along).
  cargo build --release --workspace --bins --exclude etcd-e2e
fi
release="$target/release"

work="$target/image"
rm -rf "$work"
mkdir -p "$work/context/bin" "$work/context/data" "$work/rootfs"

bins=()
for b in "${REQUIRED[@]}"; do
  [ -x "$release/$b" ] || { echo "images.sh: $release/$b is missing" >&2; exit 1; }
  bins+=("$b")
done
for b in ${OPTIONAL[@]+"${OPTIONAL[@]}"}; do
  if [ -x "$release/$b" ]; then bins+=("$b"); else echo "images.sh: no $b built; not in the image"; fi
done
for b in "${bins[@]}"; do
  # The release profile keeps line tables for backtraces on the host; the image does not
  # need them.
  strip -o "$work/context/bin/$b" "$release/$b"
done

if [ -z "${BASE:-}" ]; then
  root="$work/rootfs"
  mkdir -p "$root/etc" "$root/tmp" "$root/usr/local/bin" "$root/var/lib"
  chmod 1777 "$root/tmp"
  # Every shared library the binaries load, and the dynamic loader, at the paths ldd gives.
  for b in "${bins[@]}"; do
    ldd "$work/context/bin/$b" | awk '/=> \// { print $3 } /^\t\// { print $1 }'
  done | sort -u | while read -r lib; do
    cp -L --parents "$lib" "$root/"
  done
  printf '%s\n' "root:x:0:0:root:/root:/sbin/nologin" \
    "etcd:x:$UID_GID:$UID_GID:etcd:/var/lib/etcd:/sbin/nologin" >"$root/etc/passwd"
  printf '%s\n' "root:x:0:" "etcd:x:$UID_GID:" >"$root/etc/group"
  # glibc's resolver (files and dns are built into libc): /etc/hosts first, then the DNS
  # server Docker writes into /etc/resolv.conf (container names on a user-defined network).
  printf '%s\n' "passwd: files" "group: files" "hosts: files dns" >"$root/etc/nsswitch.conf"
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    mkdir -p "$root/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  fi
  BASE="$IMAGE-base:$VERSION"
  tar --numeric-owner --owner=0 --group=0 -C "$root" -cf - . |
    docker import \
      --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
      --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
      --change 'LABEL org.opencontainers.image.title=etcd-rs-base' \
      --message "etcd-rs base: the host's shared libraries for ${bins[*]}" \
      - "$BASE" >/dev/null
  echo "images.sh: base $BASE made from the host's libraries"
fi

DOCKER_BUILDKIT=0 docker build -q \
  --build-arg "BASE=$BASE" \
  --build-arg "VERSION=$VERSION" \
  --build-arg "REVISION=$REVISION" \
  --build-arg "SOURCE=$SOURCE" \
  -t "$IMAGE:$VERSION" -t "$IMAGE:dev" \
  -f deploy/Dockerfile "$work/context" >/dev/null
echo "images.sh: built $IMAGE:$VERSION and $IMAGE:dev (${bins[*]}) on $BASE"
# The images these tags named before, now untagged.
for title in etcd-rs etcd-rs-base; do
  docker image prune -f --filter "label=org.opencontainers.image.title=$title" >/dev/null
done
docker image ls "$IMAGE"
