"""The built-in web UI at ``/``: every source at a glance, top statements, index advice, Redis, app health.

Server-rendered from the scheduler's latest snapshots (read-only; a request
never talks to a database), refreshed by a small script that re-fetches the
rendered sections (``/ui/sections``). No external assets: the CSS and script
are served from ``monitor/web/static``; the Content-Security-Policy allows
nothing else, inline scripts included.

Every name and query text comes from a monitored system and is untrusted: it
only reaches the page through :func:`esc`.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from collectors.postgres.snapshot import PostgresSnapshot
from collectors.redis.snapshot import RedisSnapshot
from monitor import __version__
from monitor.samples import OTHER
from monitor.scheduler import Scheduler, SourceState

STATIC = Path(__file__).parent / "static"
TOP_STATEMENTS = 15
TOP_TABLES = 10
QUERY_CHARS = 400
DASH = "\N{EN DASH}"  # an absent value
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
SOURCE_ORDER = {"postgres": 0, "redis": 1, "health": 2, "advisor": 3}


# --- formatting (every function returns escaped HTML) --------------------------
def esc(value: object) -> str:
    """Escape anything for HTML text and attribute values (quotes included)."""
    return html.escape(str(value), quote=True)


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def fmt_num(value: Any, digits: int = 0) -> str:
    number = _finite(value)
    if number is None:
        return DASH
    return f"{number:,.{digits}f}"


def fmt_ratio(value: Any) -> str:
    number = _finite(value)
    return DASH if number is None else f"{number * 100:.1f} %"


def fmt_ms(seconds: Any) -> str:
    number = _finite(seconds)
    if number is None:
        return DASH
    ms = number * 1000
    return f"{ms:,.2f} ms" if ms < 100 else f"{ms:,.0f} ms"


def fmt_seconds(seconds: Any) -> str:
    number = _finite(seconds)
    if number is None:
        return DASH
    if number < 1:
        return fmt_ms(number)
    if number < 120:
        return f"{number:.1f} s"
    if number < 7200:
        return f"{number / 60:.1f} min"
    return f"{number / 3600:.1f} h"


def fmt_bytes(value: Any) -> str:
    number = _finite(value)
    if number is None:
        return DASH
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(number) < 1024 or unit == "TB":
            return f"{number:,.0f} {unit}" if unit == "B" else f"{number:,.1f} {unit}"
        number /= 1024
    return DASH  # pragma: no cover


def fmt_age(timestamp: float | None, now: float) -> str:
    if timestamp is None:
        return "never"
    return f"{fmt_seconds(max(0.0, now - timestamp))} ago"


def badge(ok: bool | None, yes: str = "up", no: str = "down", unknown: str = "unknown") -> str:
    if ok is None:
        return f'<span class="badge unknown">{esc(unknown)}</span>'
    return f'<span class="badge ok">{esc(yes)}</span>' if ok else f'<span class="badge bad">{esc(no)}</span>'


def meter(ratio: float | None, warn: float = 0.8, high: float = 0.9) -> str:
    if ratio is None:
        return ""
    value = min(max(ratio, 0.0), 1.0)
    return f'<meter min="0" max="1" low="{warn}" high="{high}" optimum="0" value="{value:.3f}"></meter>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "", empty: str = "nothing yet") -> str:
    """``rows`` hold already-escaped cells; headers are escaped here. A header ending in '>' is numeric."""
    head = "".join(
        f'<th class="num">{esc(h[:-1])}</th>' if h.endswith(">") else f"<th>{esc(h)}</th>" for h in headers)
    numeric = [h.endswith(">") for h in headers]
    body = []
    for row in rows:
        cells = "".join(f'<td class="num">{c}</td>' if numeric[i] else f"<td>{c}</td>" for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    if not body:
        return f'<p class="empty">{esc(empty)}</p>'
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def query_cell(text: str) -> str:
    compact = " ".join(text.split())
    short = compact if len(compact) <= QUERY_CHARS else compact[:QUERY_CHARS] + "…"
    return f'<code class="sql" title="{esc(compact[:2000])}">{esc(short)}</code>'


# --- per-source summaries ----------------------------------------------------------
def _pg_summary(snap: Any) -> str:
    parts = []
    hit = next((d.cache_hit_ratio for d in getattr(snap, "databases", []) if d.datname == snap.datname), None)
    parts.append(f"cache hit {fmt_ratio(hit)}")
    connections = sum(c[3] for c in getattr(snap, "connections", []))
    parts.append(f"connections {fmt_num(connections)} / {fmt_num(getattr(snap, 'max_connections', None))}")
    for app, used, capacity in getattr(snap, "app_pools", []):
        parts.append(f"pool {esc(app)} {fmt_num(used)}/{fmt_num(capacity)}")
    return " · ".join(parts)


def _redis_summary(snap: Any) -> str:
    info = getattr(snap, "info", None)
    used = info.number("used_memory") if info is not None else None
    maxmem = info.number("maxmemory") if info is not None else None
    memory = fmt_bytes(used) + (f" / {fmt_bytes(maxmem)}" if maxmem else "")
    return (f"hit ratio {fmt_ratio(getattr(snap, 'hit_ratio', None))} · memory {memory} · "
            f"keys {fmt_num(getattr(snap, 'dbsize', None))}")


def probe_results(snap: Any) -> list[Any]:
    """The per-endpoint results of a health snapshot, whatever the attribute is called."""
    for name in ("results", "probes", "endpoints"):
        value = getattr(snap, name, None)
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list | tuple):
            return [r for r in value if hasattr(r, "path")]
    return []


def _result_up(result: Any) -> bool | None:
    up = getattr(result, "up", None)
    if callable(up):
        up = up()
    return up if isinstance(up, bool) else None


def _health_summary(snap: Any) -> str:
    results = probe_results(snap)
    up = sum(1 for r in results if _result_up(r))
    return f"endpoints up {up} / {len(results)}"


def report_of(state: SourceState) -> Any | None:
    """The advice report of an advisor source: the snapshot itself or its ``report``."""
    snap = state.snapshot
    if snap is None:
        return None
    if hasattr(snap, "findings"):
        return snap
    report = getattr(snap, "report", None)
    return report if report is not None and hasattr(report, "findings") else None


def _advisor_summary(state: SourceState) -> str:
    report = report_of(state)
    if report is None:
        return "no report yet"
    return f"{len(report.findings)} finding(s) · {fmt_num(getattr(report, 'statements_analyzed', None))} statements"


def summary(state: SourceState) -> str:
    snap = state.snapshot
    if state.poller.source == "advisor":
        return _advisor_summary(state)
    if snap is None:
        return ""
    try:
        if state.poller.source == "postgres":
            return _pg_summary(snap)
        if state.poller.source == "redis":
            return _redis_summary(snap)
        if state.poller.source == "health":
            return _health_summary(snap)
    except (AttributeError, TypeError, ValueError):
        return ""
    return ""


def _anchor(source: str, target: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in f"{source}-{target}")


def render_overview(states: list[SourceState], now: float) -> str:
    rows = []
    for s in states:
        link = f'<a href="#{esc(_anchor(s.poller.source, s.poller.target))}">{esc(s.poller.target)}</a>'
        status = badge(s.up if s.polls else None, unknown="starting")
        error = f'<span class="error">{esc(s.last_error)}</span>' if s.last_error else ""
        rows.append([esc(s.poller.source), link, status, esc(fmt_age(s.last_success, now)), fmt_num(s.polls),
                     fmt_num(s.errors), fmt_seconds(s.last_duration), summary(s), error])
    return ('<section id="overview"><h2>Sources</h2>'
            + table(["source", "target", "status", "last success", "polls>", "errors>", "poll time>", "key ratios",
                     "last error"], rows, "overview", "no sources configured")
            + "</section>")


# --- PostgreSQL -------------------------------------------------------------------------
def _statement_rows(statements: list[Any]) -> list[list[str]]:
    rows = []
    for s in statements:
        calls = s.calls or 0
        blocks = (s.blks_hit or 0) + (s.blks_read or 0)
        query = query_cell(s.query) if s.queryid != OTHER else '<span class="muted">all other statements</span>'
        rows.append([
            f'<span class="mono">{esc(s.queryid)}</span>', query, fmt_num(calls), fmt_seconds(s.exec_seconds),
            fmt_ms(s.exec_seconds / calls if calls else None), fmt_num(s.rows),
            fmt_num(s.rows / calls if calls else None, 1), fmt_ratio(s.blks_hit / blocks if blocks else None),
        ])
    return rows


def _is_control(query: str) -> bool:
    """Transaction control and session statements: never N+1 suspects."""
    first = query.lstrip().split(None, 1)[0].upper() if query.strip() else ""
    return first in {"BEGIN", "COMMIT", "ROLLBACK", "START", "END", "SET", "RESET", "SHOW", "DISCARD", "SAVEPOINT",
                     "RELEASE"}


STATEMENT_HEADERS = ["queryid", "query", "calls>", "total time>", "mean>", "rows>", "rows/call>", "cache hit>"]


def _section_head(state: SourceState, title: str) -> str:
    """The opening of a source's section: anchor, title, target and status badge."""
    target = state.poller.target
    return (f'<section class="source" id="{esc(_anchor(state.poller.source, target))}">'
            f'<h2>{esc(title)} <span class="target">{esc(target)}</span> '
            f'{badge(state.up if state.polls else None)}</h2>')


