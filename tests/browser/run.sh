#!/usr/bin/env bash
# Browser tests of the console: start the console example on a throwaway schema with seeded
# orders, run console.test.mjs against it in Debian's chromium, stop it and drop the schema.
# Needs /usr/bin/chromium (apt-get install chromium) and `npm ci` here; .ci/run does both.
# SCREENSHOTS=docs/console tests/browser/run.sh also writes the screenshots in docs/.
set -euo pipefail
cd "$(dirname "$0")/../.."
seed="${SEED:-200}"
schema="browser_$$"
log="$(mktemp)"
cargo build --quiet --example console --bin longrun
# What longrun writes from the model of each element fixture, for the viewer test.
exports="$(mktemp -d)"
for f in tests/fixtures/bpmn/*_modeler.bpmn; do
  target/debug/longrun convert "$f" --to json >"$exports/model.json"
  target/debug/longrun convert "$exports/model.json" --to bpmn >"$exports/$(basename "$f")"
done
rm "$exports/model.json"
target/debug/examples/console --schema "$schema" --seed "$seed" --listen 127.0.0.1:0 >"$log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  psql -q -c "DROP SCHEMA IF EXISTS \"$schema\" CASCADE" >/dev/null 2>&1 || true
  rm -f "$log"
  rm -rf "$exports"
}
trap cleanup EXIT
# Wait for the seeded orders to settle (the example prints "seeded N" then).
for _ in $(seq 1 600); do
  grep -q "^seeded" "$log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "the console example stopped" >&2; exit 1; }
  sleep 0.2
done
grep "^seeded" "$log" || { cat "$log"; echo "the seed did not settle" >&2; exit 1; }
url="$(sed -n 's/^console at \(http[^ ]*\)$/\1/p' "$log")"
cd tests/browser
EXPORTS="$exports" CONSOLE_URL="$url" SEED="$seed" SCREENSHOTS="${SCREENSHOTS:+../../$SCREENSHOTS}" node console.test.mjs
