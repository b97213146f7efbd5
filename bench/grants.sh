#!/usr/bin/env bash
# Throughput and CPU cost of every grant, on SQLite, on PostgreSQL and on node-oidc-provider
# (the peer), measured the same way (issue 13).
#
#   bench/grants.sh [sqlite|postgres|peer|all] [seconds]        (default: all, 12 s per case)
#
# The server runs pinned to CPU 0 (portcullis: release build, PORTCULLIS_WORKERS=1; the peer:
# `node server.mjs`); wrk -t10 -c10 runs pinned to CPU 1, one thread per connection, so each
# thread's Lua state carries one connection's chain. PostgreSQL runs wherever the machine puts
# it. Every case has a 2 s warm-up run first. The cases:
#   1. client_credentials: a confidential client, client_secret_basic, its generated secret.
#   2. refresh_token, chained rotations: each connection holds its own refresh token and uses
#      the one in each response next (a token works once). Seeded, before each wrk run, with
#      one authorization-code flow per connection.
#   3. authorize + code exchange, in pairs: a person signed in (one session per connection,
#      through the real sign-in form), consent remembered (given once through the consent
#      form); per pair GET <authorize>?response_type=code&...&code_challenge=..(S256) with the
#      session cookie (a redirect whose Location has code=), then POST <token>
#      grant_type=authorization_code with code, redirect_uri and code_verifier.
#   4. introspection of an access token (the same one every time).
#   5. introspection of a refresh token (one that is never rotated).
#   6. issue + revoke, in pairs: client_credentials, then revocation of that very token.
#   7. client_credentials over BENCH_CLIENTS registered clients (default 1,000,000), a random
#      one per request. They are inserted with SQL straight into the database (before the
#      server starts; the cases above run with them present), each with a generated-style
#      secret derived from its index, so that the Lua script computes any client's
#      Authorization header; a few are checked with curl first. The peer gets 1,000 clients
#      from its configuration (its client list lives in memory).
# Every response is checked in Lua (status, a code in the Location, access_token /
# refresh_token in a token response, "active":true from introspection, 200 from revocation);
# the script fails with a message on stderr if any check or any socket error fails.
#
# Printed per case, one markdown table row: requests/s (pairs/s for pairs; latencies are per
# HTTP request), p50 and p99, the server's CPU per request or pair (utime+stime from
# /proc/PID/stat), the whole machine's busy CPU per request or pair (/proc/stat, all cores:
# wrk, PostgreSQL and anything else running), and the server's VmRSS before the warm-up and
# after the case. Notes (bulk insert time, database and WAL sizes) follow the table.
#
# The peer: node-oidc-provider 9.13.3 (bench/peer: package.json, package-lock.json,
# server.mjs), installed into bench/peer/node_modules with `npm ci` on first use; in memory
# (its own memory adapter and LRU, sized for 10,000,000 entries: the default size, about
# 1,000, forgets sessions and grants under load), ES256 JWT access tokens for its default
# resource. It refuses to
# introspect or revoke a JWT, so cases 4 and 6 ask it for opaque access tokens
# (resource=urn:bench:opaque); the header line says so.
#
# Needs: wrk (apt-get install wrk), python3, curl, taskset; node + npm for the peer; psql and a
# PostgreSQL server at $BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test;
# the user must be allowed to create databases: portcullis_bench_<pid> is created and dropped)
# for postgres. The server connects through PostgreSQL's Unix socket when it is on this machine
# (BENCH_POSTGRES_SERVER overrides), else with sslmode=disable (TLS on loopback costs a third of
# the CPU; see README "PostgreSQL"). BENCH_BIN=/path/to/portcullis benchmarks that binary instead
# of building this checkout (cargo build --release). bench/grants_flow.py does the sign-ins,
# consent and seeding. Everything (servers, database, temp dir) is removed on exit or Ctrl-C.
# BENCH_CASES="refresh code" runs only the cases whose label has one of those words;
# BENCH_PERF=DIR records a CPU profile of the server (perf record -g) per case into DIR.
# BENCH_ROUNDS=N (default 1) measures each case N times in a row (a new seed before each, as
# before the first) and prints the round of median rate, the others' rates in the notes: this
# machine's speed drifts by up to a fifth within the hour, so one round can miss by noise.
set -euo pipefail
cd "$(dirname "$0")/.."

