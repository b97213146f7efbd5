#!/usr/bin/env bash
# How fast the admin clients list stays with many clients (search, sort and pagination are done
# by the database). Fills a fresh SQLite database with N clients (default 100000), each with a
# secret and a redirect URI, starts the release server, signs in as an admin and times each
# list URL (median of 5 requests, server on one core).
#
#   bench/admin_list.sh [clients]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100000}"
cargo build --release --quiet
bin="$PWD/target/release/portcullis"
work="$(mktemp -d)"
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export PORTCULLIS_DATABASE_URL="sqlite://$work/list.db"
"$bin" migrate >/dev/null
printf 'bench-admin-password\n' | "$bin" admin create --username bench --role admin >/dev/null
python3 - "$work/list.db" "$n" <<'PY'
import sqlite3, sys, time, random, string
db, n = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(db)
now = int(time.time())
rnd = random.Random(7)
rows = []
for i in range(n):
    cid = ''.join(rnd.choice(string.ascii_letters + string.digits) for _ in range(22))
    name = f"Client {i:06d} {rnd.choice(['Billing','Search','Mail','Maps','Chat'])}"
    rows.append((cid, name, name.lower(), '', 0, 1, 'read', 'client_credentials', now - n + i, now - n + i))
c.executemany("INSERT INTO clients (client_id, name, name_lower, description, public, enabled, allowed_scopes, allowed_grant_types, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
c.execute("INSERT INTO client_last_used (client_id, at) SELECT id, ? - id FROM clients WHERE id % 3 = 1", (now,))
c.execute("INSERT INTO client_secrets (client_id, description, hash, hint, expires_at, created_at) SELECT id, 'Initial secret', 'sha256$x' || id, 'abcd', NULL, created_at FROM clients")
c.execute("INSERT INTO redirect_uris (client_id, uri, created_at) SELECT id, 'https://app' || id || '.example/cb', created_at FROM clients")
c.commit()
PY
port=$((20000 + RANDOM % 20000))
url="http://127.0.0.1:$port"
PORTCULLIS_BIND="127.0.0.1:$port" PORTCULLIS_WORKERS=1 PORTCULLIS_LOG_LEVEL=warn taskset -c 0 "$bin" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do curl -fs "$url/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
jar="$work/cookies"
csrf=$(curl -s -c "$jar" -b "$jar" "$url/admin/login" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -1)
curl -s -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf_token=$csrf" --data-urlencode "username=bench" \
  --data-urlencode "password=bench-admin-password" --data-urlencode "next=/admin/clients" "$url/login"
echo "portcullis $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $n clients (SQLite), median of 5"
printf '| %-48s | %9s |\n' "list URL" "ms"
printf '|%s|%s|\n' -------------------------------------------------- -----------
for q in "" "?page=2000&per_page=25" "?sort=name&dir=asc" "?sort=client_id&dir=desc&per_page=100" \
         "?sort=last_used&dir=desc" "?sort=status&dir=asc" "?sort=secrets&dir=desc" "?sort=redirect_uris&dir=asc" \
         "?q=billing" "?q=client+0999" "?q=no-such-client"; do
  times=()
  for _ in 1 2 3 4 5; do
    code_time=$(curl -s -o "$work/page.html" -w '%{http_code} %{time_total}' -b "$jar" "$url/admin/clients$q")
    [ "${code_time%% *}" = 200 ] || { echo "bench: /admin/clients$q answered ${code_time%% *}" >&2; exit 1; }
    times+=("${code_time##* }")
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)
  printf '| %-48s | %9.1f |\n' "/admin/clients$q" "$(awk -v t="$median" 'BEGIN {print t * 1000}')"
done