def _not_yet(state: SourceState, what: str) -> str:
    """The whole section while there is no snapshot to show."""
    error = f": {esc(state.last_error)}" if state.last_error else ""
    return f'<p class="empty">{what}{error}</p></section>'


def render_postgres(state: SourceState, now: float) -> str:
    snap = state.snapshot
    out = [_section_head(state, "PostgreSQL")]
    if not isinstance(snap, PostgresSnapshot):
        return out[0] + _not_yet(state, "no successful poll yet")
    features = " ".join(badge(on, esc(name), esc(name)) for name, on in sorted(snap.features.items()))
    out.append(f'<p class="meta">server {esc(snap.server_version)} · database {esc(snap.datname)} · '
               f'{_pg_summary(snap)} · oldest transaction {fmt_seconds(snap.oldest_transaction_seconds)} · '
               f'lock waits {fmt_num(snap.lock_waiting_sessions)}</p><p class="meta">{features}</p>')

    statements = sorted((s for s in snap.statements if s.queryid != OTHER), key=lambda s: -s.exec_seconds)
    other = [s for s in snap.statements if s.queryid == OTHER]
    out.append(f"<h3>Top statements by total time ({fmt_num(snap.statement_count)} tracked)</h3>")
    out.append(table(STATEMENT_HEADERS, _statement_rows(statements[:TOP_STATEMENTS] + other), "statements",
                     "no statements: is pg_stat_statements installed?"))

    slow = sorted((s for s in statements if s.calls), key=lambda s: -(s.exec_seconds / s.calls))[:5]
    busy = sorted((s for s in statements if not _is_control(s.query)), key=lambda s: -s.calls)[:5]
    out.append("<h3>Slowest by mean time</h3>" + table(STATEMENT_HEADERS, _statement_rows(slow), "statements"))
    out.append("<h3>Most called (N+1 suspects: many calls, about one row each)</h3>"
               + table(STATEMENT_HEADERS, _statement_rows(busy), "statements"))

    tables = sorted((t for t in snap.tables if t.table != OTHER), key=lambda t: -t.seq_scans)[:TOP_TABLES]
    out.append("<h3>Tables by sequential scans</h3>")
    out.append(table(
        ["table", "seq scans>", "index scans>", "live rows>", "dead rows>", "size>"],
        ([f"{esc(t.schema)}.{esc(t.table)}", fmt_num(t.seq_scans), fmt_num(t.index_scans), fmt_num(t.live_rows),
          fmt_num(t.dead_rows), fmt_bytes(t.size_bytes)] for t in tables), "tables"))

    out.append('<div class="two"><div><h3>Connections</h3>')
    out.append(table(["database", "application", "state", "count>"],
                     ([esc(d), esc(a or "(none)"), esc(st), fmt_num(n)] for d, st, a, n in snap.connections),
                     "connections"))
    out.append("</div><div><h3>Application pools (server side)</h3>")
    out.append(table(["application", "connections>", "capacity>", "use"],
                     ([esc(a), fmt_num(used), fmt_num(cap), meter(used / cap if cap else None) + " "
                       + fmt_ratio(used / cap if cap else None)] for a, used, cap in snap.app_pools),
                     "pools", "no app_pools configured"))
    out.append("</div></div></section>")
    return "".join(out)


