#!/usr/bin/env bash
# Measures the performance targets of docs/performance.md with the real
# binary and scimd-load on loopback: initial sync, userName eq lookups,
# churn at 200 changes/s, churn as fast as clients go, full re-evaluation
# after a policy edit, memory, and restart. Prints one line per target and
# leaves every report (JSON) in OUT.
#
#   scripts/perf-targets.sh [OUT]
#
# Sizes and concurrency come from the environment: USERS (100000), GROUPS_N
# (1000), MEMBERSHIPS (300000), SYNC_CONCURRENCY (16), READ_CONCURRENCY (a list: "8 16"),
# KEEP_DATA=1 keeps the data directory. It takes about ten minutes at the
# default size and needs about 2 GB of disk.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$(mktemp -d)}
mkdir -p "$out"
users=${USERS:-100000} groups=${GROUPS_N:-1000} memberships=${MEMBERSHIPS:-300000}
sync_c=${SYNC_CONCURRENCY:-16} read_c=${READ_CONCURRENCY:-8 16}
work=$(mktemp -d)
cleanup() {
  kill "${pid:-}" 2>/dev/null || true
  wait "${pid:-}" 2>/dev/null || true
  if [ "${KEEP_DATA:-}" = 1 ]; then echo "data kept in $work/data"; else rm -rf "$work"; fi
}
trap cleanup EXIT
go build -o "$work/scimd" "$root/cmd/scimd"
go build -o "$work/scimd-load" "$root/cmd/scimd-load"
cp -r "$root/policies" "$work/policies"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
admin=perf-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
base=http://127.0.0.1:$port
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(now)"; }
metric() { curl -fsS "$base/metrics" | awk -v m="$1" '$1 == m { printf "%.0f", $2 }'; }
mib() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 2**20:.0f} MiB')" "$1"; }
serve() {
  SCIMD_ADMIN_TOKEN=$admin "$work/scimd" serve --listen "127.0.0.1:$port" --data "$work/data" \
    --policies "$work/policies" --rate-limit 0 --guard-count 1000000 --log-level warn \
    >>"$out/serve.log" 2>&1 &
  pid=$!
  until curl -fsS "$base/readyz" >/dev/null 2>&1; do sleep 0.05; done
}
# summary_count is the number of decision.summary audit events so far.
summary_count() {
  curl -fsS -H "Authorization: Bearer $admin" "$base/api/v1/audit?type=decision.summary&limit=10000" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["events"]))'
}
# settle waits until the reconciler's queue is empty.
settle() {
  until [ "$(metric scimd_reconcile_queue_depth)" = 0 ]; do sleep 0.2; done
}

echo "machine: $(nproc) cores, $(free -g | awk '/^Mem/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
serve
token=$(curl -fsS -X POST -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
  -d '{"name":"perf"}' "$base/api/v1/tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
load() { "$work/scimd-load" "$@" --url "$base/scim/v2" --token "$token"; }

load sync --users "$users" --groups "$groups" --memberships "$memberships" \
  --concurrency "$sync_c" --json "$out/sync.json" >"$out/sync.txt"
echo "sync ($users users, $groups groups, $memberships memberships, concurrency $sync_c): $(grep -o 'against .*: [0-9.]* s' "$out/sync.txt" | sed 's/.*: //')"
settle
for c in $read_c; do
  load read --concurrency "$c" --duration 20s --json "$out/read$c.json" >"$out/read$c.txt"
  echo "read (concurrency $c): $(awk '$1 == "get-username-eq" {print $6 " req/s, p50 " $7 " ms, p99 " $9 " ms"}' "$out/read$c.txt")"
done
settle
load churn --rate 200 --concurrency 16 --duration 30s --json "$out/churn200.json" >"$out/churn200.txt"
echo "churn at 200/s: $(grep commit-to-role-applied "$out/churn200.txt" | sed 's/.*commits)://')"
settle
load churn --rate 0 --concurrency 32 --duration 20s --json "$out/churnmax.json" >"$out/churnmax.txt"
echo "churn as fast as 32 clients go: $(awk '$1 == "total" {print $6 " req/s, p50 " $7 " ms, p99 " $9 " ms"}' "$out/churnmax.txt")"
settle

before=$(summary_count)
start=$(now)
echo "# edited $(date -u +%FT%TZ)" >>"$work/policies/groups.rego"
until [ "$(summary_count)" -gt "$before" ]; do sleep 0.1; done
# From the save to the summary event's own time (not to when polling saw it).
done_at=$(curl -fsS -H "Authorization: Bearer $admin" "$base/api/v1/audit?type=decision.summary&limit=10000" |
  python3 -c 'import json,sys,datetime; e=json.load(sys.stdin)["events"][-1]; print(datetime.datetime.fromisoformat(e["time"].replace("Z","+00:00")).timestamp())')
echo "full re-evaluation after a policy edit (save to decision.summary, debounce included): $(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$start" "$done_at") s"
settle
echo "memory after the runs: RSS $(mib "$(metric process_resident_memory_bytes)"), heap $(mib "$(metric go_memstats_heap_alloc_bytes)")"

kill -TERM "$pid"
wait "$pid" || true
start=$(now)
serve
echo "restart to /readyz: $(since "$start") s"
until [ "$(metric scimd_decisions_total)" != 0 ]; do sleep 0.1; done
echo "restart to startup pass evaluated: $(since "$start") s"
settle
sleep 5
echo "memory after restart: RSS $(mib "$(metric process_resident_memory_bytes)"), heap $(mib "$(metric go_memstats_heap_alloc_bytes)")"
echo "reports in $out"