which_backends="${1:-all}"
secs="${2:-12}"
wal_peak=0
case "$which_backends" in
  sqlite|postgres|peer|all) ;;
  *) echo "usage: bench/grants.sh [sqlite|postgres|peer|all] [seconds]" >&2; exit 2 ;;
esac
[[ "$secs" =~ ^[0-9]+$ ]] && [ "$secs" -ge 1 ] || { echo "bench: seconds must be a positive integer" >&2; exit 2; }
bulk_n="${BENCH_CLIENTS:-1000000}"
[[ "$bulk_n" =~ ^[0-9]+$ ]] && [ "$bulk_n" -ge 1 ] && [ "$bulk_n" -le 9999999 ] \
  || { echo "bench: BENCH_CLIENTS must be 1..9999999" >&2; exit 2; }
peer_n=1000
pg_admin="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
# Where the server connects (without the database name): by default PostgreSQL's Unix socket
# when it is on this machine, as the README advises for a server on the same host (TCP on
# loopback cost a fifth of the refresh rate here), else BENCH_POSTGRES_URL's server without TLS.
if [ -z "${BENCH_POSTGRES_SERVER:-}" ] && [ -z "${BENCH_POSTGRES_URL:-}" ] \
    && [ -S /var/run/postgresql/.s.PGSQL.5432 ]; then
  BENCH_POSTGRES_SERVER="postgres://postgres@%2Fvar%2Frun%2Fpostgresql"
fi
peer_version=9.13.3
redirect_uri="https://app.example.com/cb"
scope=read

die() { echo "bench: $*" >&2; exit 1; }
for tool in wrk python3 curl taskset; do
  command -v "$tool" >/dev/null || die "$tool is not installed (wrk: apt-get install wrk)"
done
want() { [ "$which_backends" = all ] || [ "$which_backends" = "$1" ]; }
if want postgres; then command -v psql >/dev/null || die "psql is not installed"; fi
if want peer; then command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed for the peer"; fi

if want sqlite || want postgres; then
  if [ -n "${BENCH_BIN:-}" ]; then
    bin="$BENCH_BIN"
  else
    cargo build --release --quiet
    bin="$PWD/target/release/portcullis"
  fi
  [ -x "$bin" ] || die "no portcullis binary at $bin"
fi
if want peer; then
  if [ "$(node -p 'require("./bench/peer/node_modules/oidc-provider/package.json").version' 2>/dev/null)" != "$peer_version" ]; then
    (cd bench/peer && npm ci --no-audit --no-fund --silent) || die "npm ci in bench/peer failed"
  fi
fi

