#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine: installs what the tests need
# (idempotently), builds every binary, then runs unit and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# podman, skopeo, umoci and docker-compose: the container tests (Docker itself is the
# machine's; without it those tests fail saying so).
for pkg in etcd-server etcd-client protobuf-compiler curl openssl iproute2 iptables strace fuse3 \
  dnsmasq-base podman skopeo umoci docker-compose; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# Debian's package starts an etcd service on 2379; the tests use their own ports, but a
# member on 2379 would confuse anyone running ours by hand.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
  systemctl stop etcd || true
fi

cargo build --workspace --bins
# The container images from release binaries (scripts/images.sh: etcd-rs:<version> and
# etcd-rs:dev). A failure here is reported and the rest of the suite still runs; the
# container tests then fail, naming what is missing.
if ! bash scripts/images.sh; then
  echo "test.sh: scripts/images.sh failed; the container tests (docker, docker_compose, oci) will fail" >&2
fi
cargo test --workspace -- --test-threads="${TEST_THREADS:-2}"

# Coverage-guided fuzzing of the decoders of on-disk and peer-supplied bytes, each target
# for FUZZ_SECONDS (see fuzz/README.md).
bash scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