# --- advice ----------------------------------------------------------------------------
KIND_TITLES = {
    "missing_index": "Missing index", "n_plus_one": "N+1 query pattern", "slow_statement": "Slow statement",
    "invalid_index": "Invalid index", "duplicate_index": "Duplicate index", "redundant_index": "Redundant index",
    "unused_index": "Unused index", "low_selectivity_index": "Low-selectivity index",
}
PATTERN_KINDS = ("n_plus_one", "slow_statement")


def _finding(f: Any, n: int, ident: str) -> str:
    kind = str(getattr(f, "kind", ""))
    title = KIND_TITLES.get(kind, kind)
    index = getattr(f, "index", None)
    columns = getattr(f, "columns", None)
    subject = esc(index) if index else esc(getattr(f, "table", ""))
    if columns:
        subject += f' <span class="muted">({esc(", ".join(str(c) for c in columns))})</span>'
    facts = []
    verified = getattr(f, "verified", None)
    if verified:
        facts.append(f"verified: {esc(verified)}")
    before, after = getattr(f, "cost_before", None), getattr(f, "cost_after", None)
    if before is not None and after is not None:
        facts.append(f"cost {fmt_num(before)} → {fmt_num(after)}")
    for attr, label, fmt in (("calls", "calls", fmt_num), ("mean_exec_seconds", "mean", fmt_ms),
                             ("rows_per_call", "rows/call", lambda v: fmt_num(v, 2)),
                             ("share_of_calls", "share of calls", fmt_ratio),
                             ("index_size_bytes", "size", fmt_bytes)):
        value = getattr(f, attr, None)
        if value is not None:
            facts.append(f"{label} {fmt(value)}")
    parts = [f'<article class="finding {esc(kind)}" id="{esc(ident)}">',
             f'<h4><span class="kind">{esc(title)}</span> {subject}'
             + (f' <span class="muted">on {esc(getattr(f, "table", ""))}</span>' if index else "") + "</h4>",
             f'<p class="evidence">{esc(getattr(f, "evidence", ""))}</p>']
    if facts:
        parts.append(f'<p class="facts">{" · ".join(facts)}</p>')
    query = getattr(f, "query", None)
    if query:
        parts.append(f'<pre class="sql">{esc(query)}</pre>')
    ddl = getattr(f, "ddl", None)
    if ddl:
        parts.append(f'<div class="ddl"><pre id="{esc(ident)}-ddl"><code>{esc(ddl)}</code></pre>'
                     f'<button type="button" data-copy="{esc(ident)}-ddl">copy</button></div>')
    parts.append("</article>")
    return "".join(parts)


