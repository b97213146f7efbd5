//! The load generator of `bench/soak.sh` (issue 11 item 8, "hours of load"): a paced, mixed
//! load against a running server, and one CSV line every 10 s with what it measured and what
//! it sampled from the server process and its database.
//!
//! Per 100 operations: 70 client_credentials, 10 authorization-code flows through the HTML
//! forms (sign-in page when the browser has no session, consent page when the user has not
//! approved yet, else the remembered consent; then the code exchange), 9 refreshes, 1
//! revocation of a refresh token (its family: RFC 7009 2.1), 5 introspections and 5 admin JSON
//! API calls (reads, and secrets added and deleted). Each worker is paced at
//! `SOAK_RATE / SOAK_CONCURRENCY` operations per second (ticks missed while a request is slow
//! are skipped, not caught up).
//!
//! Configured by the environment (bench/soak.sh sets everything); see `Cfg::from_env`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark tool: failing loudly is right

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::Digest;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Cc,
    Code,
    Refresh,
    Revoke,
    Introspect,
    Admin,
}

const KINDS: [Kind; 6] = [
    Kind::Cc,
    Kind::Code,
    Kind::Refresh,
    Kind::Revoke,
    Kind::Introspect,
    Kind::Admin,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Cc => "cc",
            Kind::Code => "code",
            Kind::Refresh => "refresh",
            Kind::Revoke => "revoke",
            Kind::Introspect => "introspect",
            Kind::Admin => "admin",
        }
    }
}

/// 100 slots with the mix above, spread out (37 is coprime with 100).
fn schedule() -> Vec<Kind> {
    let mix = [
        (Kind::Cc, 70),
        (Kind::Code, 10),
        (Kind::Refresh, 9),
        (Kind::Revoke, 1),
        (Kind::Introspect, 5),
        (Kind::Admin, 5),
    ];
    let flat: Vec<Kind> = mix
        .iter()
        .flat_map(|(k, n)| std::iter::repeat_n(*k, *n))
        .collect();
    (0..100).map(|i| flat[(i * 37) % 100]).collect()
}

struct Cfg {
    url: String,
    seconds: u64,
    rate: f64,
    concurrency: usize,
    csv: String,
    server_pid: u32,
    psql_url: String,
    cc: (String, String),
    web: (String, String),
    admin: (String, String),
    scratch_client: String,
    users: usize,
    user_prefix: String,
    password: String,
    redirect_uri: String,
    scope: String,
    refresh_ttl: u64,
    new_session_every: u64,
    sample_every: u64,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("soak: {name} is not set"))
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

impl Cfg {
    fn from_env() -> Cfg {
        Cfg {
            url: env("SOAK_URL"),
            seconds: env("SOAK_SECONDS").parse().unwrap(),
            rate: env_or("SOAK_RATE", "300").parse().unwrap(),
            concurrency: env_or("SOAK_CONCURRENCY", "32").parse().unwrap(),
            csv: env("SOAK_CSV"),
            server_pid: env("SOAK_SERVER_PID").parse().unwrap(),
            psql_url: env("SOAK_PSQL_URL"),
            cc: (env("SOAK_CC_ID"), env("SOAK_CC_SECRET")),
            web: (env("SOAK_WEB_ID"), env("SOAK_WEB_SECRET")),
            admin: (env("SOAK_ADMIN_ID"), env("SOAK_ADMIN_SECRET")),
            scratch_client: env("SOAK_SCRATCH_CLIENT"),
            users: env("SOAK_USERS").parse().unwrap(),
            user_prefix: env("SOAK_USER_PREFIX"),
            password: env("SOAK_PASSWORD"),
            redirect_uri: env("SOAK_REDIRECT_URI"),
            scope: env("SOAK_SCOPE"),
            refresh_ttl: env("SOAK_REFRESH_TTL").parse().unwrap(),
            new_session_every: env_or("SOAK_NEW_SESSION_EVERY", "20").parse().unwrap(),
            sample_every: env_or("SOAK_SAMPLE_SECONDS", "10").parse().unwrap(),
        }
    }
}

