#!/usr/bin/env bash
# Starts Parley with no DATABASE_URL (embedded PGlite), waits for /ready, creates a
# user and a key with the generated admin token, calls /v1/me, and stops it with SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/../.."
data=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
log="$data/server.log"
env -u DATABASE_URL -u ADMIN_TOKEN PORT="$port" PARLEY_DATA_DIR="$data" node --max-semi-space-size=64 --import tsx src/main.ts >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  if curl -sf "http://127.0.0.1:$port/ready" >/dev/null; then break; fi
  if ! kill -0 $pid 2>/dev/null; then cat "$log"; echo "server exited"; exit 1; fi
  sleep 0.5
done
curl -sf "http://127.0.0.1:$port/ready" >/dev/null || { cat "$log"; echo "not ready"; exit 1; }
token=$(cat "$data/admin-token")
perm=$(stat -c %a "$data/admin-token")
[ "$perm" = "600" ] || { echo "admin-token mode is $perm, want 600"; exit 1; }
user=$(curl -sf -X POST "http://127.0.0.1:$port/v1/admin/users" -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{"email":"smoke@example.com","daily_request_limit":10}')
id=$(node -e 'process.stdout.write(JSON.parse(process.argv[1]).id)' "$user")
key=$(curl -sf -X POST "http://127.0.0.1:$port/v1/admin/users/$id/keys" -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{}' | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.parse(s).key))')
me=$(curl -sf "http://127.0.0.1:$port/v1/me" -H "authorization: Bearer $key")
node -e 'const m=JSON.parse(process.argv[1]); if (m.id!==process.argv[2]||m.daily_request_limit!==10) {console.error(m); process.exit(1)}' "$me" "$id"
kill -TERM $pid
for _ in $(seq 1 40); do kill -0 $pid 2>/dev/null || break; sleep 0.25; done
if kill -0 $pid 2>/dev/null; then cat "$log"; echo "did not shut down within 10 s"; exit 1; fi
wait $pid || { code=$?; [ $code -eq 0 ] || [ $code -eq 143 ] || { cat "$log"; echo "exit code $code"; exit 1; }; }
trap - EXIT
echo "smoke test passed: ready, user $id, /v1/me, clean shutdown"