def render_advice(states: list[SourceState], now: float) -> str:
    advisors = [s for s in states if s.poller.source == "advisor"]
    out = ['<section id="advice"><h2>Index advice</h2>']
    if not advisors:
        out.append('<p class="empty">The advisor is not running in this dbpulse. '
                   '<a href="advice.html">advice.html</a> may still hold a report.</p></section>')
        return "".join(out)
    patterns: list[str] = []
    for state in advisors:
        target = state.poller.target
        report = report_of(state)
        out.append(f'<div class="advisor" id="{esc(_anchor("advisor", target))}">'
                   f'<h3>{esc(target)} {badge(state.up if state.polls else None, "ok", "failing", "starting")}'
                   f' <span class="muted">report {esc(fmt_age(state.last_success, now))} · '
                   f'<a href="advice.html">full report</a> · <a href="advice">JSON</a></span></h3>')
        if state.last_error:
            out.append(f'<p class="error">{esc(state.last_error)}</p>')
        if report is None:
            out.append('<p class="empty">waiting for the advisor\'s first run</p></div>')
            continue
        ordered = report.ordered_findings() if hasattr(report, "ordered_findings") else list(report.findings)
        index_findings = [f for f in ordered if getattr(f, "kind", "") not in PATTERN_KINDS]
        pattern_findings = [f for f in ordered if getattr(f, "kind", "") in PATTERN_KINDS]
        counts: dict[str, int] = {}
        for f in ordered:
            counts[str(getattr(f, "kind", ""))] = counts.get(str(getattr(f, "kind", "")), 0) + 1
        out.append('<p class="meta">' + (" · ".join(
            f"{esc(KIND_TITLES.get(k, k))}: {n}" for k, n in counts.items()) or "no findings") + "</p>")
        for note in getattr(report, "notes", []):
            out.append(f'<p class="note">{esc(note)}</p>')
        base = _anchor("finding", target)
        out.extend(_finding(f, i, f"{base}-{i}") for i, f in enumerate(index_findings, 1))
        if not index_findings:
            out.append('<p class="empty">no index findings</p>')
        patterns.extend(_finding(f, i, f"{base}-p{i}") for i, f in enumerate(pattern_findings, 1))
        out.append("</div>")
    out.append("</section>")
    out.append('<section id="patterns"><h2>N+1 and slow statements</h2>')
    out.append("".join(patterns) or '<p class="empty">none found in the advisor\'s window</p>')
    out.append("</section>")
    return "".join(out)