/// What one sampling interval saw.
#[derive(Default)]
struct Interval {
    latencies: BTreeMap<Kind, Vec<u32>>,
    errors: BTreeMap<String, u64>,
    http: u64,
}

struct Shared {
    cfg: Cfg,
    http: reqwest::Client,
    stats: Mutex<Interval>,
    /// Live refresh tokens with when they were issued; the oldest are abandoned (and expire).
    refresh_pool: Mutex<VecDeque<(String, Instant)>>,
    /// Recent access tokens of the web app, for introspection.
    access_pool: Mutex<VecDeque<String>>,
    /// The admin API token and when to renew it (a minute before it expires).
    admin_token: tokio::sync::Mutex<Option<(String, Instant)>>,
    /// Sign-ins in flight at once: people do not all arrive in the same second, and the
    /// server answers a burst beyond its argon2 queue with 503 by design.
    sign_ins: tokio::sync::Semaphore,
    /// Secrets the admin load added to the scratch client, to delete next.
    added_secrets: Mutex<VecDeque<i64>>,
    ops: AtomicU64,
    /// Operations of each kind so far (indexed by `Kind as usize`).
    per_kind: [AtomicU64; 6],
    users: AtomicU64,
}

const REFRESH_POOL: usize = 300;
const ACCESS_POOL: usize = 200;

/// An operation's failure, keyed for the errors column: an HTTP status, or what went wrong.
type Outcome = Result<(), String>;

fn status_err(what: &str, s: reqwest::StatusCode) -> String {
    format!("{what}{}", s.as_u16())
}

