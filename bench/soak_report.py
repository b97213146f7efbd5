#!/usr/bin/env python3
"""Summary of a soak run (bench/soak.sh) and its targets; exits 1 when a target is missed.

    python3 bench/soak_report.py target/soak/soak.csv

Targets (issue 11 item 8):
  - no 5xx and no failed connection, over the whole run;
  - RSS and open descriptors flat: over the last 10 minutes, the mean within 10% of the mean of
    minutes 5-10, and the maximum at most 10% above the maximum of minutes 5-10;
  - the tables that are purged bounded: their maximum over the last 10 minutes at most 10%
    (or 50 rows) above their maximum of minutes 5-10.
Runs shorter than 20 minutes compare the last third with the second sixth instead.
Plain python3, no packages.
"""
import csv
import re
import statistics
import sys

KINDS = ["cc", "code", "refresh", "revoke", "introspect", "admin"]
PURGED = ["refresh_tokens", "revoked_tokens", "grants", "sessions", "client_secrets"]


def main(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) < 6:
        print(f"soak: only {len(rows)} samples in {path}: too short to judge", file=sys.stderr)
        return 1
    num = lambda r, c: float(r[c]) if r[c] not in ("", None) else float("nan")
    end = num(rows[-1], "t_s")
    if end >= 20 * 60:
        base = (5 * 60, 10 * 60)
        last = (end - 10 * 60, end + 1)
        base_label, last_label = "min 5-10", "last 10 min"
    else:
        base = (end / 6, end / 3)
        last = (end * 2 / 3, end + 1)
        base_label, last_label = "2nd sixth", "last third"
    window = lambda w: [r for r in rows if w[0] < num(r, "t_s") <= w[1]]
    base_rows, last_rows = window(base), window(last)
    failures = []

    print(f"\n{len(rows)} samples, {end / 60:.1f} min ({path})\n")
    print("| kind | ops/s (mean) | p50 (median of 10-s p50s) | p99 (median of 10-s p99s) | worst 10-s p99 | errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    total_ops = 0.0
    for k in KINDS:
        rps = [num(r, f"{k}_rps") for r in rows]
        p50 = [num(r, f"{k}_p50_ms") for r in rows if num(r, f"{k}_rps") > 0]
        p99 = [num(r, f"{k}_p99_ms") for r in rows if num(r, f"{k}_rps") > 0]
        errs = sum(int(r[f"{k}_err"]) for r in rows)
        total_ops += statistics.mean(rps)
        print(
            f"| {k} | {statistics.mean(rps):.1f} | {statistics.median(p50) if p50 else 0:.2f} ms"
            f" | {statistics.median(p99) if p99 else 0:.2f} ms | {max(p99) if p99 else 0:.2f} ms | {errs} |"
        )
    http = statistics.mean(num(r, "http_rps") for r in rows)
    cpu = statistics.mean(num(r, "cpu_pct") for r in rows)
    print(f"\nall: {total_ops:.1f} ops/s, {http:.1f} HTTP requests/s; server CPU {cpu:.1f}% of one core (mean)")

    errors = {}
    for r in rows:
        for item in filter(None, (r.get("errors") or "").split(";")):
            key, _, n = item.rpartition("=")
            errors[key] = errors.get(key, 0) + int(n)
    five = {k: n for k, n in errors.items() if re.search(r"5\d\d$", k)}
    transport = {k: n for k, n in errors.items() if re.search(r":(connect|timeout|transport)$", k)}
    other = {k: n for k, n in errors.items() if k not in five and k not in transport}
    print(f"errors by kind and status: {errors or 'none'}")
    if five or transport:
        failures.append(f"5xx or failed connections: {five} {transport}")
    if other:
        print(f"note: unexpected answers that are not 5xx: {other}")

    print(f"\nflatness ({last_label} against {base_label}):")
    print(f"| | {base_label} mean | {base_label} max | {last_label} mean | {last_label} max | change of mean | target |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for col, label, scale, unit in [("rss_kib", "RSS", 1 / 1024, " MiB"), ("fds", "open descriptors", 1, ""),
                                    ("pg_conns", "database connections", 1, "")]:
        b = [num(r, col) for r in base_rows]
        l = [num(r, col) for r in last_rows]
        bm, lm = statistics.mean(b), statistics.mean(l)
        change = (lm - bm) / bm * 100 if bm else 0.0
        flat = abs(lm - bm) <= 0.10 * bm and max(l) <= 1.10 * max(b)
        judged = col != "pg_conns"
        verdict = ("met" if flat else "MISSED") if judged else "(informational)"
        print(f"| {label} | {bm * scale:.1f}{unit} | {max(b) * scale:.1f}{unit} | {lm * scale:.1f}{unit}"
              f" | {max(l) * scale:.1f}{unit} | {change:+.1f}% | {verdict} |")
        if judged and not flat:
            failures.append(f"{label} not flat: mean {bm:.0f} -> {lm:.0f}, max {max(b):.0f} -> {max(l):.0f}")

    print(f"\ntables ({last_label} against {base_label}):")
    print(f"| table | at {base[0] / 60:.0f} min | {base_label} max | {last_label} max | at the end | target |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for t in PURGED + ["audit_events"]:
        b = [num(r, t) for r in base_rows]
        l = [num(r, t) for r in last_rows]
        if t == "audit_events":
            per_min = (num(rows[-1], t) - num(rows[0], t)) / (end - num(rows[0], "t_s")) * 60
            print(f"| {t} | {b[0]:.0f} | {max(b):.0f} | {max(l):.0f} | {num(rows[-1], t):.0f} |"
                  f" grows {per_min:.0f}/min by design, kept PORTCULLIS_AUDIT_RETENTION_DAYS |")
            continue
        bounded = max(l) <= max(1.10 * max(b), max(b) + 50)
        print(f"| {t} | {b[0]:.0f} | {max(b):.0f} | {max(l):.0f} | {num(rows[-1], t):.0f} | {'met' if bounded else 'MISSED'} |")
        if not bounded:
            failures.append(f"{t} grows: max {max(b):.0f} in {base_label}, {max(l):.0f} in {last_label}")

    if failures:
        print("\nsoak: targets MISSED:\n  " + "\n  ".join(failures))
        return 1
    print("\nsoak: every target met (no 5xx, RSS and descriptors flat, purged tables bounded)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: soak_report.py SOAK_CSV", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
