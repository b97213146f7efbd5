#!/usr/bin/env python3
"""Setup steps of bench/grants.sh that need a browser-like client (plain python3, no packages).

  grants_flow.py sessions N   one sign-in per line: the Cookie header of a signed-in person
                              (consent for the bench client is given once, in the first session)
  grants_flow.py seed N       N authorization-code flows through those sessions (round robin),
                              each exchanged for tokens; prints one refresh token per line
  grants_flow.py pkce         prints "verifier challenge" (S256)
  grants_flow.py bulk-sqlite PATH N      inserts N clients bulk-<i> with derived secrets
  grants_flow.py bulk-postgres N         prints the SQL that does the same on PostgreSQL

Settings come from the environment (never from argv, so secrets stay out of `ps`):
  FLOW_KIND           portcullis | peer
  FLOW_BASE           http://127.0.0.1:PORT
  FLOW_AUTHORIZE      authorization endpoint path (/oauth/authorize, /auth)
  FLOW_TOKEN          token endpoint path (/oauth/token, /token)
  FLOW_CLIENT_ID, FLOW_CLIENT_SECRET, FLOW_REDIRECT_URI, FLOW_SCOPE
  FLOW_USERNAME, FLOW_PASSWORD   the person who signs in (portcullis; the peer takes any)
  FLOW_COOKIES        file written by `sessions` (for `seed`)
  BULK_ID_PREFIX, BULK_SECRET_PREFIX   client i is BULK_ID_PREFIX + i zero-padded to 7 digits,
                      its secret BULK_SECRET_PREFIX + i, stored as portcullis stores a
                      generated secret: sha256$ + base64url(SHA-256(secret)), unpadded
"""

import base64
import hashlib
import html
import http.client
import json
import os
import re
import secrets
import sys
import time
import urllib.parse


def env(name):
    value = os.environ.get(name)
    if value is None:
        sys.exit(f"grants_flow.py: {name} is not set")
    return value


class Browser:
    """Keeps cookies by name (one host, paths ignored) and never follows redirects."""

    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.cookies = {}
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def cookie_header(self):
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def request(self, method, path, form=None, headers=None, cookies=True):
        h = dict(headers or {})
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            h["Content-Type"] = "application/x-www-form-urlencoded"
        if cookies and self.cookies:
            h["Cookie"] = self.cookie_header()
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=h)
                resp = self.conn.getresponse()
                data = resp.read().decode("utf-8", "replace")
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept-alive connection the server closed: open a new one, once.
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                if attempt:
                    raise
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                k, _, v = pair.partition("=")
                k = k.strip()
                # An expired or emptied cookie is dropped.
                if v == "" or "expires=thu, 01 jan 1970" in value.lower():
                    self.cookies.pop(k, None)
                else:
                    self.cookies[k] = v
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def form_value(page, name):
    m = re.search(r'name="%s" value="([^"]*)"' % re.escape(name), page)
    return html.unescape(m.group(1)) if m else None


def pkce_pair():
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_path(challenge, state):
    q = urllib.parse.urlencode({
        "response_type": "code",
        "client_id": env("FLOW_CLIENT_ID"),
        "redirect_uri": env("FLOW_REDIRECT_URI"),
        "scope": env("FLOW_SCOPE"),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    })
    return f"{env('FLOW_AUTHORIZE')}?{q}"


def local_path(location, base):
    """The path of a Location on this server, or None if it points elsewhere."""
    u = urllib.parse.urlsplit(urllib.parse.urljoin(base + "/", location))
    b = urllib.parse.urlsplit(base)
    if (u.scheme, u.netloc) != (b.scheme, b.netloc):
        return None
    return u.path + ("?" + u.query if u.query else "")