impl Shared {
    fn count_http(&self) {
        self.stats.lock().unwrap().http += 1;
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, String> {
        self.count_http();
        req.send().await.map_err(|e| {
            if e.is_timeout() {
                "timeout".to_string()
            } else if e.is_connect() {
                "connect".to_string()
            } else {
                "transport".to_string()
            }
        })
    }

    fn record(&self, kind: Kind, elapsed: Duration, outcome: Outcome) {
        let mut s = self.stats.lock().unwrap();
        s.latencies
            .entry(kind)
            .or_default()
            .push(elapsed.as_micros().min(u32::MAX as u128) as u32);
        if let Err(e) = outcome {
            *s.errors.entry(format!("{}:{e}", kind.name())).or_default() += 1;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.cfg.url)
    }

    fn keep_tokens(&self, t: &serde_json::Value) {
        if let Some(r) = t["refresh_token"].as_str() {
            let mut pool = self.refresh_pool.lock().unwrap();
            pool.push_back((r.to_string(), Instant::now()));
            while pool.len() > REFRESH_POOL {
                pool.pop_front();
            }
        }
        if let Some(a) = t["access_token"].as_str() {
            let mut pool = self.access_pool.lock().unwrap();
            pool.push_back(a.to_string());
            while pool.len() > ACCESS_POOL {
                pool.pop_front();
            }
        }
    }

    /// The oldest refresh token still well within its lifetime.
    fn take_refresh(&self) -> Option<String> {
        let mut pool = self.refresh_pool.lock().unwrap();
        let fresh_for = Duration::from_secs(self.cfg.refresh_ttl.saturating_sub(30));
        while let Some((t, at)) = pool.pop_front() {
            if at.elapsed() < fresh_for {
                return Some(t);
            }
        }
        None
    }

    async fn token(
        &self,
        who: &(String, String),
        form: &[(&str, &str)],
    ) -> Result<serde_json::Value, String> {
        let resp = self
            .send(
                self.http
                    .post(self.url("/oauth/token"))
                    .basic_auth(&who.0, Some(&who.1))
                    .form(form),
            )
            .await?;
        if resp.status() != 200 {
            return Err(status_err("", resp.status()));
        }
        resp.json().await.map_err(|_| "body".to_string())
    }

    async fn client_credentials(&self) -> Outcome {
        self.token(&self.cfg.cc, &[("grant_type", "client_credentials")])
            .await
            .map(drop)
    }

    async fn refresh(&self, browser: &mut Browser) -> (Kind, Outcome) {
        let Some(r) = self.take_refresh() else {
            // Nothing to refresh yet (the first seconds): make a family instead.
            return (Kind::Code, self.code_flow(browser).await);
        };
        let t = self
            .token(
                &self.cfg.web,
                &[("grant_type", "refresh_token"), ("refresh_token", &r)],
            )
            .await;
        (Kind::Refresh, t.map(|t| self.keep_tokens(&t)))
    }

    async fn revoke(&self, browser: &mut Browser) -> (Kind, Outcome) {
        let Some(r) = self.take_refresh() else {
            return (Kind::Code, self.code_flow(browser).await);
        };
        let web = &self.cfg.web;
        let outcome = match self
            .send(
                self.http
                    .post(self.url("/oauth/revoke"))
                    .basic_auth(&web.0, Some(&web.1))
                    .form(&[("token", &r)]),
            )
            .await
        {
            Ok(resp) if resp.status() == 200 => Ok(()),
            Ok(resp) => Err(status_err("", resp.status())),
            Err(e) => Err(e),
        };
        (Kind::Revoke, outcome)
    }

    async fn introspect(&self, n: u64) -> Outcome {
        // Alternately a recent access token and a live refresh token of the web app.
        let token = if n.is_multiple_of(2) {
            let pool = self.access_pool.lock().unwrap();
            pool.get(n as usize % pool.len().max(1)).cloned()
        } else {
            let pool = self.refresh_pool.lock().unwrap();
            pool.back().map(|(t, _)| t.clone())
        };
        let token = token.unwrap_or_else(|| "not-a-token".to_string());
        let web = &self.cfg.web;
        let resp = self
            .send(
                self.http
                    .post(self.url("/oauth/introspect"))
                    .basic_auth(&web.0, Some(&web.1))
                    .form(&[("token", &token)]),
            )
            .await?;
        if resp.status() != 200 {
            return Err(status_err("", resp.status()));
        }
        let body: serde_json::Value = resp.json().await.map_err(|_| "body".to_string())?;
        if body["active"].is_boolean() {
            Ok(())
        } else {
            Err("no-active".into())
        }
    }

    async fn admin_bearer(&self) -> Result<String, String> {
        let mut held = self.admin_token.lock().await;
        if let Some((t, renew_at)) = held.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(t.clone());
        }
        let t = self
            .token(&self.cfg.admin, &[("grant_type", "client_credentials")])
            .await?;
        let expires_in = t["expires_in"].as_u64().ok_or("no-expires-in")?;
        let t = t["access_token"].as_str().ok_or("no-token")?.to_string();
        let renew_at = Instant::now() + Duration::from_secs(expires_in.saturating_sub(60).max(1));
        *held = Some((t.clone(), renew_at));
        Ok(t)
    }

