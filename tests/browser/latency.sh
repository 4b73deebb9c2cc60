#!/usr/bin/env bash
# Console latency on a large database (docs/PERFORMANCE.md): seeds N orders with the console
# example in a schema (unless it has them already), serves `longrun console` on it (no engine,
# so the database does nothing else), measures each page's API calls and page loads
# (latency.mjs), then the database's work per refresh of each page, from pg_stat_database.
#   tests/browser/latency.sh [ORDERS (default 100000)] [SCHEMA (default console_latency)]
# The schema is kept for another run; drop it when done.
set -euo pipefail
cd "$(dirname "$0")/../.."
orders="${1:-100000}"
schema="${2:-console_latency}"
cargo build --release --quiet --example console --bin longrun
have="$(psql -At -c "SELECT count(*) FROM \"$schema\".instances" 2>/dev/null || echo 0)"
if [ "$have" -lt "$orders" ]; then
  echo "== seeding $orders orders into $schema"
  log="$(mktemp)"
  target/release/examples/console --schema "$schema" --seed "$orders" --listen 127.0.0.1:0 >"$log" 2>&1 &
  seeder=$!
  until grep -q "^seeded" "$log"; do
    kill -0 "$seeder" 2>/dev/null || { cat "$log"; exit 1; }
    sleep 1
  done
  grep "^seeded" "$log"
  kill "$seeder"; wait "$seeder" 2>/dev/null || true
  rm -f "$log"
  psql -q -c "VACUUM ANALYZE \"$schema\".instances" -c "VACUUM ANALYZE \"$schema\".activity"
fi
psql -At -c "SELECT 'instances: ' || count(*) FROM \"$schema\".instances"
# An engine catches the activity projection up (as the service's engines would), then stops,
# so that nothing else works on the database while it is measured.
target/release/longrun --schema "$schema" run 2>/dev/null &
engine=$!
until [ "$(psql -At -c "SELECT count(*) FROM \"$schema\".events e
                        JOIN \"$schema\".projection_checkpoints k ON k.bucket = e.bucket
                        WHERE k.name = 'activity'
                          AND (e.xid, e.instance_id, e.seq) > (k.last_xid, k.last_instance, k.last_seq)")" = 0 ]; do
  sleep 1
done
kill "$engine"; wait "$engine" 2>/dev/null || true
port=18094
target/release/longrun --schema "$schema" console --listen "127.0.0.1:$port" 2>/dev/null &
console=$!
trap 'kill $console 2>/dev/null || true' EXIT
sleep 1
export CONSOLE_URL="http://127.0.0.1:$port/"
(cd tests/browser && node latency.mjs)

echo
echo "Database work per refresh (pg_stat_database deltas over 200 refreshes, console without engine):"
stats() {
  psql -At -F ' ' -c "SELECT xact_commit, tup_returned + tup_fetched, blks_hit + blks_read
                      FROM pg_stat_database WHERE datname = current_database()"
}
measure() {
  local name="$1" path="$2" n=200
  sleep 11 # backends flush their statistics when idle, at least a second apart
  read -r x0 t0 b0 < <(stats)
  (cd tests/browser && node refresh.mjs "$path" "$n")
  sleep 11
  read -r x1 t1 b1 < <(stats)
  awk -v name="$name" -v n="$n" -v x=$((x1 - x0)) -v t=$((t1 - t0)) -v b=$((b1 - b0)) \
    'BEGIN { printf "%-34s %5.1f transactions, %8.1f rows read, %7.1f buffers\n", name, x / n, t / n, b / n }'
}
measure "baseline: the page's HTML only" ""
measure "processes page" "api/processes"
measure "diagram page (badges)" "api/processes/delivery/1"
measure "instances page" "api/instances?limit=50"
measure "incidents page" "api/incidents?limit=50"
# For comparison: what counting instances by step on every view would read.
sleep 11
read -r x0 t0 b0 < <(stats)
for _ in 1 2 3 4 5 6 7 8 9 10; do
  psql -q -At -c "SELECT current_step, count(*) FROM \"$schema\".instances GROUP BY 1" >/dev/null
done
sleep 11
read -r x1 t1 b1 < <(stats)
awk -v x=$((x1 - x0)) -v t=$((t1 - t0)) -v b=$((b1 - b0)) \
  'BEGIN { printf "%-34s %5.1f transactions, %8.1f rows read, %7.1f buffers\n", "(a count(*) by step, for contrast)", x / 10, t / 10, b / 10 }'