# --- Redis ---------------------------------------------------------------------------------
def render_redis(state: SourceState, now: float) -> str:
    snap = state.snapshot
    out = [_section_head(state, "Redis")]
    if not isinstance(snap, RedisSnapshot):
        return out[0] + _not_yet(state, "no successful poll yet")
    info = snap.info
    fields = info.fields
    out.append(f'<p class="meta">version {esc(fields.get("redis_version", "?"))} · {_redis_summary(snap)} · '
               f'peak {fmt_bytes(info.number("used_memory_peak"))} · clients '
               f'{fmt_num(info.number("connected_clients"))} · {fmt_num(info.number("instantaneous_ops_per_sec"))}'
               f' ops/s · evicted {fmt_num(info.number("evicted_keys"))} · ping {fmt_ms(snap.ping_seconds)}</p>')
    out.append('<div class="two"><div><h3>TTL discipline by key prefix (sampled)</h3>')
    rows = []
    for prefix, (count, without_ttl, mean_ttl) in sorted(snap.prefixes.items(), key=lambda kv: -kv[1][0]):
        flag = badge(False, no="keys without TTL") if without_ttl and without_ttl > 0 else badge(True, yes="all expire")
        rows.append([f'<span class="mono">{esc(prefix)}</span>', fmt_num(count), fmt_ratio(without_ttl),
                     fmt_seconds(mean_ttl), flag])
    out.append(table(["prefix", "keys>", "without TTL>", "mean TTL>", ""], rows, "prefixes",
                     "no keys sampled (sampling disabled or an empty database)"))
    out.append("</div><div><h3>Queues</h3>")
    out.append(table(["key", "length>"], ([f'<span class="mono">{esc(k)}</span>', fmt_num(v)]
                                          for k, v in sorted(snap.queues.items())), "queues", "no queues configured"))
    out.append("<h3>Keyspace</h3>")
    out.append(table(["db", "keys>", "expiring>", "avg TTL>"],
                     ([esc(db), fmt_num(e.keys), fmt_num(e.expires), fmt_seconds(e.avg_ttl_seconds)]
                      for db, e in sorted(info.keyspace.items())), "keyspace", "empty"))
    out.append("</div></div></section>")
    return "".join(out)


# --- application health ---------------------------------------------------------------------------
def render_health(state: SourceState, now: float) -> str:
    snap = state.snapshot
    out = [_section_head(state, "Application")]
    if snap is None:
        return out[0] + _not_yet(state, "no probe yet")
    results = probe_results(snap)
    rows, components, pools = [], [], []
    for r in results:
        error = getattr(r, "error", None)
        notes = [esc(error)] if error else []
        if getattr(r, "parse_error", False):
            notes.append("body is not JSON")
        if getattr(r, "too_large", False):
            notes.append("body too large")
        rows.append([f'<span class="mono">{esc(r.path)}</span>', badge(_result_up(r)),
                     esc(getattr(r, "status_code", None) or DASH), fmt_ms(getattr(r, "duration", None)),
                     " · ".join(notes)])
        body = getattr(r, "body", None)
        if body is None:
            continue
        for name, up in sorted(getattr(body, "components", {}).items()):
            components.append([f'<span class="mono">{esc(r.path)}</span>', esc(name),
                               badge(up, "healthy", "unhealthy")])
        for path, pool in sorted(getattr(body, "pools", {}).items()):
            capacity = getattr(pool, "capacity", None)
            out_now = getattr(pool, "checked_out", None)
            ratio = out_now / capacity if capacity and out_now is not None else None
            pools.append([f'<span class="mono">{esc(r.path)}</span> {esc(path)}', fmt_num(out_now),
                          fmt_num(getattr(pool, "checked_in", None)), fmt_num(getattr(pool, "size", None)),
                          fmt_num(getattr(pool, "overflow", None)), fmt_num(getattr(pool, "max_overflow", None)),
                          meter(ratio) + " " + fmt_ratio(ratio)])
    out.append("<h3>Endpoints</h3>")
    out.append(table(["endpoint", "status", "HTTP", "latency>", "notes"], rows, "endpoints"))
    out.append('<div class="two"><div><h3>Components</h3>')
    out.append(table(["endpoint", "component", "status"], components, "components", "no components reported"))
    out.append("</div><div><h3>Connection pool (as the app reports it)</h3>")
    out.append(table(["where", "checked out>", "checked in>", "size>", "overflow>", "max overflow>", "use"], pools,
                     "app-pools", "no pool block in the health bodies"))
    out.append("</div></div></section>")
    return "".join(out)