def drive(browser, path, base):
    """Follows one authorization request through sign-in and consent pages (both kinds of
    server) to the redirect back to the client; returns the code."""
    redirect_uri = env("FLOW_REDIRECT_URI")
    username = os.environ.get("FLOW_USERNAME", "alice")
    password = os.environ.get("FLOW_PASSWORD", "any")
    method, form = "GET", None
    for _ in range(12):
        status, headers, page = browser.request(method, path, form)
        method, form = "GET", None
        if status in (301, 302, 303, 307):
            loc = headers["location"]
            if loc.startswith(redirect_uri):
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)
                if "error" in q or "code" not in q:
                    raise SystemExit(f"grants_flow.py: authorization failed: {loc}")
                return q["code"][0]
            nxt = local_path(loc, base)
            if nxt is None:
                raise SystemExit(f"grants_flow.py: redirected away to {loc}")
            path = nxt
            continue
        if status != 200:
            raise SystemExit(f"grants_flow.py: {path} answered {status}: {page[:300]}")
        if 'name="prompt" value="login"' in page:  # the peer's dev sign-in page
            action = re.search(r'<form[^>]*action="([^"]+)"', page).group(1)
            path, method = html.unescape(action), "POST"
            form = {"prompt": "login", "login": username, "password": password}
        elif 'name="prompt" value="consent"' in page:  # the peer's dev consent page
            action = re.search(r'<form[^>]*action="([^"]+)"', page).group(1)
            path, method = html.unescape(action), "POST"
            form = {"prompt": "consent"}
        elif 'action="/oauth/authorize?' in page:  # portcullis's consent page
            start = page.index('action="/oauth/authorize?') + len('action="')
            action = html.unescape(page[start:page.index('"', start)])
            path, method = action, "POST"
            form = {"csrf_token": form_value(page, "csrf_token"), "decision": "allow"}
        else:
            raise SystemExit(f"grants_flow.py: unexpected page at {path}: {page[:300]}")
    raise SystemExit("grants_flow.py: too many steps in the authorization flow")


def portcullis_sign_in(browser):
    status, _, page = browser.request("GET", "/login?next=%2F")
    if status != 200:
        raise SystemExit(f"grants_flow.py: GET /login answered {status}")
    csrf = form_value(page, "csrf_token")
    status, headers, page = browser.request("POST", "/login", {
        "username": env("FLOW_USERNAME"),
        "password": env("FLOW_PASSWORD"),
        "csrf_token": csrf,
        "next": "/",
    })
    if status != 303:
        raise SystemExit(f"grants_flow.py: sign-in answered {status}: {page[:300]}")


def exchange(browser, code, verifier):
    basic = base64.b64encode(f"{env('FLOW_CLIENT_ID')}:{env('FLOW_CLIENT_SECRET')}".encode()).decode()
    status, _, body = browser.request("POST", env("FLOW_TOKEN"), {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": env("FLOW_REDIRECT_URI"),
        "code_verifier": verifier,
    }, headers={"Authorization": f"Basic {basic}"}, cookies=False)
    if status != 200:
        raise SystemExit(f"grants_flow.py: code exchange answered {status}: {body[:300]}")
    tokens = json.loads(body)
    if "refresh_token" not in tokens or "access_token" not in tokens:
        raise SystemExit(f"grants_flow.py: code exchange gave no refresh token: {sorted(tokens)}")
    return tokens


def sessions(n):
    base = env("FLOW_BASE")
    kind = env("FLOW_KIND")
    for i in range(n):
        b = Browser(base)
        if kind == "portcullis":
            portcullis_sign_in(b)
        # One full flow: signs in at the peer, gives consent the first time (both kinds), and
        # shows that this session gets a code.
        verifier, challenge = pkce_pair()
        code = drive(b, authorize_path(challenge, f"setup{i}"), base)
        exchange(b, code, verifier)
        # Only the cookies a signed-in browser keeps (not one-off interaction cookies).
        keep = {k: v for k, v in b.cookies.items() if not k.startswith("_interaction")}
        print("; ".join(f"{k}={v}" for k, v in keep.items()))


def seed(n):
    base = env("FLOW_BASE")
    with open(env("FLOW_COOKIES")) as f:
        cookies = [line.strip() for line in f if line.strip()]
    for i in range(n):
        b = Browser(base)
        for pair in cookies[i % len(cookies)].split("; "):
            k, _, v = pair.partition("=")
            b.cookies[k] = v
        verifier, challenge = pkce_pair()
        # A signed-in person whose consent is remembered goes straight back to the client.
        status, headers, page = b.request("GET", authorize_path(challenge, f"seed{i}"))
        loc = headers.get("location", "")
        if status not in (302, 303) or "code=" not in loc or "error=" in loc:
            raise SystemExit(f"grants_flow.py: seed {i} (session {i % len(cookies)}): authorization answered {status} {loc[:200]} {page[:200]}")
        code = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)["code"][0]
        print(exchange(b, code, verifier)["refresh_token"])