    /// Half reads (clients list, audit log, the scratch client's secrets), half writes (a
    /// secret added to the scratch client, then deleted).
    async fn admin(&self, n: u64) -> Outcome {
        let bearer = self.admin_bearer().await?;
        let scratch = &self.cfg.scratch_client;
        let api = |p: String| self.url(&format!("/admin/api/v1{p}"));
        let (req, want) = match (n % 2, n / 2 % 3) {
            (0, 0) => (self.http.get(api("/clients?per_page=25".into())), 200),
            (0, 1) => (self.http.get(api("/audit-events?per_page=25".into())), 200),
            (0, _) => (
                self.http.get(api(format!("/clients/{scratch}/secrets"))),
                200,
            ),
            _ => {
                // Writes alternate: add a secret, delete it.
                let delete = self.added_secrets.lock().unwrap().pop_front();
                match delete {
                    Some(id) => (
                        self.http
                            .delete(api(format!("/clients/{scratch}/secrets/{id}"))),
                        204,
                    ),
                    None => {
                        let body = serde_json::json!({"description": "soak"});
                        (
                            self.http
                                .post(api(format!("/clients/{scratch}/secrets")))
                                .json(&body),
                            201,
                        )
                    }
                }
            }
        };
        let resp = self.send(req.bearer_auth(&bearer)).await?;
        let status = resp.status();
        if status != want {
            return Err(status_err("", status));
        }
        if want == 201 {
            let body: serde_json::Value = resp.json().await.map_err(|_| "body".to_string())?;
            let id = body["secret"]["id"].as_i64().ok_or("no-secret-id")?;
            self.added_secrets.lock().unwrap().push_back(id);
        }
        Ok(())
    }

    /// The authorization code flow as a browser does it, then the exchange (RFC 6749 4.1,
    /// RFC 7636 S256).
    async fn code_flow(&self, browser: &mut Browser) -> Outcome {
        browser.flows += 1;
        if (browser.flows - 1).is_multiple_of(self.cfg.new_session_every.max(1))
            || browser.client.is_none()
        {
            // A new browser: no session, so a sign-in with the next user. The old session is
            // abandoned, to be purged after the idle timeout.
            browser.client = Some(new_browser());
            let u = self.users.fetch_add(1, Ordering::Relaxed) as usize % self.cfg.users;
            browser.username = format!("{}{u}", self.cfg.user_prefix);
        }
        let client = browser.client.clone().unwrap();
        let verifier = portcullis::crypto::generate_secret().map_err(|_| "rng")?;
        let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
        let state = portcullis::crypto::unique_id();
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.cfg.web.0)
            .append_pair("redirect_uri", &self.cfg.redirect_uri)
            .append_pair("scope", &self.cfg.scope)
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        let authorize = self.url(&format!("/oauth/authorize?{query}"));
        let mut resp = self.send(client.get(&authorize)).await?;
        let mut code = None;
        for _ in 0..6 {
            let status = resp.status();
            if status.is_redirection() {
                let location = resp
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .ok_or("no-location")?
                    .to_string();
                if location.starts_with(&self.cfg.redirect_uri) {
                    let back = url::Url::parse(&location).map_err(|_| "bad-location")?;
                    let pairs: BTreeMap<String, String> = back.query_pairs().into_owned().collect();
                    if pairs.get("state") != Some(&state) {
                        return Err("state".into());
                    }
                    code = Some(pairs.get("code").ok_or("no-code")?.clone());
                    break;
                } else if location.starts_with("/login") {
                    let next = url::Url::parse(&self.url(&location))
                        .map_err(|_| "bad-location")?
                        .query_pairs()
                        .find(|(k, _)| k == "next")
                        .map(|(_, v)| v.into_owned())
                        .ok_or("no-next")?;
                    let page = self.send(client.get(self.url(&location))).await?;
                    if page.status() != 200 {
                        return Err(status_err("login-page", page.status()));
                    }
                    let html = page.text().await.map_err(|_| "body")?;
                    let csrf = form_value(&html, "csrf_token").ok_or("no-csrf")?;
                    let _one_of_few = self.sign_ins.acquire().await.map_err(|_| "semaphore")?;
                    let signed = self
                        .send(client.post(self.url("/login")).form(&[
                            ("username", browser.username.as_str()),
                            ("password", self.cfg.password.as_str()),
                            ("csrf_token", csrf.as_str()),
                            ("next", next.as_str()),
                        ]))
                        .await?;
                    if signed.status() != 303 {
                        return Err(status_err("login", signed.status()));
                    }
                    resp = self.send(client.get(self.url(&next))).await?;
                } else {
                    return Err(format!("redirect{}", status.as_u16()));
                }
            } else if status == 200 {
                // The consent page: Allow (remembered from now on for this user and client).
                let html = resp.text().await.map_err(|_| "body")?;
                let csrf = form_value(&html, "csrf_token").ok_or("no-csrf")?;
                resp = self
                    .send(
                        client
                            .post(&authorize)
                            .form(&[("csrf_token", csrf.as_str()), ("decision", "allow")]),
                    )
                    .await?;
            } else {
                return Err(status_err("authorize", status));
            }
        }
        let code = code.ok_or("no-code")?;
        let t = self
            .token(
                &self.cfg.web,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", &self.cfg.redirect_uri),
                    ("code_verifier", &verifier),
                ],
            )
            .await
            .map_err(|e| format!("exchange{e}"))?;
        self.keep_tokens(&t);
        Ok(())
    }
}

