#!/usr/bin/env bash
# Tests the JSON admin API against its own OpenAPI document with schemathesis: every
# operation, generated valid and invalid inputs, every check (zero 5xx, documented status
# codes, content types, headers and response schemas).
#
#   tests/schemathesis/run.sh [max-examples-per-operation]   (default 30)
#
# Builds the server, starts it on a fresh SQLite database on a free port, creates an admin
# API client with the CLI, takes a client_credentials token and runs schemathesis (pinned,
# installed into a venv under $SCHEMATHESIS_VENV, default target/schemathesis-venv).
# Exit status: schemathesis's (non-zero on any failure).
set -euo pipefail
cd "$(dirname "$0")/../.."

SCHEMATHESIS_VERSION="4.32.5"
examples="${1:-30}"
target="${CARGO_TARGET_DIR:-target}"
venv="${SCHEMATHESIS_VENV:-$target/schemathesis-venv}"

# schemathesis, pinned, in its own venv.
if [ "$("$venv/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $SCHEMATHESIS_VERSION" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build --locked --quiet
bin="$target/debug/portcullis"

work="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

export PORTCULLIS_DATABASE_URL="sqlite://$work/portcullis.db"
export PORTCULLIS_BIND="127.0.0.1:0"
# One token for the whole run.
export PORTCULLIS_ADMIN_TOKEN_TTL=3600
export PORTCULLIS_LOG_LEVEL="${PORTCULLIS_LOG_LEVEL:-warn,portcullis=info}"

"$bin" migrate >/dev/null
"$bin" serve >"$work/server.log" 2>&1 &
server=$!
base=""
for _ in $(seq 1 100); do
  base="$(grep -o 'listening on http://[0-9.:]*' "$work/server.log" | head -1 | sed 's/listening on //')" || true
  [ -n "$base" ] && break
  if ! kill -0 "$server" 2>/dev/null; then cat "$work/server.log" >&2; echo "schemathesis: the server did not start" >&2; exit 1; fi
  sleep 0.1
done
if [ -z "$base" ]; then echo "schemathesis: the server did not say where it listens" >&2; exit 1; fi

# The caller: an admin API client. Created first among many the run creates, so a generated
# client_id hits it only by chance (client_ids are random).
creds="$("$bin" client create --name schemathesis --scope portcullis:admin --grant-type client_credentials --output json)"
# field a.b: the JSON value at that path of stdin.
field() { python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[k]
print(v)' "$1"; }
client_id="$(field client.client_id <<<"$creds")"
client_secret="$(field client_secret <<<"$creds")"
token="$(curl -fsS -u "$client_id:$client_secret" -d grant_type=client_credentials -d scope=portcullis:admin "$base/oauth/token" | field access_token)"

# Two workers: concurrent writes on SQLite queue (BEGIN IMMEDIATE, issue 11 item 2) instead of
# answering 503 "database is locked", which one worker would never exercise.
status=0
SCHEMATHESIS_HOOKS=hooks SCHEMATHESIS_CALLER_CLIENT_ID="$client_id" PYTHONPATH=tests/schemathesis \
"$venv/bin/schemathesis" --config-file tests/schemathesis/schemathesis.toml run "$base/admin/api/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks all \
  --max-examples "$examples" \
  --seed "${SCHEMATHESIS_SEED:-1}" \
  --workers "${SCHEMATHESIS_WORKERS:-2}" \
  --report junit --report-dir "$target/schemathesis-report" \
  --no-color || status=$?

cp "$work/server.log" "$target/schemathesis-report/server.log"
if grep -E 'panicked' "$work/server.log" >&2; then
  echo "schemathesis: the server panicked (above)" >&2
  status=1
fi
exit "$status"
