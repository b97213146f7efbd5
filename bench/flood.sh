#!/usr/bin/env bash
# What a flood of failed authentications costs the server (issue: hardening, item 1).
#
#   bench/flood.sh [sqlite|postgres] [seconds]
#
# Starts the release server with one worker pinned to CPU 0 (so argon2 runs on one thread),
# behind a "proxy" (PORTCULLIS_TRUSTED_PROXIES=127.0.0.1) so that every flood request can come
# from its own address, as a distributed attack would. wrk (1 thread, 32 connections, pinned
# to CPU 1) then sends, for 60 s by default: a quarter wrong secrets for unknown client_ids, a
# quarter wrong secrets for a client that has an admin-typed (argon2id) secret, and half failed
# logins (half for unknown usernames, half wrong passwords for a real admin). Meanwhile, every
# 0.25 s, a valid client_credentials request and GET /readyz are timed with curl, and the
# server's RSS is sampled. After the flood, RSS is followed for 30 s.
#
# Targets: peak RSS < 128 MiB; RSS < 64 MiB within 30 s of the end; median latency of the
# valid token request during the flood < 20 ms. Exits 1 when a target is missed.
# Needs wrk and curl (Debian: apt-get install wrk curl); for postgres, psql and a server at
# $BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test).
set -euo pipefail
cd "$(dirname "$0")/.."

backend="${1:-sqlite}"
secs="${2:-60}"
pg_admin="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is not installed" >&2; exit 1; }
done

cargo build --release --quiet
bin="$PWD/target/release/portcullis"
work="$(mktemp -d)"
server_pid="" pg_db="" sampler_pid="" prober_pid=""
cleanup() {
  for p in "$sampler_pid" "$prober_pid"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  [ -n "$pg_db" ] && psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

if [ "$backend" = sqlite ]; then
  export PORTCULLIS_DATABASE_URL="sqlite://$work/flood.db"
else
  pg_db="portcullis_flood_$$"
  psql "$pg_admin" -qc "CREATE DATABASE $pg_db" >/dev/null
  export PORTCULLIS_DATABASE_URL="${pg_admin%/*}/$pg_db"
  PORTCULLIS_MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
  export PORTCULLIS_MASTER_KEY
fi
"$bin" migrate >/dev/null
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
created=$("$bin" client create --name flood-typed --scope read --output json)
typed_id=$(field '["client"]["client_id"]' <<<"$created")
printf '%s\n' "flood-typed-secret-0123456789" | "$bin" secret add "$typed_id" --description typed --value - >/dev/null
created=$("$bin" client create --name flood-valid --scope read --output json)
valid_id=$(field '["client"]["client_id"]' <<<"$created")
valid_secret=$(field '["client_secret"]' <<<"$created")
printf 'flood-admin-password\n' | "$bin" admin create --username bench --role admin >/dev/null

port=$((20000 + RANDOM % 20000))
url="http://127.0.0.1:$port"
PORTCULLIS_BIND="127.0.0.1:$port" PORTCULLIS_WORKERS=1 PORTCULLIS_LOG_LEVEL=error \
  PORTCULLIS_TRUSTED_PROXIES=127.0.0.1 taskset -c 0 "$bin" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do curl -fs "$url/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$server_pid/status"; }
start_rss=$(rss_kib)

# A login form's cookie and CSRF token, reused by every flood login.
jar="$work/jar"
csrf=$(curl -s -c "$jar" -b "$jar" "$url/admin/login" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -1)
cookie=$(sed -e 's/^#HttpOnly_//' "$jar" | awk -F'\t' 'NF >= 7 && $1 !~ /^#/ {printf "%s%s=%s", sep, $6, $7; sep="; "}')
[ -n "$csrf" ] || { echo "bench: no CSRF token on the login page" >&2; exit 1; }

cat > "$work/flood.lua" <<'LUA'
local n = 0
local typed = os.getenv("FLOOD_TYPED_ID")
local cookie = os.getenv("FLOOD_COOKIE")
local csrf = os.getenv("FLOOD_CSRF")
counts = {}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function request()
  n = n + 1
  local ip = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  local h = { ["Content-Type"] = "application/x-www-form-urlencoded", ["X-Forwarded-For"] = ip }
  local k = n % 4
  if k == 0 then
    return wrk.format("POST", "/oauth/token", h,
      "grant_type=client_credentials&client_id=unknown-" .. n .. "&client_secret=wrong-" .. n)
  elseif k == 1 then
    return wrk.format("POST", "/oauth/token", h,
      "grant_type=client_credentials&client_id=" .. typed .. "&client_secret=wrong-" .. n)
  end
  h["Cookie"] = cookie
  local user = (k == 2) and ("nobody-" .. n) or "bench"
  return wrk.format("POST", "/login", h,
    "csrf_token=" .. csrf .. "&username=" .. user .. "&password=wrong-password-" .. n .. "&next=%2Fadmin")