def bulk_rows(n):
    id_prefix, secret_prefix = env("BULK_ID_PREFIX"), env("BULK_SECRET_PREFIX")
    for i in range(n):
        secret = f"{secret_prefix}{i}"
        digest = hashlib.sha256(secret.encode()).digest()
        yield (f"{id_prefix}{i:07d}", i,
               "sha256$" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode(), secret[-4:])


def bulk_sqlite(path, n):
    import sqlite3
    now = int(time.time())
    con = sqlite3.connect(path, timeout=60)
    con.execute("PRAGMA busy_timeout = 60000")
    with con:
        con.execute("CREATE TEMP TABLE bulk (client_id TEXT, i INTEGER, hash TEXT, hint TEXT)")
        con.executemany("INSERT INTO bulk VALUES (?, ?, ?, ?)", bulk_rows(n))
        con.execute(
            "INSERT INTO clients (client_id, name, name_lower, description, public, enabled,"
            " allowed_scopes, allowed_grant_types, created_at, updated_at, ip_allowlist,"
            " loopback_any_port)"
            " SELECT client_id, 'Bulk client ' || i, 'bulk client ' || i, '', 0, 1, 'read',"
            " 'client_credentials', ?, ?, '', 0 FROM bulk ORDER BY i", (now, now))
        con.execute(
            "INSERT INTO client_secrets (client_id, description, hash, hint, created_at)"
            " SELECT c.id, 'bulk', b.hash, b.hint, ? FROM bulk b JOIN clients c"
            " ON c.client_id = b.client_id ORDER BY b.i", (now,))
        con.execute("DROP TABLE bulk")
    con.close()


def bulk_postgres(n):
    """SQL for psql: the same rows, computed by PostgreSQL itself (sha256() is built in)."""
    id_prefix, secret_prefix = env("BULK_ID_PREFIX"), env("BULK_SECRET_PREFIX")
    for s in (id_prefix, secret_prefix):
        if not re.fullmatch(r"[A-Za-z0-9_-]+", s):
            sys.exit("grants_flow.py: bulk prefixes must be [A-Za-z0-9_-]")
    print(f"""
BEGIN;
INSERT INTO clients (client_id, name, name_lower, description, public, enabled, allowed_scopes,
    allowed_grant_types, created_at, updated_at, ip_allowlist, loopback_any_port)
SELECT '{id_prefix}' || lpad(i::text, 7, '0'), 'Bulk client ' || i, 'bulk client ' || i, '', false,
    true, 'read', 'client_credentials', extract(epoch FROM now())::bigint,
    extract(epoch FROM now())::bigint, '', false
FROM generate_series(0, {n - 1}) AS i;
INSERT INTO client_secrets (client_id, description, hash, hint, created_at)
SELECT c.id, 'bulk',
    'sha256$' || rtrim(translate(encode(sha256(convert_to('{secret_prefix}' || s.i, 'UTF8')), 'base64'), '+/', '-_'), '='),
    right('{secret_prefix}' || s.i, 4), extract(epoch FROM now())::bigint
FROM generate_series(0, {n - 1}) AS s(i)
JOIN clients c ON c.client_id = '{id_prefix}' || lpad(s.i::text, 7, '0');
COMMIT;
ANALYZE clients;
ANALYZE client_secrets;
""")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd = sys.argv[1]
    if cmd == "sessions":
        sessions(int(sys.argv[2]))
    elif cmd == "seed":
        seed(int(sys.argv[2]))
    elif cmd == "pkce":
        print(*pkce_pair())
    elif cmd == "bulk-sqlite":
        bulk_sqlite(sys.argv[2], int(sys.argv[3]))
    elif cmd == "bulk-postgres":
        bulk_postgres(int(sys.argv[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
