#!/usr/bin/env python3
"""Every metric name used by the alert rules and the Grafana dashboard exists.

Known names: those the server's source registers (apps/server/src: metrics.rs
and the parts that export their own, histograms with their _bucket/_sum/_count
series), Prometheus's own `up`, and the proposed
ones in prometheus/proposed-metrics.txt (reported as missing, not failed).
With --url URL (a node's /metrics), also checks that every name the node
exports is known from the source, and lists known names it has no samples for.

  python3 deploy/check_metrics.py [--url http://127.0.0.1:8081/metrics]
"""
import json
import pathlib
import re
import sys
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
FUNCS = {
    "abs", "absent", "absent_over_time", "avg", "avg_over_time", "bottomk", "ceil", "changes",
    "clamp", "clamp_max", "clamp_min", "count", "count_over_time", "count_values", "delta", "deriv",
    "exp", "floor", "group", "histogram_quantile", "holt_winters", "idelta", "increase", "irate",
    "label_join", "label_replace", "last_over_time", "ln", "log2", "log10", "max", "max_over_time",
    "min", "min_over_time", "predict_linear", "quantile", "quantile_over_time", "rate", "resets",
    "round", "scalar", "sort", "sort_desc", "sqrt", "stddev", "stdvar", "sum", "sum_over_time",
    "time", "timestamp", "topk", "vector",
}
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
            "offset", "bool", "inf", "nan"}
BUILTIN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def source_metrics():
    # metrics.rs holds the shared registry; parts with numbers of their own
    # (search, voice, notifications, media, link previews) register theirs
    # beside their code: a name followed by its help text.
    names = set()
    for path in sorted((ROOT / "apps/server/src").rglob("*.rs")):
        src = path.read_text()
        for m in re.finditer(r'(\w+)::new\(\s*"(hearth_[a-z0-9_]+)"', src):
            kind, name = m.groups()
            names.add(name)
            if kind == "HistogramOpts":
                names.update(f"{name}{s}" for s in ("_bucket", "_sum", "_count"))
        for m in re.finditer(r'"(hearth_[a-z0-9_]+)",\s*"', src):
            names.add(m.group(1))
            # A histogram family built by hand (voice's delay, from the SFU's own
            # buckets): its series are the _bucket/_sum/_count ones.
            if "MetricType::HISTOGRAM" in src and m.group(1).endswith("_seconds"):
                names.update(f"{m.group(1)}{s}" for s in ("_bucket", "_sum", "_count"))
    return names


def proposed_metrics():
    out = set()
    for line in (DEPLOY / "prometheus/proposed-metrics.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            out.add(line.split()[0])
    return out


def metric_names(expr):
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)           # string literals
    e = re.sub(r"\{[^}]*\}", "", e)                          # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                         # ranges, subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\$\{?\w+\}?", "", e)                        # Grafana variables
    e = re.sub(r"\b\d+(ms|[smhdwy])\b", " ", e)                # durations (offset 5m)
    e = re.sub(r"\b\d+(\.\d+)?([eE][+-]?\d+)?", " ", e)          # numbers (1e3)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        tok = m.group(0)
        rest = e[m.end():].lstrip()
        if tok in KEYWORDS or (tok in FUNCS and rest.startswith("(")):
            continue
        names.add(tok)
    return names


def alert_exprs():
    import yaml  # promtool's rules are YAML; PyYAML is in most Pythons, else skip them
    doc = yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())
    for g in doc["groups"]:
        for r in g["rules"]:
            yield f"alerts.yml {r.get('alert') or r.get('record')}", r["expr"]


def dashboard_exprs():
    dash = json.loads((DEPLOY / "grafana/hearth.json").read_text())
    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))
    for p in panels(dash["panels"]):
        for t in p.get("targets", []):
            if t.get("expr"):
                yield f"hearth.json \"{p['title']}\"", t["expr"]
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if v.get("type") == "query" and q:
            m = re.search(r"label_values\((.*),\s*\w+\)$", q)
            yield f"hearth.json variable {v['name']}", m.group(1) if m else q


def main():
    known = source_metrics() | BUILTIN
    proposed = proposed_metrics()
    problems, used_proposed, n = [], set(), 0
    exprs = list(dashboard_exprs())
    try:
        exprs += list(alert_exprs())
    except ImportError:
        print("check_metrics: no PyYAML, alerts.yml skipped", file=sys.stderr)
    for where, expr in exprs:
        n += 1
        for name in metric_names(expr):
            if name in known:
                continue
            if name in proposed:
                used_proposed.add(name)
            else:
                problems.append(f"{where}: unknown metric {name}")
    if "--url" in sys.argv:
        url = sys.argv[sys.argv.index("--url") + 1]
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        live = {m.group(1) for m in re.finditer(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.M)}
        for name in sorted(live - known):
            problems.append(f"{url} exports {name}, which the source does not register (parser out of date?)")
        bases = {n[: -len("_bucket")] for n in known if n.endswith("_bucket")}
        quiet = sorted(n for n in known - live - BUILTIN - bases)
        print(f"check_metrics: {url}: {len(live)} names live; no samples yet for: {', '.join(quiet) or 'none'}")
    print(f"check_metrics: {n} expressions, {len(known - BUILTIN)} exported names; "
          f"proposed, not exported yet: {', '.join(sorted(used_proposed)) or 'none'}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)


main()