RENDERERS = {"postgres": render_postgres, "redis": render_redis, "health": render_health}  # page order: SOURCE_ORDER


def _generic(state: SourceState, now: float) -> str:
    return _section_head(state, state.poller.source) + "</section>"


def render_sections(scheduler: Scheduler, now: float | None = None) -> str:
    """The live part of the page (what the script re-fetches)."""
    now = time.time() if now is None else now
    states = sorted(scheduler.states, key=lambda s: (SOURCE_ORDER.get(s.poller.source, 9), s.poller.target))
    parts = [render_overview(states, now), render_advice(states, now)]
    by_source: dict[str, list[SourceState]] = {}
    for s in states:
        by_source.setdefault(s.poller.source, []).append(s)
    for source, group in by_source.items():
        if source == "advisor":
            continue
        renderer = RENDERERS.get(source, _generic)
        for s in group:
            try:
                parts.append(renderer(s, now))
            except (AttributeError, TypeError, ValueError, KeyError):  # a snapshot shape this UI does not know
                parts.append(_generic(s, now))
    stamp = time.strftime("%H:%M:%S", time.localtime(now))
    parts.append(f'<p class="stamp" id="rendered-at" data-version="{scheduler.version}">rendered {stamp}</p>')
    return "".join(parts)


def refresh_seconds(scheduler: Scheduler) -> int:
    intervals = [s.poller.interval for s in scheduler.states if s.poller.source != "advisor"]
    return int(min(max(min(intervals, default=5.0), 2.0), 30.0))


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dbpulse</title>
<link rel="stylesheet" href="ui/static/ui.css">
<script src="ui/static/ui.js" defer></script>
</head>
<body data-refresh="{refresh}">
<header><h1>dbpulse <span class="muted">{version}</span></h1>
<nav><a href="#overview">sources</a> <a href="#advice">index advice</a> <a href="#patterns">N+1 &amp; slow</a>
<a href="metrics">/metrics</a> <a href="advice.html">advice report</a> <a href="readyz">/readyz</a>
<a href="healthz">/healthz</a></nav>
<p id="refresh-status" class="muted">refreshes every {refresh} s</p></header>
<main id="live">{sections}</main>
<footer class="muted">Served from the latest snapshots; this page never queries a database.</footer>
</body></html>
"""


async def page(request: web.Request) -> web.Response:
    scheduler = _scheduler(request)
    body = PAGE.format(version=esc(__version__), refresh=refresh_seconds(scheduler),
                       sections=render_sections(scheduler))
    return web.Response(text=body, content_type="text/html", headers=SECURITY_HEADERS)


async def sections(request: web.Request) -> web.Response:
    return web.Response(text=render_sections(_scheduler(request)), content_type="text/html",
                        headers=SECURITY_HEADERS)


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    types = {"ui.css": "text/css", "ui.js": "text/javascript"}
    if name not in types:
        raise web.HTTPNotFound()
    return web.Response(text=(STATIC / name).read_text(encoding="utf-8"), content_type=types[name],
                        charset="utf-8", headers={**SECURITY_HEADERS, "Cache-Control": "max-age=300"})


def _scheduler(request: web.Request) -> Scheduler:
    from monitor.http import SCHEDULER

    return request.app[SCHEDULER]


def add_ui_routes(app: web.Application) -> None:
    """``/`` (the page), ``/ui/sections`` (its live part) and ``/ui/static/{ui.css,ui.js}``."""
    app.router.add_get("/", page)
    app.router.add_get("/ui/sections", sections)
    app.router.add_get("/ui/static/{name}", static)


__all__ = ["add_ui_routes", "esc", "render_sections"]