fn form_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

/// Idle connections are dropped before the server's keep-alive (actix-web's default, 5 s)
/// closes them: a request sent on a connection the server is closing at that moment fails in
/// transport, which is the client racing the server, not the server failing.
const IDLE: Duration = Duration::from_secs(3);

fn new_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(IDLE)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

struct Browser {
    client: Option<reqwest::Client>,
    username: String,
    flows: u64,
}

async fn worker(
    sh: Arc<Shared>,
    offset: u64,
    start: tokio::time::Instant,
    deadline: Instant,
    every: Duration,
) {
    let schedule = schedule();
    // Browsers are renewed every `new_session_every` flows; staggered, so that the workers'
    // sign-ins spread out instead of coming together.
    let mut browser = Browser {
        client: None,
        username: String::new(),
        flows: offset % sh.cfg.new_session_every.max(1),
    };
    let mut tick = tokio::time::interval_at(start, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        if Instant::now() >= deadline {
            return;
        }
        let n = sh.ops.fetch_add(1, Ordering::Relaxed);
        let kind = schedule[(n % 100) as usize];
        let k_n = sh.per_kind[kind as usize].fetch_add(1, Ordering::Relaxed);
        let t = Instant::now();
        let (kind, outcome) = match kind {
            Kind::Cc => (kind, sh.client_credentials().await),
            Kind::Code => (kind, sh.code_flow(&mut browser).await),
            Kind::Refresh => sh.refresh(&mut browser).await,
            Kind::Revoke => sh.revoke(&mut browser).await,
            Kind::Introspect => (kind, sh.introspect(k_n).await),
            Kind::Admin => (kind, sh.admin(k_n).await),
        };
        sh.record(kind, t.elapsed(), outcome);
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// (VmRSS in KiB, open descriptors, CPU ticks) of the server.
fn process_sample(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    let ticks = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            let f: Vec<&str> = rest.split_whitespace().collect();
            f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
                + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        })
        .unwrap_or(0);
    (rss, fds, ticks)
}

const TABLES: [&str; 6] = [
    "refresh_tokens",
    "revoked_tokens",
    "grants",
    "sessions",
    "audit_events",
    "client_secrets",
];

/// Connections to the soak database (other than this query's) and the row counts.
async fn db_sample(psql_url: &str) -> Vec<String> {
    let mut sql = String::from(
        "SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid())",
    );
    for t in TABLES {
        sql.push_str(&format!(", (SELECT count(*) FROM {t})"));
    }
    let out = tokio::process::Command::new("psql")
        .args([psql_url, "-XAtqF,", "-c", &sql])
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .trim()
            .split(',')
            .map(str::to_string)
            .collect(),
        _ => vec![String::new(); TABLES.len() + 1],
    }
}

fn header() -> String {
    let mut h = vec!["t_s".to_string()];
    for k in KINDS {
        for c in ["rps", "p50_ms", "p99_ms", "err"] {
            h.push(format!("{}_{c}", k.name()));
        }
    }
    h.extend(["http_rps", "cpu_pct", "rss_kib", "fds", "pg_conns"].map(String::from));
    h.extend(TABLES.map(String::from));
    h.push("errors".into());
    h.join(",")
}