end
function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end
function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do all[k] = (all[k] or 0) + v end
  end
  local keys = {}
  for k in pairs(all) do table.insert(keys, k) end
  table.sort(keys)
  for _, k in ipairs(keys) do io.write(string.format("  status %s: %d\n", k, all[k])) end
end
LUA

# Samplers: RSS every 0.5 s; a valid token request and /readyz every 0.25 s.
( while kill -0 "$server_pid" 2>/dev/null; do rss_kib >>"$work/rss"; sleep 0.5; done ) &
sampler_pid=$!
( while true; do
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -u "$valid_id:$valid_secret" \
      -d grant_type=client_credentials "$url/oauth/token" >>"$work/valid"
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "$url/readyz" >>"$work/readyz"
    sleep 0.25
  done ) &
prober_pid=$!

FLOOD_TYPED_ID="$typed_id" FLOOD_COOKIE="$cookie" FLOOD_CSRF="$csrf" \
  taskset -c 1 wrk -t1 -c32 -d"${secs}s" -s "$work/flood.lua" "$url" >"$work/wrk.out"
kill "$prober_pid"; wait "$prober_pid" 2>/dev/null || true; prober_pid=""
end_rss=$(rss_kib)
peak_rss=$(hwm_kib)
back_after=""
for i in $(seq 1 30); do
  sleep 1
  r=$(rss_kib)
  if [ -z "$back_after" ] && [ "$r" -lt $((64 * 1024)) ]; then back_after=$i; fi
done
late_rss=$(rss_kib)
metrics=$(curl -s "$url/metrics")
argon2=$(awk '/^portcullis_argon2_verifications_total/ {print "  " $0}' <<<"$metrics")
by_endpoint=$(awk '/^portcullis_http_requests_total/ && /endpoint="\/(oauth\/token|login)"/ && /method="POST"/ {print "  " $0}' <<<"$metrics")

stats() { # file -> "median p90 non-2xx"
  python3 - "$1" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
ok = sorted(float(t) * 1000 for c, t in rows if c == "200")
bad = sum(1 for c, _ in rows if c != "200")
if not ok:
    print("nan nan", bad); sys.exit()
print(f"{ok[len(ok) // 2]:.1f} {ok[min(len(ok) - 1, int(len(ok) * 0.9))]:.1f} {bad}")
PY
}
read -r v50 v90 vbad < <(stats "$work/valid")
read -r r50 r90 rbad < <(stats "$work/readyz")
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

echo "portcullis $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $backend, flood ${secs}s from 32 connections (server on CPU 0)"
awk '/requests in/ {print "flood requests: " $1 " in " $4}' "$work/wrk.out"
sed -n '/^  status/p' "$work/wrk.out"
echo "by endpoint (all requests, probes included):"; echo "$by_endpoint"
echo "argon2 verifications:"; echo "$argon2"
echo "RSS: start $(mib "$start_rss") MiB, peak $(mib "$peak_rss") MiB, end of flood $(mib "$end_rss") MiB, 30 s later $(mib "$late_rss") MiB (under 64 MiB after ${back_after:-more than 30} s)"
echo "valid client_credentials during the flood: median $v50 ms, p90 $v90 ms, $vbad not 200"
echo "/readyz during the flood: median $r50 ms, p90 $r90 ms, $rbad not 200"

fail=0
[ "$peak_rss" -lt $((128 * 1024)) ] || { echo "MISSED: peak RSS under 128 MiB"; fail=1; }
[ -n "$back_after" ] || { echo "MISSED: RSS under 64 MiB within 30 s"; fail=1; }
awk -v m="$v50" 'BEGIN {exit !(m < 20)}' || { echo "MISSED: valid request median under 20 ms"; fail=1; }
[ "$vbad" = 0 ] || { echo "MISSED: every valid request answered 200"; fail=1; }
[ "$fail" = 0 ] && echo "All targets met."
exit "$fail"
