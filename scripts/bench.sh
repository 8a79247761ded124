#!/usr/bin/env bash
# Benchmarks our etcd against Debian's etcd 3.4 on this machine, side by side, with
# etcd-benchmark (etcd's `benchmark` flags). Not part of the test suite.
#
#   bash scripts/bench.sh [members]     # members: 1 (default) or 3
#   bash scripts/bench.sh memory        # resident memory through compaction and defrag
#   bash scripts/bench.sh gateway       # 3 members of ours: direct, through our gateway,
#                                       # through Debian's `etcd gateway start`
#
# Prints a markdown table of requests/sec for each row and the ratio ours/etcd, or (memory)
# the resident memory of one member after each maintenance step, ours and etcd's.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-1}
members=$mode
[ "$mode" = memory ] && members=1
[ "$mode" = gateway ] && members=3
cargo build --release --bins >/dev/null
ours=${CARGO_TARGET_DIR:-target}/release/etcd
bench=${CARGO_TARGET_DIR:-target}/release/etcd-benchmark
work=$(mktemp -d)
# Members are started inside command substitutions, so their PIDs are recorded in a file.
trap 'xargs -r kill -9 < "$work/pids" 2>/dev/null || true; rm -rf "$work"' EXIT

# start_cluster <binary> <base port> -> endpoints on stdout
start_cluster() {
  local bin=$1 base=$2 cluster="" eps=""
  for i in $(seq 0 $((members - 1))); do
    cluster+="${cluster:+,}m$i=http://127.0.0.1:$((base + 10 * i + 1))"
  done
  for i in $(seq 0 $((members - 1))); do
    local c=$((base + 10 * i)) p=$((base + 10 * i + 1))
    "$bin" --name "m$i" --data-dir "$work/$base-m$i" \
      --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
      --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
      --initial-cluster "$cluster" >"$work/$base-m$i.log" 2>&1 &
    echo $! >>"$work/pids"
    eps+="${eps:+,}127.0.0.1:$c"
  done
  for _ in $(seq 100); do
    ETCDCTL_API=3 etcdctl --endpoints "$eps" endpoint health >/dev/null 2>&1 && break
    sleep 0.2
  done
  echo "$eps"
}

rows=(
  "put 1 client|--conns=1 --clients=1 put --total=3000 --key-size=8 --val-size=256"
  "put 100 conns/1000 clients|--conns=100 --clients=1000 put --total=30000 --key-size=8 --val-size=256"
  "range linearizable|--conns=100 --clients=1000 range foo --total=50000 --consistency=l"
  "range serializable|--conns=100 --clients=1000 range foo --total=50000 --consistency=s"
)

qps() { # <endpoints> <args...>
  local eps=$1; shift
  # shellcheck disable=SC2068
  "$bench" --endpoints "$eps" $@ 2>/dev/null | awk '/Requests\/sec/ {print $2}'
}

# rss_mib <endpoints>: VmRSS of the member listening on the endpoint's port, in MiB.
rss_mib() {
  local port=${1##*:} pid
  pid=$(ss -ltnpH "sport = :$port" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
  awk '/VmRSS/ { printf "%d", $2 / 1024 }' "/proc/$pid/status"
}

# memory_steps <endpoints>: prints "step|MiB" lines: idle, after 100k puts of 256-byte
# values over 10k keys (200 clients), after compacting to head (physical), after defrag,
# after another 100k puts.
memory_steps() {
  local eps=$1 rev
  local load=(--conns=20 --clients=200 put --total=100000 --key-size=8 --val-size=256 --key-space-size=10000)
  echo "idle|$(rss_mib "$eps")"
  "$bench" --endpoints "$eps" "${load[@]}" >/dev/null 2>&1
  echo "after 100k puts|$(rss_mib "$eps")"
  rev=$(ETCDCTL_API=3 etcdctl --endpoints "$eps" endpoint status -w json | sed 's/.*"revision":\([0-9]*\).*/\1/')
  ETCDCTL_API=3 etcdctl --endpoints "$eps" compact "$rev" --physical >/dev/null
  echo "after compaction|$(rss_mib "$eps")"
  ETCDCTL_API=3 etcdctl --endpoints "$eps" defrag --command-timeout=120s >/dev/null
  echo "after defrag|$(rss_mib "$eps")"
  "$bench" --endpoints "$eps" "${load[@]}" >/dev/null 2>&1
  echo "after another 100k puts|$(rss_mib "$eps")"
}

if [ "$mode" = memory ]; then
  etcd_eps=$(start_cluster /usr/bin/etcd 41000)
  mapfile -t theirs < <(memory_steps "$etcd_eps")
  ours_eps=$(start_cluster "$ours" 42000)
  mapfile -t mine < <(memory_steps "$ours_eps")
  echo "| step | etcd 3.4 RSS MiB | ours RSS MiB |"
  echo "|---|---:|---:|"
  for i in "${!theirs[@]}"; do
    echo "| ${theirs[$i]%%|*} | ${theirs[$i]#*|} | ${mine[$i]#*|} |"
  done
  exit 0
fi

if [ "$mode" = gateway ]; then
  ours_eps=$(start_cluster "$ours" 42000)
  ETCDCTL_API=3 etcdctl --endpoints "$ours_eps" put foo bar >/dev/null
  "$ours" gateway start --endpoints "$ours_eps" --listen-addr 127.0.0.1:43790 >"$work/gw-ours.log" 2>&1 &
  echo $! >>"$work/pids"
  /usr/bin/etcd gateway start --endpoints "$ours_eps" --listen-addr 127.0.0.1:43791 >"$work/gw-etcd.log" 2>&1 &
  echo $! >>"$work/pids"
  for _ in $(seq 100); do
    grep -q "ready to proxy" "$work/gw-ours.log" && grep -q "ready to proxy" "$work/gw-etcd.log" && break
    sleep 0.1
  done
  echo "| row (3 members of ours) | direct req/s | our gateway req/s | etcd 3.4's gateway req/s | ours/direct | etcd's/direct |"
  echo "|---|---:|---:|---:|---:|---:|"
  for row in "${rows[@]}"; do
    name=${row%%|*} args=${row#*|}
    d=$(qps "$ours_eps" $args)
    g=$(qps 127.0.0.1:43790 $args)
    e=$(qps 127.0.0.1:43791 $args)
    echo "| $name | $d | $g | $e | $(awk -v a="$g" -v b="$d" 'BEGIN { printf "%.2f", a / b }') | $(awk -v a="$e" -v b="$d" 'BEGIN { printf "%.2f", a / b }') |"
  done
  exit 0
fi

etcd_eps=$(start_cluster /usr/bin/etcd 41000)
ours_eps=$(start_cluster "$ours" 42000)
ETCDCTL_API=3 etcdctl --endpoints "$etcd_eps" put foo bar >/dev/null
ETCDCTL_API=3 etcdctl --endpoints "$ours_eps" put foo bar >/dev/null

echo "| row ($members member(s)) | etcd 3.4 req/s | ours req/s | ours/etcd |"
echo "|---|---:|---:|---:|"
for row in "${rows[@]}"; do
  name=${row%%|*} args=${row#*|}
  e=$(qps "$etcd_eps" $args)
  o=$(qps "$ours_eps" $args)
  ratio=$(awk -v o="$o" -v e="$e" 'BEGIN { if (e > 0) printf "%.2f", o / e; else print "n/a" }')
  echo "| $name | $e | $o | $ratio |"
done