async fn sampler(sh: Arc<Shared>, started: Instant, deadline: Instant) {
    use std::io::Write;
    let mut csv = std::fs::File::create(&sh.cfg.csv).unwrap();
    writeln!(csv, "{}", header()).unwrap();
    let hz = 100.0; // USER_HZ on Linux
    let every = Duration::from_secs(sh.cfg.sample_every);
    let mut last = Instant::now();
    let mut last_ticks = process_sample(sh.cfg.server_pid).2;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tick.tick().await;
        let interval = std::mem::take(&mut *sh.stats.lock().unwrap());
        let secs = last.elapsed().as_secs_f64();
        last = Instant::now();
        let (rss, fds, ticks) = process_sample(sh.cfg.server_pid);
        let cpu = ticks.saturating_sub(last_ticks) as f64 / hz / secs * 100.0;
        last_ticks = ticks;
        let db = db_sample(&sh.cfg.psql_url).await;
        let mut row = vec![format!("{:.0}", started.elapsed().as_secs_f64())];
        for k in KINDS {
            let mut l = interval.latencies.get(&k).cloned().unwrap_or_default();
            l.sort_unstable();
            let errs: u64 = interval
                .errors
                .iter()
                .filter(|(e, _)| e.starts_with(&format!("{}:", k.name())))
                .map(|(_, n)| n)
                .sum();
            row.push(format!("{:.1}", l.len() as f64 / secs));
            row.push(format!("{:.2}", percentile(&l, 0.50)));
            row.push(format!("{:.2}", percentile(&l, 0.99)));
            row.push(errs.to_string());
        }
        row.push(format!("{:.1}", interval.http as f64 / secs));
        row.push(format!("{cpu:.1}"));
        row.push(rss.to_string());
        row.push(fds.to_string());
        row.extend(db);
        row.push(
            interval
                .errors
                .iter()
                .map(|(e, n)| format!("{e}={n}"))
                .collect::<Vec<_>>()
                .join(";"),
        );
        writeln!(csv, "{}", row.join(",")).unwrap();
        csv.flush().unwrap();
        let total: usize = interval.latencies.values().map(Vec::len).sum();
        eprintln!(
            "soak: {:>5.0} s  {:>6.1} ops/s  rss {} KiB  fds {}  errors {}",
            started.elapsed().as_secs_f64(),
            total as f64 / secs,
            rss,
            fds,
            interval.errors.values().sum::<u64>()
        );
        if Instant::now() >= deadline {
            return;
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cfg = Cfg::from_env();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(IDLE)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let every = Duration::from_secs_f64(cfg.concurrency as f64 / cfg.rate);
    let concurrency = cfg.concurrency;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(cfg.seconds);
    let sh = Arc::new(Shared {
        cfg,
        http,
        stats: Mutex::new(Interval::default()),
        refresh_pool: Mutex::new(VecDeque::new()),
        access_pool: Mutex::new(VecDeque::new()),
        admin_token: tokio::sync::Mutex::new(None),
        sign_ins: tokio::sync::Semaphore::new(2),
        added_secrets: Mutex::new(VecDeque::new()),
        ops: AtomicU64::new(0),
        per_kind: Default::default(),
        users: AtomicU64::new(0),
    });
    let t0 = tokio::time::Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        // Staggered, so the workers' ticks spread over the interval.
        let start = t0 + every.mul_f64(w as f64 / concurrency as f64);
        workers.push(tokio::spawn(worker(
            sh.clone(),
            w as u64,
            start,
            deadline,
            every,
        )));
    }
    let sampling = tokio::spawn(sampler(sh.clone(), started, deadline));
    for w in workers {
        w.await.unwrap();
    }
    sampling.await.unwrap();
}