work="$(mktemp -d)"
server_pid=""
pg_db=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ -n "$pg_db" ]; then psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Busy time of all cores (user nice system irq softirq steal), in ticks.
machine_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
b64() { printf '%s' "$1" | base64 -w0; }
urlenc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
# A field of the JSON document on stdin, by path: json_field client client_id.
json_field() { python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]: v = v[k]
print(v)' "$@"; }
thousands() { sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta' <<<"$1"; }
notes=()
disturbed=()
cases_run=0
# Builds by someone else on the same two cores skew every figure: such cases are listed.
others_running() { pgrep -x cargo >/dev/null || pgrep -x rustc >/dev/null; }

# ---------------------------------------------------------------------------------------------
# Lua. The common part counts, per thread (= per connection), the responses that are not what
# success looks like (`bad`, with the first one kept for the error message) and the units done
# (requests, or completed pairs); done() sums them over the threads and prints one BENCH line.
lua_common() {
  cat <<'LUA'
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("index", #threads)
end
bad = 0
units = 0
first_bad = ""
function fail(why, body)
  bad = bad + 1
  if first_bad == "" then
    first_bad = why .. " " .. string.sub(string.gsub(body or "", "%s+", " "), 1, 300)
  end
end
function header(headers, name)
  return headers[name] or headers[string.lower(name)]
end
-- Access and refresh tokens, codes and cookies are URL-safe: sent as they are.
function token_ok(status, body)
  return status == 200 and string.find(body, '"access_token"%s*:%s*"') ~= nil
end
function lines(file)
  local t = {}
  for line in io.lines(file) do
    if line ~= "" then table.insert(t, line) end
  end
  return t
end
function done(summary, latency, requests)
  local b, u, first = 0, 0, ""
  for _, t in ipairs(threads) do
    b = b + t:get("bad")
    u = u + t:get("units")
    if first == "" then first = t:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH units=%d requests=%d duration_us=%d bad=%d socket_errors=%d status_errors=%d p50_us=%d p99_us=%d\n",
    u, summary.requests, summary.duration, b, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
  if first ~= "" then io.write("BENCH first_bad=", first, "\n") end
end
LUA
}

# Case 1 (and 6's first half, 7's body): client_credentials.
lua_client_credentials() { # auth_header body
  lua_common
  cat <<LUA
wrk.method = "POST"
wrk.path = "$token_path"
wrk.body = "$2"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "$1"
function response(status, headers, body)
  if token_ok(status, body) then units = units + 1 else fail("status " .. status, body) end
end
LUA
}

# Case 2: chained refresh rotations; the seed file has one refresh token per connection.
lua_refresh() { # seed_file
  lua_common
  cat <<LUA
local path, auth, seeds = "$token_path", "$auth", "$1"
local hdrs = { ["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = auth }
function init(args)
  rt = lines(seeds)[index]
  if not rt then error("no seed refresh token for connection " .. index) end
end
function request()
  return wrk.format("POST", path, hdrs, "grant_type=refresh_token&refresh_token=" .. rt)
end
function response(status, headers, body)
  if not token_ok(status, body) then return fail("status " .. status, body) end
  local new = string.match(body, '"refresh_token"%s*:%s*"([^"]+)"')
  if not new then return fail("no refresh_token", body) end
  if new == rt then return fail("refresh token not rotated", body) end
  rt = new
  units = units + 1
end
LUA
}

# Case 3: authorize (session cookie, remembered consent) + code exchange, in pairs.
lua_code_flow() { # cookie_file verifier challenge
  lua_common
  cat <<LUA
local authorize = "$authorize_path?response_type=code&client_id=$client_id&redirect_uri=$(urlenc "$redirect_uri")&scope=$scope&code_challenge=$3&code_challenge_method=S256&state="
local token_path, cookies = "$token_path", "$1"
local exchange_tail = "&redirect_uri=$(urlenc "$redirect_uri")&code_verifier=$2"
local post_hdrs = { ["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = "$auth" }
local get_hdrs = {}
local step, code, n = 1, nil, 0
function init(args)
  local all = lines(cookies)
  get_hdrs["Cookie"] = all[(index - 1) % #all + 1]
end
function request()
  if step == 1 then
    n = n + 1
    return wrk.format("GET", authorize .. index .. "-" .. n, get_hdrs)
  end
  return wrk.format("POST", token_path, post_hdrs,
    "grant_type=authorization_code&code=" .. code .. exchange_tail)
end
function response(status, headers, body)
  if step == 1 then
    local loc = header(headers, "Location")
    if (status ~= 302 and status ~= 303) or not loc then return fail("authorize status " .. status, body) end
    if string.find(loc, "[?&]error=") then return fail("authorize error", loc) end
    code = string.match(loc, "[?&]code=([^&]+)")
    if not code then return fail("authorize without code", loc) end
    step = 2
  else
    step = 1
    if not token_ok(status, body) then return fail("exchange status " .. status, body) end
    if not string.find(body, '"refresh_token"%s*:%s*"') then return fail("exchange without refresh_token", body) end
    units = units + 1
  end
end
LUA
}

# Cases 4 and 5: introspection of one token.
lua_introspect() { # token
  lua_common
  cat <<LUA
wrk.method = "POST"
wrk.path = "$introspect_path"
wrk.body = "token=$1"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "$auth"
function response(status, headers, body)
  if status ~= 200 then return fail("status " .. status, body) end
  if not string.find(body, '"active"%s*:%s*true') then return fail("not active", body) end
  units = units + 1
end
LUA
}

# Case 6: client_credentials, then revocation of that token, in pairs.
lua_issue_revoke() { # token_request_body
  lua_common
  cat <<LUA
local token_path, revoke_path, issue_body = "$token_path", "$revoke_path", "$1"
local hdrs = { ["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = "$auth" }
local step, token = 1, nil
function request()
  if step == 1 then return wrk.format("POST", token_path, hdrs, issue_body) end
  return wrk.format("POST", revoke_path, hdrs, "token=" .. token)
end
function response(status, headers, body)
  if step == 1 then
    if not token_ok(status, body) then return fail("issue status " .. status, body) end
    token = string.match(body, '"access_token"%s*:%s*"([^"]+)"')
    step = 2
  else
    step = 1
    if status ~= 200 then return fail("revoke status " .. status, body) end
    units = units + 1
  end
end
LUA
}

# Case 7: client_credentials as a random one of n clients: client i is id_prefix + i (7 digits)
# with the secret secret_prefix + i; the form body (client_secret_post) is built per request.
lua_many_clients() { # n body
  lua_common
  # client_secret_post (RFC 6749 2.3.1): a form body built per request is cheap in Lua, where a
  # Basic header (base64 in Lua) made wrk, not the server, the bottleneck of this case.
  cat <<LUA
local id_prefix, secret_prefix, n = "$bulk_id_prefix", "$bulk_secret_prefix", $1
local path, body = "$token_path", "$2"
local hdrs = { ["Content-Type"] = "application/x-www-form-urlencoded" }
function init(args)
  math.randomseed(os.time() * 1000 + index * 7919)
end
function request()
  local i = math.random(0, n - 1)
  return wrk.format("POST", path, hdrs,
    string.format("%s&client_id=%s%07d&client_secret=%s%d", body, id_prefix, i, secret_prefix, i))
end
function response(status, headers, body)
  if token_ok(status, body) then units = units + 1 else fail("status " .. status, body) end
end
LUA
}

# ---------------------------------------------------------------------------------------------
# One case: a 2 s warm-up run, then the measured run. `prepare` (optional) runs before each of
# the two (e.g. seeding fresh refresh tokens, since a run may end with a rotation in flight).
check_run() { # label output
  local out="$2" bench bad sock status
  bench=$(grep '^BENCH units=' <<<"$out") || { echo "$out" >&2; die "$1: wrk printed no result"; }
  bad=$(sed -E 's/.* bad=([0-9]+).*/\1/' <<<"$bench")
  sock=$(sed -E 's/.* socket_errors=([0-9]+).*/\1/' <<<"$bench")
  status=$(sed -E 's/.* status_errors=([0-9]+).*/\1/' <<<"$bench")
  if [ "$bad" != 0 ] || [ "$sock" != 0 ] || [ "$status" != 0 ]; then
    echo "$out" >&2
    die "$1: $bad responses were not a success ($status with an error status, $sock socket errors)"
  fi
}

run_case() { # label unit(req|pair) lua_file [prepare_fn]
  local label="$1" unit="$2" lua="$3" prepare="${4:-}"
  local rss0 rss1 c0 c1 m0 m1 out line units dur p50 p99 perf_pid=""
  # BENCH_CASES: only the cases whose label contains one of these words (e.g. "refresh code").
  if [ -n "${BENCH_CASES:-}" ]; then
    local want hit=""
    for want in $BENCH_CASES; do [[ "$label" == *"$want"* ]] && hit=1; done
    [ -n "$hit" ] || return 0
  fi
  rss0=$(rss_mib "$server_pid")
  if [ -n "$prepare" ]; then "$prepare"; fi
  out=$(taskset -c 1 wrk -t10 -c10 -d2s -s "$lua" "$base/" 2>&1) || { echo "$out" >&2; die "$label: wrk failed"; }
  check_run "$label (warm-up)" "$out"
  if [ -n "$prepare" ]; then "$prepare"; fi
  cases_run=$((cases_run + 1))
  others_running && disturbed+=("$backend/$label")
  # BENCH_PERF=DIR: a CPU profile of the server during the measured run, DIR/<case>.perf.
  if [ -n "${BENCH_PERF:-}" ]; then
    mkdir -p "$BENCH_PERF"
    perf record -q -e cpu-clock -F 2000 -g -p "$server_pid" \
      -o "$BENCH_PERF/$backend-${label//[^a-z0-9]/_}.perf" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  local rounds="${BENCH_ROUNDS:-1}" round results="" rates=""
  for ((round = 1; round <= rounds; round++)); do
    if [ "$round" -gt 1 ] && [ -n "$prepare" ]; then "$prepare"; fi
    c0=$(cpu_ticks "$server_pid"); m0=$(machine_ticks)
    out=$(taskset -c 1 wrk -t10 -c10 -d"${secs}s" -s "$lua" "$base/" 2>&1) || { echo "$out" >&2; die "$label: wrk failed"; }
    c1=$(cpu_ticks "$server_pid"); m1=$(machine_ticks)
    if [ "$backend" = sqlite ] && [ -f "$work/bench.db-wal" ]; then
      wal_peak=$(( $(stat -c %s "$work/bench.db-wal") / 1048576 > wal_peak ? $(stat -c %s "$work/bench.db-wal") / 1048576 : wal_peak ))
    fi
    check_run "$label" "$out"
    line=$(grep '^BENCH units=' <<<"$out")
    units=$(sed -E 's/.*units=([0-9]+).*/\1/' <<<"$line")
    dur=$(sed -E 's/.*duration_us=([0-9]+).*/\1/' <<<"$line")
    [ "$units" -gt 0 ] || die "$label: nothing completed"
    # rate, then the round's figures: sorted by rate below.
    results+="$(awk -v u="$units" -v d="$dur" 'BEGIN {printf "%.3f", u / (d / 1e6)}') $line c=$((c1 - c0)) m=$((m1 - m0))"$'\n'
    rates+="${rates:+, }$(awk -v u="$units" -v d="$dur" 'BEGIN {printf "%.0f", u / (d / 1e6)}')"
  done
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid" 2>/dev/null; wait "$perf_pid" 2>/dev/null || true; fi
  others_running && disturbed+=("$backend/$label")
  rss1=$(rss_mib "$server_pid")
  line=$(grep -v '^$' <<<"$results" | sort -n | sed -n "$(( (rounds + 1) / 2 ))p")
  if [ "$rounds" -gt 1 ]; then notes+=("$backend/$label: $rounds rounds, $rates per s (the median shown)"); fi
  units=$(sed -E 's/.*units=([0-9]+).*/\1/' <<<"$line")
  dur=$(sed -E 's/.*duration_us=([0-9]+).*/\1/' <<<"$line")
  p50=$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<<"$line")
  p99=$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$line")
  c0=0; c1=$(sed -E 's/.* c=([0-9]+).*/\1/' <<<"$line")
  m0=0; m1=$(sed -E 's/.* m=([0-9]+).*/\1/' <<<"$line")
  [ "$units" -gt 0 ] || die "$label: nothing completed"
  awk -v b="$backend" -v l="$label" -v u="$units" -v d="$dur" -v p50="$p50" -v p99="$p99" \
      -v c="$((c1 - c0))" -v m="$((m1 - m0))" -v hz="$ticks" -v unit="$unit" \
      -v r0="$rss0" -v r1="$rss1" 'BEGIN {
    rate = u / (d / 1e6)
    s = sprintf("%.0f", rate); t = ""
    while (length(s) > 3) { t = "," substr(s, length(s) - 2) t; s = substr(s, 1, length(s) - 3) }
    printf "| %-10s | %-48s | %10s %-7s | %7.2f ms | %7.2f ms | %9.1f | %9.1f | %5.1f → %5.1f |\n",
      b, l, s t, (unit == "pair" ? "pairs/s" : "req/s"), p50 / 1000, p99 / 1000,
      c / hz * 1e6 / u, m / hz * 1e6 / u, r0, r1
  }'
}

start_portcullis() {
  local port
  port=$((20000 + RANDOM % 20000))
  base="http://127.0.0.1:$port"
  # The client cache holds every client (a deployment with a million clients sizes it so; the
  # default is 100,000): the server fills it at start, and the cases wait for that.
  PORTCULLIS_BIND="127.0.0.1:$port" PORTCULLIS_WORKERS=1 PORTCULLIS_LOG_LEVEL=warn \
    PORTCULLIS_CLIENT_CACHE_ENTRIES="${PORTCULLIS_CLIENT_CACHE_ENTRIES:-$((bulk_n + bulk_n / 20 + 1000))}" \
    taskset -c 0 "$bin" serve >"$work/server.log" 2>&1 &
  server_pid=$!
  wait_ready "$base/healthz"
  wait_cache_filled
}

# Waits until the server's client cache holds the bulk clients (its metric stops short of
# them only when PORTCULLIS_CLIENT_CACHE_ENTRIES is smaller: then until it stops growing).
wait_cache_filled() {
  local t0 n last=-1 same=0
  t0=$(date +%s.%N)
  for _ in $(seq 1 3000); do
    n=$(curl -fs "$base/metrics" | awk '$1 == "portcullis_client_cache_entries" {print $2}')
    n=${n:-0}
    [ "$n" -ge "$bulk_n" ] && break
    if [ "$n" = "$last" ] && [ "$n" -gt 0 ]; then same=$((same + 1)); else same=0; fi
    [ "$same" -ge 20 ] && break
    last=$n
    sleep 0.1
  done
  notes+=("$backend: $(thousands "$n") clients in the server's cache $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s after it answered, RSS then $(( $(awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status") / 1024 )) MiB")
}

start_peer() {
  local port
  port=$((20000 + RANDOM % 20000))
  base="http://127.0.0.1:$port"
  (cd bench/peer && PEER_PORT="$port" PEER_SECRET="$secret" PEER_CLIENTS="$peer_n" \
    PEER_ID_PREFIX="$bulk_id_prefix" PEER_SECRET_PREFIX="$bulk_secret_prefix" \
    PEER_REDIRECT_URI="$redirect_uri" NODE_ENV=production \
    exec taskset -c 0 node server.mjs) >"$work/server.log" 2>&1 &
  server_pid=$!
  wait_ready "$base/.well-known/openid-configuration"
}

wait_ready() {
  for _ in $(seq 1 100); do
    curl -fs "$1" >/dev/null 2>&1 && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$work/server.log" >&2
  die "$backend: the server did not start"
}

stop_server() {
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
}

# grants_flow.py reads its settings from the environment.
flow_env() {
  export FLOW_KIND="$kind" FLOW_BASE="$base" FLOW_AUTHORIZE="$authorize_path" \
    FLOW_TOKEN="$token_path" FLOW_CLIENT_ID="$client_id" FLOW_CLIENT_SECRET="$secret" \
    FLOW_REDIRECT_URI="$redirect_uri" FLOW_SCOPE="$scope" FLOW_USERNAME="$username" \
    FLOW_PASSWORD="$password" FLOW_COOKIES="$work/cookies"
}
seed_refresh_tokens() { python3 bench/grants_flow.py seed 10 >"$work/refresh_seeds"; }

bulk_insert() {
  local t0 t1
  export BULK_ID_PREFIX="$bulk_id_prefix" BULK_SECRET_PREFIX="$bulk_secret_prefix"
  t0=$(date +%s.%N)
  if [ "$backend" = sqlite ]; then
    python3 bench/grants_flow.py bulk-sqlite "$work/bench.db" "$bulk_n"
  else
    python3 bench/grants_flow.py bulk-postgres "$bulk_n" | psql "$pg_url_admin" -q -v ON_ERROR_STOP=1 >/dev/null
  fi
  t1=$(date +%s.%N)
  notes+=("$backend: $(thousands "$bulk_n") clients inserted with SQL in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s")
}

check_bulk_clients() { # n
  local i id status
  for i in 0 $(($1 - 1)) $((RANDOM % $1)) $((RANDOM * 32768 % $1 + RANDOM % $1)); do
    i=$((i % $1))
    id=$(printf '%s%07d' "$bulk_id_prefix" "$i")
    status=$(curl -s -o /dev/null -w '%{http_code}' -u "$id:$bulk_secret_prefix$i" \
      -d "grant_type=client_credentials&scope=$scope" "$base$token_path")
    [ "$status" = 200 ] || die "$backend: bulk client $id does not authenticate ($status)"
  done
}

run_backend() {
  backend="$1"
  bulk_id_prefix="bulk"
  bulk_secret_prefix="bulk-$(head -c 9 /dev/urandom | base64 | tr '+/' '-_')-"
  username="bench-person"
  password="bench-password-$(head -c 12 /dev/urandom | base64 | tr '+/' '-_')"
  local opaque="" many_n="$bulk_n"

  if [ "$backend" = peer ]; then
    kind=peer token_path=/token authorize_path=/auth
    introspect_path=/token/introspection revoke_path=/token/revocation
    client_id=bench secret="$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d =)"
    # It cannot introspect or revoke a JWT: cases 4 and 6 get opaque tokens.
    opaque="&resource=urn%3Abench%3Aopaque"
    many_n=$peer_n
    notes+=("peer: the provider's own in-memory adapter and LRU, sized for 10,000,000 entries instead of its default of about 1,000, which forgets sessions and grants within a second under load (people get signed out mid-run)")
    start_peer
  else
    kind=portcullis token_path=/oauth/token authorize_path=/oauth/authorize
    introspect_path=/oauth/introspect revoke_path=/oauth/revoke
    rm -f "$work"/bench.db*
    if [ "$backend" = sqlite ]; then
      db="sqlite://$work/bench.db"
      unset PORTCULLIS_MASTER_KEY
    else
      pg_db="portcullis_bench_$$"
      psql "$pg_admin" -qc "CREATE DATABASE $pg_db" >/dev/null
      pg_url_admin="${pg_admin%/*}/$pg_db"
      # BENCH_POSTGRES_SERVER: where the server connects, without the database name (default:
      # the same server as BENCH_POSTGRES_URL, without TLS).
      if [ -n "${BENCH_POSTGRES_SERVER:-}" ]; then db="${BENCH_POSTGRES_SERVER%/}/$pg_db"
      else db="$pg_url_admin?sslmode=disable"; fi
      # PostgreSQL needs the master key given (SQLite makes bench.db.key beside the database).
      PORTCULLIS_MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
      export PORTCULLIS_MASTER_KEY
    fi
    export PORTCULLIS_DATABASE_URL="$db"
    "$bin" migrate >/dev/null
    local created
    created=$("$bin" client create --name "bench-$backend" --scope "$scope" \
      --redirect-uri "$redirect_uri" --grant-type client_credentials \
      --grant-type authorization_code --grant-type refresh_token --output json)
    client_id=$(json_field client client_id <<<"$created")
    secret=$(json_field client_secret <<<"$created")
    printf '%s\n' "$password" | "$bin" user create --username "$username" >/dev/null
    bulk_insert
    start_portcullis
  fi
  auth="Basic $(b64 "$client_id:$secret")"
  flow_env

  # Sign-ins (one session per connection), consent once, and the tokens the cases use.
  python3 bench/grants_flow.py sessions 10 >"$work/cookies"
  local pk verifier challenge access refresh
  pk=$(python3 bench/grants_flow.py pkce); verifier=${pk% *}; challenge=${pk#* }
  access=$(curl -fsS -u "$client_id:$secret" -d "grant_type=client_credentials&scope=$scope$opaque" \
    "$base$token_path" | json_field access_token)
  refresh=$(python3 bench/grants_flow.py seed 1)

  lua_client_credentials "$auth" "grant_type=client_credentials&scope=$scope" >"$work/cc.lua"
  lua_refresh "$work/refresh_seeds" >"$work/refresh.lua"
  lua_code_flow "$work/cookies" "$verifier" "$challenge" >"$work/code.lua"
  lua_introspect "$access" >"$work/introspect_access.lua"
  lua_introspect "$refresh" >"$work/introspect_refresh.lua"
  lua_issue_revoke "grant_type=client_credentials&scope=$scope$opaque" >"$work/issue_revoke.lua"
  lua_many_clients "$many_n" "grant_type=client_credentials&scope=$scope" >"$work/many.lua"

  run_case "client_credentials" req "$work/cc.lua"
  run_case "refresh_token (chained rotations)" req "$work/refresh.lua" seed_refresh_tokens
  run_case "authorize + code exchange (pairs)" pair "$work/code.lua"
  run_case "introspection: access token$([ -n "$opaque" ] && echo ' (opaque)')" req "$work/introspect_access.lua"
  run_case "introspection: refresh token" req "$work/introspect_refresh.lua"
  run_case "issue + revoke (pairs$([ -n "$opaque" ] && echo ', opaque'))" pair "$work/issue_revoke.lua"
  check_bulk_clients "$many_n"
  run_case "client_credentials, $(thousands "$many_n") clients (random)" req "$work/many.lua"

  if [ "$backend" = sqlite ]; then
    notes+=("sqlite: database $(du -m "$work/bench.db" | cut -f1) MiB, WAL $(du -m "$work/bench.db-wal" 2>/dev/null | cut -f1 || echo 0) MiB at the end, at most ${wal_peak} MiB after a case")
  elif [ "$backend" = postgres ]; then
    notes+=("postgres: database $(psql "$pg_admin" -Atc "SELECT pg_database_size('$pg_db') / 1048576") MiB at the end")
  fi
  stop_server
  if [ -n "$pg_db" ]; then
    psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null; pg_db=""
  fi
}

commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
code_commit=$(git log -1 --format=%h -- src migrations templates Cargo.toml Cargo.lock build.rs 2>/dev/null || echo '?')
[ -n "$(git status --porcelain -- src migrations templates Cargo.toml Cargo.lock 2>/dev/null)" ] && code_commit="$code_commit+uncommitted changes"
binary=""
if want sqlite || want postgres; then binary=" (binary: ${BENCH_BIN:-target/release/portcullis, built from it})"; fi
echo "portcullis $commit, server code of $code_commit$binary; peer: node-oidc-provider $peer_version on node $(node --version 2>/dev/null || echo '?'), in memory, ES256 JWT access tokens except in its introspection and revoke cases (opaque: it cannot introspect or revoke a JWT), $(thousands "$peer_n") clients in case 7"
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); server on CPU 0 (PORTCULLIS_WORKERS=1), wrk -t10 -c10 on CPU 1, ${secs} s per case after a 2 s warm-up; BENCH_CLIENTS=$bulk_n; PostgreSQL unpinned, ${BENCH_POSTGRES_SERVER:+server connects to $BENCH_POSTGRES_SERVER, }sslmode=disable; latencies per HTTP request; CPU µs per request (per pair for pairs)"
echo
printf '| %-10s | %-48s | %18s | %10s | %10s | %9s | %9s | %13s |\n' backend case "rate" p50 p99 "server µs" "total µs" "RSS MiB"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' ------------ -------------------------------------------------- -------------------: -----------: -----------: ----------: ----------: ---------------
case "$which_backends" in
  all) run_backend sqlite; run_backend postgres; run_backend peer ;;
  *) run_backend "$which_backends" ;;
esac
if [ ${#disturbed[@]} -gt 0 ]; then
  list=$(printf '%s\n' "${disturbed[@]}" | awk '!seen[$0]++')
  if [ "$(wc -l <<<"$list")" -eq "$cases_run" ]; then
    notes+=("cargo or rustc (someone else's build) was running during every case: all figures are pessimistic")
  else
    notes+=("cargo or rustc (someone else's build) was running at the start or end of: $(paste -sd ';' <<<"$list" | sed 's/;/; /g')")
  fi
fi
if [ ${#notes[@]} -gt 0 ]; then
  echo
  printf -- '- %s\n' "${notes[@]}"
fi
