#!/usr/bin/env bash
# Measures the PostgreSQL targets of docs/performance.md with the real
# binaries on loopback: a throwaway PostgreSQL cluster (initdb defaults,
# fsync on), a leader and a standby scimd on it, then scimd-load's sync
# (writes/s with group commit), reads, churn at 200 changes/s (commit to
# role applied), the standby's lag histogram, and the time from kill -9 of
# the leader to the standby answering /readyz. Prints one line per target
# and leaves every report in OUT.
#
#   scripts/perf-postgres.sh [OUT]
#
# USERS (5000), CONCURRENCY (16), CHURN_DURATION (10s) come from the
# environment. Needs the postgresql package (initdb, pg_ctl); as root the
# database runs as the postgres user.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$(mktemp -d)}
mkdir -p "$out"
users=${USERS:-5000} conc=${CONCURRENCY:-16} churn_for=${CHURN_DURATION:-10s}
bin=${PGTEST_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$bin/initdb" ] || { echo "initdb not found (install postgresql or set PGTEST_BINDIR)" >&2; exit 1; }
work=$(mktemp -d)
chmod 755 "$work"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  kill -9 "${leader:-}" "${standby:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  as_pg "$bin/pg_ctl" -D "$work/pg" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir "$work/pg"
[ "$(id -u)" = 0 ] && chown postgres "$work/pg"
as_pg "$bin/initdb" -D "$work/pg" -A trust -U scimd -E UTF8 --locale=C >/dev/null
pgport=$(free_port)
as_pg "$bin/pg_ctl" -D "$work/pg" -l "$work/pg/server.log" -w -o "-p $pgport -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
as_pg "$bin/psql" -h 127.0.0.1 -p "$pgport" -U scimd -d postgres -qc 'CREATE DATABASE scimd' >/dev/null
db="postgres://scimd@127.0.0.1:$pgport/scimd?sslmode=disable"

go build -o "$work/scimd" "$root/cmd/scimd"
go build -o "$work/scimd-load" "$root/cmd/scimd-load"
admin=perf-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
serve() { # port, log
  SCIMD_ADMIN_TOKEN=$admin "$work/scimd" serve --listen "127.0.0.1:$1" --database "$db" --data "$work/data-$1" \
    --policies "$root/policies" --rate-limit 0 --guard-count 1000000 --guard-escalation-count -1 \
    --log-level warn >>"$out/$2" 2>&1 &
}
lport=$(free_port) sport=$(free_port)
serve "$lport" leader.log
leader=$!
until curl -fsS "http://127.0.0.1:$lport/readyz" >/dev/null 2>&1; do sleep 0.05; done
serve "$sport" standby.log
standby=$!
until curl -fsS "http://127.0.0.1:$sport/healthz" >/dev/null 2>&1; do sleep 0.05; done
base=http://127.0.0.1:$lport
token=$(curl -fsS -X POST -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
  -d '{"name":"perf"}' "$base/api/v1/tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
load() { "$work/scimd-load" "$@" --url "$base/scim/v2" --token "$token"; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }

echo "machine: $(nproc) cores, load $(loadavg), PostgreSQL $("$bin/postgres" --version | awk '{print $3}')"
l0=$(loadavg)
load sync --users "$users" --groups 10 --memberships "$users" --concurrency "$conc" --json "$out/sync.json" >"$out/sync.txt"
echo "sync, $users creates at $conc clients (load $l0 -> $(loadavg)):"
awk '$1 == "create-user" {print "  creates: " $6 " req/s, p50 " $7 " ms, p99 " $9 " ms"}' "$out/sync.txt"
grep commit-to-role-applied "$out/sync.txt" | sed 's/^/  /' || true
load read --users "$users" --concurrency "$conc" --duration 5s --json "$out/read.json" >"$out/read.txt"
awk '$1 == "get-username-eq" {print "lookups: " $6 " req/s, p50 " $7 " ms, p99 " $9 " ms"}' "$out/read.txt"
l0=$(loadavg)
load churn --rate 200 --duration "$churn_for" --concurrency "$conc" --json "$out/churn.json" >"$out/churn.txt"
echo "churn at 200/s (load $l0 -> $(loadavg)): $(grep commit-to-role-applied "$out/churn.txt" | sed 's/.*commits)://')"
curl -fsS "http://127.0.0.1:$sport/metrics" >"$out/standby-metrics.txt"
python3 - "$out/standby-metrics.txt" <<'EOF'
import sys
buckets, count = [], 0
for line in open(sys.argv[1]):
    if line.startswith('scimd_standby_lag_seconds_bucket'):
        le = line.split('le="')[1].split('"')[0]
        buckets.append((float('inf') if le == '+Inf' else float(le), float(line.split()[-1])))
    elif line.startswith('scimd_standby_lag_seconds_count'):
        count = float(line.split()[-1])
def q(p):
    want, prev_le, prev_n = p * count, 0.0, 0.0
    for le, n in buckets:
        if n >= want:
            if le == float('inf'):
                return prev_le
            return prev_le + (le - prev_le) * (want - prev_n) / max(n - prev_n, 1e-9)
        prev_le, prev_n = le, n
    return float('nan')
print(f"standby lag over {count:.0f} journal entries: p50 {q(.5)*1000:.1f} ms, p99 {q(.99)*1000:.1f} ms")
EOF
kill -9 "$leader"
start=$(date +%s.%N)
until curl -fsS "http://127.0.0.1:$sport/readyz" >/dev/null 2>&1; do sleep 0.01; done
echo "kill -9 of the leader -> standby ready as leader: $(python3 -c "import sys,time; print(f'{(time.time() - float(sys.argv[1]))*1000:.0f}')" "$start") ms"
echo "reports in $out"
