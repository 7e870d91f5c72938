#!/usr/bin/env python3
"""Generate dbpulse's Grafana dashboards (JSON model) into dashboards/json/.

The dashboards follow the source registry (``collectors/registry.py``): a
source's dashboards are the builders its spec names (``SourceSpec.dashboards``,
else the one named like the source), or one drawn from the charts its spec
declares when it has no builder here; ``SHARED`` are the service's own. A
builder that is neither is an error. The generated JSON is committed;
tests/dashboards checks it is current, that every query parses as PromQL and
uses only catalogued metric names, and tests/lint/source_parts.py that each
source's dashboards read only its own and the shared metrics.

    python dashboards/generate.py          # write dashboards/json/*.json
    python dashboards/generate.py --check  # exit 1 if the committed JSON is out of date

Conventions: a `datasource` variable (no datasource UID is hard-coded), `job`,
`instance` and `target` variables on every dashboard, a unit on every panel,
rates over `$__rate_interval`, ratios from the recording rules in rules/.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collectors.base.spec import ChartSpec, SourceSpec
from collectors.registry import sources

OUT = Path(__file__).resolve().parent / "json"
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job", instance=~"$instance", target=~"$target"'
RI = "$__rate_interval"


def target(expr: str, legend: str = "", instant: bool = False) -> dict[str, Any]:
    t: dict[str, Any] = {"datasource": DS, "expr": expr, "legendFormat": legend or "__auto",
                         "refId": ""}
    if instant:
        t.update(instant=True, range=False, format="table")
    return t


class Layout:
    """Left-to-right, top-to-bottom placement on Grafana's 24-column grid."""

    def __init__(self) -> None:
        self.x = self.y = self.row_h = 0
        self.next_id = 1

    def place(self, panel: dict[str, Any], w: int, h: int) -> dict[str, Any]:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        panel["id"] = self.next_id
        self.next_id += 1
        self.x += w
        self.row_h = max(self.row_h, h)
        for i, t in enumerate(panel.get("targets", [])):
            t["refId"] = chr(ord("A") + i)
        return panel

    def row(self, title: str) -> dict[str, Any]:
        self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel = {"type": "row", "title": title, "collapsed": False, "panels": []}
        return self.place(panel, 24, 1)


def timeseries(title: str, targets: list[dict[str, Any]], unit: str, description: str = "",
               stack: bool = False, max_: float | None = None) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit, "custom": {"fillOpacity": 10, "showPoints": "never"}}
    if stack:
        defaults["custom"]["stacking"] = {"mode": "normal", "group": "A"}
    if max_ is not None:
        defaults.update(min=0, max=max_)
    return {"type": "timeseries", "title": title, "description": description, "datasource": DS,
            "targets": targets, "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


def stat(title: str, targets: list[dict[str, Any]], unit: str, description: str = "",
         thresholds: list[tuple[float | None, str]] | None = None,
         mappings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    steps = [{"value": v, "color": c} for v, c in (thresholds or [(None, "green")])]
    return {"type": "stat", "title": title, "description": description, "datasource": DS,
            "targets": targets,
            "fieldConfig": {"defaults": {"unit": unit, "mappings": mappings or [],
                                         "thresholds": {"mode": "absolute", "steps": steps}},
                            "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "background", "graphMode": "none", "textMode": "value_and_name"}}


def table(title: str, targets: list[dict[str, Any]], unit: str, description: str = "") -> dict[str, Any]:
    return {"type": "table", "title": title, "description": description, "datasource": DS,
            "targets": targets, "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"showHeader": True},
            "transformations": [{"id": "organize", "options": {"excludeByName": {"Time": True}}}]}


UP_MAPPING = [{"type": "value", "options": {"0": {"text": "DOWN", "color": "red"},
                                            "1": {"text": "UP", "color": "green"}}}]
UP_THRESHOLDS: list[tuple[float | None, str]] = [(None, "red"), (1, "green")]
OK_MAPPING = [{"type": "value", "options": {"0": {"text": "FAILED", "color": "red"},
                                            "1": {"text": "OK", "color": "green"}}}]
REFUSED_MAPPING = [{"type": "value", "options": {"0": {"text": "accepted", "color": "green"},
                                                 "1": {"text": "REFUSED", "color": "red"}}}]


def ratio_thresholds(bad: float, good: float) -> list[tuple[float | None, str]]:
    return [(None, "red"), (bad, "orange"), (good, "green")]


def usage_thresholds(warn: float, crit: float) -> list[tuple[float | None, str]]:
    return [(None, "green"), (warn, "orange"), (crit, "red")]


def variables(target_metric: str) -> list[dict[str, Any]]:
    def query_var(name: str, query: str, label: str) -> dict[str, Any]:
        return {"name": name, "label": label, "type": "query", "datasource": DS,
                "query": {"query": query, "refId": f"{name}-var"}, "definition": query,
                "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*",
                "current": {"text": "All", "value": "$__all"}, "sort": 1}

    return [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "refresh": 1},
        query_var("job", "label_values(dbpulse_build_info, job)", "Job"),
        query_var("instance", 'label_values(dbpulse_build_info{job=~"$job"}, instance)', "Instance"),
        query_var("target", f'label_values({target_metric}{{job=~"$job", instance=~"$instance"}}, target)',
                  "Target"),
    ]


def dashboard(uid: str, title: str, description: str, target_metric: str,
              panels: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "uid": uid, "title": title, "description": description, "tags": ["dbpulse"],
        "editable": True, "graphTooltip": 1, "schemaVersion": 39, "version": 1,
        "time": {"from": "now-3h", "to": "now"}, "refresh": "30s", "timezone": "",
        "templating": {"list": variables(target_metric)},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["dbpulse"], "asDropdown": True, "title": "dbpulse",
                   "includeVars": True, "keepTime": True}],
        "panels": panels,
    }


Builder = Callable[[], dict[str, Any]]
BUILDERS: dict[str, Builder] = {}  # every hand-written dashboard's builder, by function name
SHARED = ("overview",)  # the service's own dashboards (every source's status side by side), no source's


def board(build: Builder) -> Builder:
    """Registers a dashboard builder, found by its name: a source's names it in its spec (``dashboards``), or
    is named like it; the service's own are in ``SHARED``."""
    BUILDERS[build.__name__] = build
    return build


# --- overview ------------------------------------------------------------------
@board
def overview() -> dict[str, Any]:
    lay = Layout()
    p = [
        lay.row("Sources"),
        lay.place(stat("Source health", [target(f"dbpulse_source_up{{{SEL}}}", "{{source}} {{target}}")],
                       "none", "1 if the last poll of the source succeeded.", UP_THRESHOLDS, UP_MAPPING), 24, 4),
        lay.place(stat("Snapshot age", [target(f"dbpulse:source_snapshot_age:seconds{{{SEL}}}",
                                               "{{source}} {{target}}")],
                       "s", "Time since the last successful poll of each source.",
                       [(None, "green"), (120, "orange"), (600, "red")]), 12, 4),
        lay.place(stat("dbpulse scrape", [target('up{job=~"$job", instance=~"$instance"}', "{{instance}}")],
                       "none", "Prometheus's own up for the dbpulse scrape.", UP_THRESHOLDS, UP_MAPPING),
                  12, 4),
        lay.row("Key ratios"),
        lay.place(stat("PostgreSQL connections used",
                       [target(f"dbpulse:pg_connections:usage_ratio{{{SEL}}}", "{{target}}")],
                       "percentunit", "Client connections / max_connections.", usage_thresholds(0.8, 0.95)),
                  6, 5),
        lay.place(stat("PostgreSQL buffer cache hit ratio",
                       [target(f"dbpulse:pg_database_cache_hit:ratio_rate5m{{{SEL}}}", "{{target}} {{datname}}")],
                       "percentunit", "Block accesses served from shared buffers over 5 minutes.",
                       ratio_thresholds(0.95, 0.99)), 6, 5),
        lay.place(stat("Redis cache hit ratio",
                       [target(f"dbpulse:redis_cache_hit:ratio_rate5m{{{SEL}}}", "{{target}}")],
                       "percentunit", "Key lookups that hit over 5 minutes; the app expects at least 85%.",
                       ratio_thresholds(0.85, 0.95)), 6, 5),
        lay.place(stat("App readiness",
                       [target(f'dbpulse_health_up{{{SEL}, endpoint=~".*/(ready|readyz|readiness)"}}',
                               "{{target}}")],
                       "none", "2xx from the readiness endpoint.", UP_THRESHOLDS, UP_MAPPING), 6, 5),
        lay.row("Alerts"),
        lay.place(table("Firing alerts",
                        [target('sum by (alertname, severity, source, target) (ALERTS{alertstate="firing", '
                                'alertname=~"Dbpulse.*|Postgres.*|Redis.*|App.*"})', instant=True)],
                        "none", "dbpulse alerts firing now (from the rules in rules/)."), 24, 8),
        lay.row("dbpulse itself"),
        lay.place(timeseries("Poll duration",
                             [target(f"dbpulse_source_poll_duration_seconds{{{SEL}}}", "{{source}} {{target}}"),
                              target(f"dbpulse_source_interval_seconds{{{SEL}}}", "interval {{source}} {{target}}")],
                             "s", "Wall time of the last poll, against the poll interval."), 12, 8),
        lay.place(timeseries("Poll errors and overruns",
                             [target(f"rate(dbpulse_source_poll_errors_total{{{SEL}}}[{RI}])",
                                     "errors {{source}} {{target}}"),
                              target(f"rate(dbpulse_source_poll_overruns_total{{{SEL}}}[{RI}])",
                                     "overruns {{source}} {{target}}")],
                             "ops", "Failed polls and skipped ticks per second."), 12, 8),
    ]
    return dashboard("dbpulse-overview", "dbpulse / Overview",
                     "Health of every source dbpulse watches, the key ratios and the firing alerts.",
                     "dbpulse_source_up", p)


# --- PostgreSQL ------------------------------------------------------------------
@board
def postgres() -> dict[str, Any]:
    lay = Layout()
    top = "topk(10, {})"
    p = [
        lay.row("Server"),
        lay.place(stat("Up", [target(f"dbpulse_pg_up{{{SEL}}}", "{{target}}")], "none", "",
                       UP_THRESHOLDS, UP_MAPPING), 6, 5),
        lay.place(stat("Connections used", [target(f"dbpulse:pg_connections:usage_ratio{{{SEL}}}", "{{target}}")],
                       "percentunit", "Client connections / max_connections.", usage_thresholds(0.8, 0.95)), 6, 5),
        lay.place(stat("Oldest transaction", [target(f"dbpulse_pg_oldest_transaction_seconds{{{SEL}}}",
                                                     "{{target}}")],
                       "s", "", usage_thresholds(60, 300)), 6, 5),
        lay.place(stat("Oldest idle in transaction",
                       [target(f"dbpulse_pg_idle_in_transaction_oldest_seconds{{{SEL}}}", "{{target}}")],
                       "s", "", usage_thresholds(10, 60)), 6, 5),
        lay.place(timeseries("Connections by state",
                             [target(f"sum by (target, state) (dbpulse_pg_connections{{{SEL}}})",
                                     "{{target}} {{state}}"),
                              target(f"dbpulse_pg_max_connections{{{SEL}}}", "max_connections {{target}}")],
                             "short", "Client backends by state, against max_connections."), 12, 8),
        lay.place(timeseries("Connections by application",
                             [target(f"sum by (target, application_name) (dbpulse_pg_connections{{{SEL}}})",
                                     "{{target}} {{application_name}}")], "short", "", stack=True), 12, 8),
        lay.place(timeseries("Application pool usage (server side)",
                             [target(f"dbpulse_pg_app_pool_usage_ratio{{{SEL}}}",
                                     "{{target}} {{application_name}}")],
                             "percentunit", "Server connections of an application / its pool capacity.", max_=1),
                  12, 8),
        lay.place(timeseries("Lock waits and deadlocks",
                             [target(f"dbpulse_pg_lock_waiting_sessions{{{SEL}}}", "waiting {{target}}"),
                              target(f"increase(dbpulse_pg_database_deadlocks_total{{{SEL}}}[{RI}])",
                                     "deadlocks {{target}} {{datname}}")], "short", ""), 12, 8),
        lay.row("Databases"),
        lay.place(timeseries("Transactions",
                             [target(f"rate(dbpulse_pg_database_xact_commit_total{{{SEL}}}[{RI}])",
                                     "commit {{target}} {{datname}}"),
                              target(f"rate(dbpulse_pg_database_xact_rollback_total{{{SEL}}}[{RI}])",
                                     "rollback {{target}} {{datname}}")], "ops", ""), 8, 8),
        lay.place(timeseries("Rollback ratio",
                             [target(f"dbpulse:pg_database_rollback:ratio_rate5m{{{SEL}}}",
                                     "{{target}} {{datname}}"),
                              target(f"dbpulse:pg_database_rollback:ratio_rate5m{{{SEL}}} offset 1w",
                                     "a week ago {{target}} {{datname}}")],
                             "percentunit", "SQLAlchemy sessions closed without commit count as rollbacks.",
                             max_=1), 8, 8),
        lay.place(timeseries("Buffer cache hit ratio",
                             [target(f"dbpulse:pg_database_cache_hit:ratio_rate5m{{{SEL}}}",
                                     "{{target}} {{datname}}")], "percentunit", "", max_=1), 8, 8),
        lay.row("Statements (pg_stat_statements, top-K)"),
        lay.place(timeseries("Top statements by total time",
                             [target(top.format(f"rate(dbpulse_pg_statement_exec_seconds_total{{{SEL}}}[{RI}])"),
                                     "{{queryid}}")],
                             "s", "Execution seconds per second (load each statement puts on the server)."),
                  12, 8),
        lay.place(timeseries("Top statements by mean time",
                             [target(top.format(f"dbpulse:pg_statement_mean_seconds:rate5m{{{SEL}}}"),
                                     "{{queryid}}")], "s", "Mean execution time per call over 5 minutes."),
                  12, 8),
        lay.place(timeseries("Top statements by calls",
                             [target(top.format(f"rate(dbpulse_pg_statement_calls_total{{{SEL}}}[{RI}])"),
                                     "{{queryid}}")], "ops", ""), 8, 8),
        lay.place(timeseries("Top statements by rows",
                             [target(top.format(f"rate(dbpulse_pg_statement_rows_total{{{SEL}}}[{RI}])"),
                                     "{{queryid}}")], "short", "Rows returned or affected per second."), 8, 8),
        lay.place(timeseries("Statement cache hit ratio",
                             [target(f"rate(dbpulse_pg_statement_shared_blocks_hit_total{{{SEL}}}[{RI}]) / ("
                                     f"rate(dbpulse_pg_statement_shared_blocks_hit_total{{{SEL}}}[{RI}]) + "
                                     f"rate(dbpulse_pg_statement_shared_blocks_read_total{{{SEL}}}[{RI}]))",
                                     "{{queryid}}")], "percentunit", "", max_=1), 8, 8),
        lay.place(timeseries("Wait events by class (average active sessions)",
                             [target(f"sum by (target, wait_event_type) (rate(dbpulse_pg_wait_seconds_total"
                                     f"{{{SEL}}}[{RI}]))", "{{target}} {{wait_event_type}}")], "short",
                             "Where active sessions' time goes (CPU: waiting on nothing); PostgresWaitClassDominant "
                             "fires when LWLock or IO takes most of it.", stack=True), 12, 8),
        lay.place(timeseries("Top statements by wait time",
                             [target(top.format(f"sum by (queryid, wait_event_type, wait_event) (rate("
                                                f"dbpulse_pg_statement_wait_seconds_total{{{SEL}}}[{RI}]))"),
                                     "{{queryid}} {{wait_event_type}}:{{wait_event}}")], "short",
                             "Seconds per second each top statement spends in each wait event (CPU:CPU included)."),
                  12, 8),
        lay.row("Tables and indexes"),
        lay.place(timeseries("Index scans (top indexes)",
                             [target(top.format(f"rate(dbpulse_pg_index_scans_total{{{SEL}}}[{RI}])"),
                                     "{{table}}.{{index}}")], "ops", ""), 12, 8),
        lay.place(timeseries("Sequential vs index scans by table",
                             [target(top.format(f"rate(dbpulse_pg_table_seq_scans_total{{{SEL}}}[{RI}])"),
                                     "seq {{table}}"),
                              target(top.format(f"rate(dbpulse_pg_table_index_scans_total{{{SEL}}}[{RI}])"),
                                     "idx {{table}}")], "ops", "Big tables read by sequential scans "
                                                              "are where missing indexes hide."), 12, 8),
        lay.place(table("Index sizes", [target(top.format(f"dbpulse_pg_index_size_bytes{{{SEL}}}"),
                                               instant=True)], "bytes", ""), 12, 8),
        lay.place(timeseries("Dead rows (top tables)",
                             [target(top.format(f"dbpulse_pg_table_dead_rows{{{SEL}}}"), "{{table}}")],
                             "short", ""), 12, 8),
        lay.row("Index advice"),
        lay.place(stat("Advisor findings by kind",
                       [target(f"sum by (kind) (dbpulse_advice_findings{{{SEL}}})", "{{kind}}")], "none",
                       "`dbpulse advise` has the details and the DDL.",
                       [(None, "green"), (1, "orange")]), 16, 6),
        lay.place(stat("Largest missing-index benefit",
                       [target(f"dbpulse_advice_missing_index_benefit_ratio{{{SEL}}}", "{{target}}")],
                       "percentunit", "Relative cost reduction of the best missing-index finding.",
                       usage_thresholds(0.2, 0.5)), 4, 6),
        lay.place(stat("Advisor last run",
                       [target(f"time() - dbpulse_advice_last_run_timestamp_seconds{{{SEL}}}", "{{target}}")],
                       "s", "", usage_thresholds(3600, 86400)), 4, 6),
        lay.place(stat("Plan actions",
                       [target(f"sum by (action) (dbpulse_advice_plan_actions{{{SEL}}})", "{{action}}")], "none",
                       "The advisor's plan: creates, drops and replaces (create, then drop), in the report's order."),
                  12, 6),
        lay.place(timeseries("Outcomes of index changes by verdict",
                             [target(f"sum by (verdict) (dbpulse_advice_outcome_statements{{{SEL}}})",
                                     "{{verdict}}")], "short",
                             "Statements of tables whose indexes changed, judged after against before."), 12, 6),
    ]
    return dashboard("dbpulse-postgres", "dbpulse / PostgreSQL queries and indexes",
                     "Connections, transactions, top statements, index use and index advice.",
                     "dbpulse_pg_up", p)


# --- PostgreSQL health ------------------------------------------------------------------
@board
def postgres_health() -> dict[str, Any]:
    lay = Layout()
    top = "topk(10, {})"
    p = [
        lay.row("Replication"),
        lay.place(stat("Role", [target(f"dbpulse_pg_in_recovery{{{SEL}}}", "{{target}}")], "none", "",
                       mappings=[{"type": "value", "options": {"0": {"text": "primary", "color": "blue"},
                                                               "1": {"text": "standby", "color": "purple"}}}]),
                  6, 5),
        lay.place(stat("Standbys connected",
                       [target(f"dbpulse_pg_replication_connected_standbys{{{SEL}}}", "{{target}}"),
                        target(f"dbpulse_pg_replication_expected_standbys{{{SEL}}}", "expected {{target}}")],
                       "none", "WAL senders of each server that are not base backups, and "
                       "postgres.expected_standbys where set: fewer on a primary fires PostgresStandbysMissing; "
                       "one gone that was there this hour, PostgresStandbyGone."), 6, 5),
        lay.place(stat("Replay paused (standbys)", [target(f"dbpulse_pg_replay_paused{{{SEL}}}", "{{target}}")],
                       "none", "", [(None, "green"), (1, "red")]), 6, 5),
        lay.place(stat("WAL receiver streaming (standbys)",
                       [target(f"dbpulse_pg_wal_receiver_streaming{{{SEL}}}", "{{target}}")], "none", "",
                       UP_THRESHOLDS, UP_MAPPING), 6, 5),
        lay.place(timeseries("Replication lag (bytes, from the primary)",
                             [target(f"dbpulse_pg_replication_lag_bytes{{{SEL}}}", "{{target}} {{standby}} {{stage}}")],
                             "bytes", "WAL between the primary's position and what each standby sent, wrote, "
                             "flushed and replayed. PostgresReplicationLag fires past 64 MiB of replay lag."), 12, 8),
        lay.place(timeseries("Replication lag (seconds)",
                             [target(f"dbpulse_pg_replication_lag_seconds{{{SEL}}}",
                                     "{{target}} {{standby}} {{stage}}"),
                              target(f"dbpulse_pg_replay_lag_seconds{{{SEL}}}", "standby {{target}} replay")],
                             "s", "From the primary (per stage) and as the standby sees it."), 12, 8),
        lay.place(timeseries("Replication slots: WAL retained",
                             [target(f"dbpulse_pg_replication_slot_retained_bytes{{{SEL}}}",
                                     "{{target}} {{slot}} ({{slot_type}})"),
                              target(f"dbpulse_pg_replication_slot_safe_wal_size_bytes{{{SEL}}}",
                                     "safe size {{target}} {{slot}}")],
                             "bytes", "An inactive slot retains WAL until the disk is full."), 12, 8),
        lay.place(table("Replication slots",
                        [target(f"dbpulse_pg_replication_slot_active{{{SEL}}}", instant=True),
                         target(f"dbpulse_pg_replication_slot_wal_status{{{SEL}}}", instant=True)],
                        "none", "active: 1 if a consumer is connected; wal_status lost means its consumer "
                        "can never resume."), 12, 8),
        lay.place(timeseries("Recovery conflicts (standbys)",
                             [target(f"sum by (target, reason) (increase(dbpulse_pg_database_conflicts_total{{{SEL}}}"
                                     f"[{RI}]))", "{{target}} {{reason}}")], "short",
                             "Queries a standby cancelled because replay needed what they used."), 12, 8),
        lay.place(timeseries("WAL generated",
                             [target(f"rate(dbpulse_pg_wal_bytes_total{{{SEL}}}[{RI}])", "{{target}}")], "Bps",
                             "WAL written per second (replayed, on a standby)."), 12, 8),
        lay.row("Vacuum and wraparound"),
        lay.place(timeseries("Transaction ID wraparound",
                             [target(f"dbpulse_pg_database_wraparound_ratio{{{SEL}}}",
                                     "{{target}} {{datname}} {{kind}}")],
                             "percentunit", "Age of the oldest unfrozen ID over 2^31. Alerts at 50% and 75%.",
                             max_=1), 12, 8),
        lay.place(timeseries("Age against autovacuum_freeze_max_age",
                             [target(f"dbpulse_pg_database_frozen_age{{{SEL}}} / on (job, instance, target, kind) "
                                     f"group_left () dbpulse_pg_freeze_max_age{{{SEL}}}",
                                     "{{target}} {{datname}} {{kind}}")],
                             "percentunit", "Past 100% autovacuum must freeze; past 120% for 30 minutes "
                             "PostgresAutovacuumFreezeOverdue fires."), 12, 8),
        lay.place(table("Oldest tables (frozen XID age)",
                        [target(top.format(f'dbpulse_pg_table_frozen_age{{{SEL}, kind="xid"}}'), instant=True)],
                        "short", "Read every postgres.maintenance_interval."), 8, 8),
        lay.place(timeseries("Autovacuum workers",
                             [target(f"dbpulse_pg_autovacuum_workers{{{SEL}}}", "running {{target}}"),
                              target(f"dbpulse_pg_autovacuum_max_workers{{{SEL}}}", "max {{target}}")],
                             "short", "All busy for long: tables wait."), 8, 8),
        lay.place(timeseries("Tables past autovacuum's threshold",
                             [target(f"dbpulse_pg_tables_autovacuum_due{{{SEL}}}",
                                     "{{target}} {{datname}} {{operation}}"),
                              target(f"dbpulse_pg_tables_autovacuum_disabled{{{SEL}}}",
                                     "autovacuum off {{target}} {{datname}}")],
                             "short", "Every table of the database, each by its own thresholds."), 8, 8),
        lay.place(timeseries("Dead rows over the autovacuum threshold (top tables)",
                             [target(top.format(f'dbpulse_pg_table_dead_rows{{{SEL}, table!="__other__"}} / '
                                                f"dbpulse_pg_table_autovacuum_threshold_rows{{{SEL}}}"),
                                     "{{table}}")],
                             "percentunit", "Above 100% autovacuum vacuums it at its next visit (every "
                             "autovacuum_naptime); a hot small table stays above while page pruning keeps it "
                             "bounded. PostgresAutovacuumNotKeepingUp fires when a table stays above with no "
                             "VACUUM in 5 naptimes, or grows across VACUUMs, for an hour."), 12, 8),
        lay.place(timeseries("Running VACUUMs",
                             [target(f"dbpulse_pg_vacuum_progress_ratio{{{SEL}}}",
                                     "{{target}} {{datname}} {{relation}} ({{mode}})")],
                             "percentunit", "Heap scanned so far.", max_=1), 12, 8),
        lay.place(timeseries("Autovacuums and autoanalyzes",
                             [target(f'sum by (target) (increase(dbpulse_pg_table_vacuums_total{{{SEL}, mode="auto"}}'
                                     f"[{RI}]))", "autovacuum {{target}}"),
                              target(f'sum by (target) (increase(dbpulse_pg_table_analyzes_total{{{SEL}, mode="auto"}}'
                                     f"[{RI}]))", "autoanalyze {{target}}")], "short", ""), 12, 8),
        lay.row("Locks and long queries"),
        lay.place(timeseries("Sessions held up by blocking chains",
                             [target(f"dbpulse_pg_lock_blocked_sessions{{{SEL}}}",
                                     "{{target}} {{application_name}} ({{state}})"),
                              target(f"dbpulse_pg_lock_blockers{{{SEL}}}",
                                     "roots {{target}} {{application_name}} ({{state}})")],
                             "short", "By the root blocker's application and state; the UI lists each root."), 12, 8),
        lay.place(timeseries("Lock waits",
                             [target(f"dbpulse_pg_lock_waits{{{SEL}}}", "{{target}} {{locktype}} {{mode}}"),
                              target(f"dbpulse_pg_lock_wait_longest_seconds{{{SEL}}}", "longest (s) {{target}}")],
                             "short", "Waiting lock requests by type and mode, and the longest wait in seconds."),
                  12, 8),
        lay.place(timeseries("Longest active statement by application",
                             [target(f"dbpulse_pg_active_query_longest_seconds{{{SEL}}}",
                                     "{{target}} {{application_name}}"),
                              target(f"dbpulse_pg_lock_blocker_transaction_age_seconds{{{SEL}}}",
                                     "blocker's transaction {{target}} {{application_name}}")], "s", ""), 24, 8),
        lay.row("WAL, checkpoints, archiving"),
        lay.place(timeseries("Checkpoints",
                             [target(f"increase(dbpulse_pg_checkpoints_total{{{SEL}}}[1h])", "{{target}} {{kind}}")],
                             "short", "Per hour. Requested more often than timed: raise max_wal_size."), 8, 8),
        lay.place(timeseries("Checkpoint write and sync time",
                             [target(f"rate(dbpulse_pg_checkpoint_seconds_total{{{SEL}}}[{RI}])",
                                     "{{target}} {{phase}}")], "percentunit",
                             "Seconds per second spent writing and syncing."), 8, 8),
        lay.place(timeseries("Buffers written, by writer",
                             [target(f"rate(dbpulse_pg_buffers_written_total{{{SEL}}}[{RI}])",
                                     "{{target}} {{writer}}"),
                              target(f"rate(dbpulse_pg_bgwriter_maxwritten_clean_total{{{SEL}}}[{RI}])",
                                     "bgwriter stopped at maxpages {{target}}")],
                             "ops", "Backends writing their own buffers: shared_buffers or the bgwriter too small.",
                             stack=True), 8, 8),
        lay.place(timeseries("WAL records and full-page images",
                             [target(f"rate(dbpulse_pg_wal_records_total{{{SEL}}}[{RI}])", "records {{target}}"),
                              target(f"rate(dbpulse_pg_wal_full_page_images_total{{{SEL}}}[{RI}])", "FPI {{target}}"),
                              target(f"rate(dbpulse_pg_wal_buffers_full_total{{{SEL}}}[{RI}])",
                                     "wal_buffers full {{target}}")], "ops", "PostgreSQL 14+."), 12, 8),
        lay.place(timeseries("Archiver",
                             [target(f"increase(dbpulse_pg_archiver_failed_total{{{SEL}}}[{RI}])", "failed {{target}}"),
                              target(f"increase(dbpulse_pg_archiver_archived_total{{{SEL}}}[{RI}])",
                                     "archived {{target}}"),
                              target(f"dbpulse_pg_archiver_pending_segments{{{SEL}}}", "pending {{target}}"),
                              target(f"time() - dbpulse_pg_archiver_last_archived_timestamp_seconds{{{SEL}}}",
                                     "age of last archived (s) {{target}}")], "short",
                             "Only with archive_mode on."), 12, 8),
        lay.row("I/O by backend type (pg_stat_io, 16+)"),
        lay.place(timeseries("Read and written, by backend type",
                             [target(f"sum by (target, backend_type, operation) "
                                     f"(rate(dbpulse_pg_io_bytes_total{{{SEL}}}[{RI}]))",
                                     "{{target}} {{backend_type}} {{operation}}")], "Bps",
                             "In bytes: 18 counts I/O operations of several blocks, so counts would not compare."),
                  12, 8),
        lay.place(timeseries("I/O time and buffer hits",
                             [target(f"sum by (target, backend_type, operation) "
                                     f"(rate(dbpulse_pg_io_seconds_total{{{SEL}}}[{RI}]))",
                                     "{{target}} {{backend_type}} {{operation}} (s/s)"),
                              target(f"sum by (target, backend_type) (rate(dbpulse_pg_io_evictions_total{{{SEL}}}"
                                     f"[{RI}]))", "evictions/s {{target}} {{backend_type}}")], "short",
                             "Times need track_io_timing."), 12, 8),
        lay.row("Statements in depth (pg_stat_statements, top-K)"),
        lay.place(timeseries("Planning time",
                             [target(top.format(f"rate(dbpulse_pg_statement_plan_seconds_total{{{SEL}}}[{RI}])"),
                                     "{{queryid}}")], "s", "Only with pg_stat_statements.track_planning on."), 8, 8),
        lay.place(timeseries("Temporary blocks written",
                             [target(top.format(
                                 f"rate(dbpulse_pg_statement_temp_blocks_written_total{{{SEL}}}[{RI}])"),
                                 "{{queryid}}"),
                              target(top.format(
                                  f"rate(dbpulse_pg_statement_temp_blocks_read_total{{{SEL}}}[{RI}])"),
                                  "read {{queryid}}")], "ops", "Sorts and hashes past work_mem."), 8, 8),
        lay.place(timeseries("WAL by statement",
                             [target(top.format(f"rate(dbpulse_pg_statement_wal_bytes_total{{{SEL}}}[{RI}])"),
                                     "{{queryid}}")], "Bps", ""), 8, 8),
        lay.row("Sequences and bloat (every postgres.maintenance_interval)"),
        lay.place(table("Sequences by used range",
                        [target(top.format(f"dbpulse_pg_sequence_used_ratio{{{SEL}}}"), instant=True)],
                        "percentunit", "Counting the columns each feeds. Alerts past 75%."), 8, 8),
        lay.place(table("Most bloated tables",
                        [target(top.format(f"dbpulse_pg_table_bloat_bytes{{{SEL}}}"), instant=True)], "bytes",
                        "Estimated from pg_stats; tables of 1 MiB or more."), 8, 8),
        lay.place(table("Most bloated indexes",
                        [target(top.format(f"dbpulse_pg_index_bloat_bytes{{{SEL}}}"), instant=True)], "bytes",
                        "Btree only; a lower bound for indexes with few distinct keys."), 8, 8),
        lay.place(timeseries("Bloat ratio (top tables and indexes)",
                             [target(top.format(f"dbpulse_pg_table_bloat_ratio{{{SEL}}}"), "{{table}}"),
                              target(top.format(f"dbpulse_pg_index_bloat_ratio{{{SEL}}}"), "{{index}}")],
                             "percentunit", "", max_=1), 24, 8),
    ]
    return dashboard("dbpulse-postgres-health", "dbpulse / PostgreSQL health",
                     "Replication, vacuum and wraparound, locks, WAL and checkpoints, archiving, I/O, statement "
                     "depth, sequences and bloat.", "dbpulse_pg_up", p)


# --- Redis -----------------------------------------------------------------------
@board
def redis() -> dict[str, Any]:
    lay = Layout()
    p = [
        lay.row("Cache"),
        lay.place(stat("Up", [target(f"dbpulse_redis_up{{{SEL}}}", "{{target}}")], "none", "",
                       UP_THRESHOLDS, UP_MAPPING), 6, 5),
        lay.place(stat("Hit ratio (5m)", [target(f"dbpulse:redis_cache_hit:ratio_rate5m{{{SEL}}}", "{{target}}")],
                       "percentunit", "The app expects at least 85%.", ratio_thresholds(0.85, 0.95)), 6, 5),
        lay.place(stat("Memory used of maxmemory",
                       [target(f"dbpulse:redis_memory:usage_ratio{{{SEL}}}", "{{target}}")], "percentunit",
                       "Absent when maxmemory is 0 (no limit).", usage_thresholds(0.8, 0.9)), 6, 5),
        lay.place(stat("PING", [target(f"dbpulse_redis_ping_seconds{{{SEL}}}", "{{target}}")], "s", "",
                       usage_thresholds(0.01, 0.1)), 6, 5),
        lay.place(timeseries("Hit ratio",
                             [target(f"dbpulse:redis_cache_hit:ratio_rate5m{{{SEL}}}", "5m {{target}}"),
                              target(f"dbpulse_redis_cache_hit_ratio{{{SEL}}}", "last poll {{target}}")],
                             "percentunit", "dbpulse's own sampling lookups are excluded.", max_=1), 12, 8),
        lay.place(timeseries("Lookups",
                             [target(f"rate(dbpulse_redis_keyspace_hits_total{{{SEL}}}[{RI}])", "hits {{target}}"),
                              target(f"rate(dbpulse_redis_keyspace_misses_total{{{SEL}}}[{RI}])",
                                     "misses {{target}}")], "ops", "", stack=True), 12, 8),
        lay.row("Memory and keys"),
        lay.place(timeseries("Memory",
                             [target(f"dbpulse_redis_memory_used_bytes{{{SEL}}}", "used {{target}}"),
                              target(f"dbpulse_redis_memory_max_bytes{{{SEL}}} > 0", "maxmemory {{target}}")],
                             "bytes", ""), 12, 8),
        lay.place(timeseries("Evictions and expirations",
                             [target(f"rate(dbpulse_redis_evicted_keys_total{{{SEL}}}[{RI}])", "evicted {{target}}"),
                              target(f"rate(dbpulse_redis_expired_keys_total{{{SEL}}}[{RI}])",
                                     "expired {{target}}")], "ops", "Evictions mean maxmemory is too small."),
                  12, 8),
        lay.place(timeseries("Keys by database",
                             [target(f"dbpulse_redis_db_keys{{{SEL}}}", "keys {{target}} db{{db}}"),
                              target(f"dbpulse_redis_db_keys_expiring{{{SEL}}}", "with TTL {{target}} db{{db}}")],
                             "short", ""), 12, 8),
        lay.place(timeseries("Clients",
                             [target(f"dbpulse_redis_connected_clients{{{SEL}}}", "connected {{target}}"),
                              target(f"rate(dbpulse_redis_rejected_connections_total{{{SEL}}}[{RI}])",
                                     "rejected/s {{target}}")], "short", ""), 12, 8),
        lay.row("TTL discipline by prefix"),
        lay.place(timeseries("Keys without TTL by prefix",
                             [target(f"dbpulse_redis_prefix_without_ttl_ratio{{{SEL}}}", "{{target}} {{prefix}}")],
                             "percentunit", "Share of sampled keys of the prefix without TTL.", max_=1), 12, 8),
        lay.place(timeseries("Keys by prefix",
                             [target(f"dbpulse_redis_prefix_keys{{{SEL}}}", "{{target}} {{prefix}}")],
                             "short", "Estimated from a bounded sample.", stack=True), 12, 8),
        lay.place(timeseries("Memory by prefix",
                             [target(f"dbpulse_redis_prefix_memory_bytes{{{SEL}}}", "{{target}} {{prefix}}")],
                             "bytes", "Mean MEMORY USAGE of the sampled keys x the estimated keys of the prefix.",
                             stack=True), 12, 8),
        lay.place(timeseries("Memory growth of prefixes mostly without TTL",
                             [target(f"deriv(dbpulse_redis_prefix_memory_bytes{{{SEL}}}[1h]) * 3600 and on(job, "
                                     f"instance, target, prefix) dbpulse_redis_prefix_without_ttl_ratio{{{SEL}}} > 0.5",
                                     "{{target}} {{prefix}}")],
                             "bytes", "Bytes per hour (1-hour trend) of the prefixes whose sampled keys mostly have no "
                             "TTL: the RedisPrefixWithoutTTLGrowing alert."), 12, 8),
        lay.row("Latency and commands"),
        lay.place(timeseries("Redis busy time by command",
                             [target(f"rate(dbpulse_redis_command_seconds_total{{{SEL}}}[{RI}])",
                                     "{{target}} {{command}}")],
                             "percentunit", "Share of Redis's single thread spent in each command (commandstats); "
                             "dbpulse's own commands included.", stack=True), 12, 8),
        lay.place(timeseries("Mean latency by command",
                             [target(f"rate(dbpulse_redis_command_seconds_total{{{SEL}}}[{RI}]) / "
                                     f"rate(dbpulse_redis_command_calls_total{{{SEL}}}[{RI}])",
                                     "{{target}} {{command}}")],
                             "s", "Over the interval, from the commandstats counters."), 12, 8),
        lay.place(timeseries("p99 latency by command",
                             [target(f'dbpulse_redis_command_latency_seconds{{{SEL}, quantile="0.99"}}',
                                     "{{target}} {{command}}")],
                             "s", "INFO latencystats (Redis 7.0+): since the statistics were last reset, not over "
                             "the interval."), 12, 8),
        lay.place(timeseries("Latency spikes",
                             [target(f"dbpulse_redis_latency_event_seconds{{{SEL}}}", "{{target}} {{event}}")],
                             "s", "LATENCY LATEST: the latest spike of each event (needs latency-monitor-threshold)."),
                  12, 8),
        lay.place(timeseries("Slow commands",
                             [target(f"rate(dbpulse_redis_slowlog_entries_total{{{SEL}}}[{RI}]) * 60", "{{target}}")],
                             "short", "Slowlog entries per minute; the commands are in dbpulse's UI (names only)."),
                  8, 8),
        lay.place(timeseries("Rejected and failed calls",
                             [target(f"sum by (target, command) (rate(dbpulse_redis_command_rejected_calls_total"
                                     f"{{{SEL}}}[{RI}]))", "rejected {{target}} {{command}}"),
                              target(f"sum by (target, command) (rate(dbpulse_redis_command_failed_calls_total"
                                     f"{{{SEL}}}[{RI}]))", "failed {{target}} {{command}}")],
                             "ops", "Redis 6.2+: refused before running (arguments, ACL, OOM, MISCONF) or failed "
                             "while running (WRONGTYPE)."), 8, 8),
        lay.place(timeseries("Error replies",
                             [target(f"rate(dbpulse_redis_errors_total{{{SEL}}}[{RI}])", "{{target}} {{error}}")],
                             "ops", "INFO errorstats (Redis 6.2+), by the error's first word."), 8, 8),
        lay.row("Replication and persistence"),
        lay.place(stat("Replica link", [target(f"dbpulse_redis_master_link_up{{{SEL}}}", "{{target}}")], "none",
                       "On replicas: the link to the primary.", UP_THRESHOLDS, UP_MAPPING), 6, 5),
        lay.place(stat("Connected replicas", [target(f"dbpulse_redis_connected_replicas{{{SEL}}}", "{{target}}")],
                       "none", "On primaries."), 6, 5),
        lay.place(stat("Last save", [target(f"dbpulse_redis_rdb_last_save_ok{{{SEL}}}", "RDB {{target}}"),
                                     target(f"dbpulse_redis_aof_last_write_ok{{{SEL}}} and on(job, instance, target) "
                                            f"dbpulse_redis_aof_enabled{{{SEL}}} == 1", "AOF {{target}}")],
                       "none", "The last RDB save and, where AOF is on, the last AOF write.", UP_THRESHOLDS,
                       OK_MAPPING),
                  6, 5),
        lay.place(stat("Writes", [target(f"dbpulse_redis_writes_refused{{{SEL}}}", "{{target}}")], "none",
                       "Refused (MISCONF) when persistence fails.", [(None, "green"), (1, "red")], REFUSED_MAPPING),
                  6, 5),
        lay.place(timeseries("Replica lag",
                             [target(f"dbpulse_redis_replica_lag_bytes{{{SEL}}}", "{{target}} {{replica}}"),
                              target(f"dbpulse_redis_repl_backlog_bytes{{{SEL}}} and on(job, instance, target) "
                                     f"dbpulse_redis_connected_replicas{{{SEL}}} > 0", "backlog {{target}}")],
                             "bytes", "Replication stream not acknowledged by each replica (up to a second high); "
                             "beyond the backlog a reconnect needs a full resync."), 12, 8),
        lay.place(timeseries("Replication silence",
                             [target(f"dbpulse_redis_replica_lag_seconds{{{SEL}}}", "last ack {{target}} {{replica}}"),
                              target(f"dbpulse_redis_master_last_io_seconds{{{SEL}}}", "last I/O {{target}}")],
                             "s", "Seconds since the primary heard from each replica (acks every second), and since "
                             "a replica heard from its primary (about 10 s on an idle link)."), 12, 8),
        lay.place(timeseries("Since the last successful RDB save",
                             [target(f"time() - dbpulse_redis_rdb_last_save_timestamp_seconds{{{SEL}}}", "{{target}}")],
                             "s", "A failed save does not reset it."), 8, 8),
        lay.place(timeseries("Changes since the last save",
                             [target(f"dbpulse_redis_rdb_changes_since_last_save{{{SEL}}}", "{{target}}")],
                             "short", "Writes a restart would lose without AOF."), 8, 8),
        lay.place(timeseries("Latest fork",
                             [target(f"dbpulse_redis_latest_fork_seconds{{{SEL}}}", "{{target}}")],
                             "s", "Redis is blocked while it forks for a save or a rewrite; grows with memory."),
                  8, 8),
        lay.row("Queues"),
        lay.place(timeseries("Queue length",
                             [target(f"dbpulse_redis_queue_length{{{SEL}}}", "{{target}} {{key}}")], "short",
                             "Length of the configured queue keys (lists, streams, sets, zsets, hashes)."), 12, 8),
        lay.place(timeseries("Queue growth",
                             [target(f"deriv(dbpulse_redis_queue_length{{{SEL}}}[15m]) * 60",
                                     "{{target}} {{key}}")], "short", "Messages per minute (positive: backlog grows)."),
                  12, 8),
    ]
    return dashboard("dbpulse-redis", "dbpulse / Redis cache",
                     "Hit ratio, memory, evictions, TTL discipline and memory by prefix, queues, latency by "
                     "command, slowlog, errors, replication and persistence.", "dbpulse_redis_up", p)


# --- application -------------------------------------------------------------------
@board
def application() -> dict[str, Any]:
    lay = Layout()
    p = [
        lay.row("Health endpoints"),
        lay.place(stat("Endpoints", [target(f"dbpulse_health_up{{{SEL}}}", "{{target}} {{endpoint}}")], "none",
                       "2xx within the timeout.", UP_THRESHOLDS, UP_MAPPING), 12, 5),
        lay.place(stat("Components", [target(f"dbpulse_health_component_up{{{SEL}}}", "{{target}} {{component}}")],
                       "none", "components.<name>.status in the readiness JSON.", UP_THRESHOLDS, UP_MAPPING),
                  12, 5),
        lay.place(timeseries("Latency", [target(f"dbpulse_health_duration_seconds{{{SEL}}}",
                                                "{{target}} {{endpoint}}")],
                             "s", "1 s is the default Kubernetes probe timeout."), 12, 8),
        lay.place(timeseries("Status code", [target(f"dbpulse_health_status_code{{{SEL}}}",
                                                    "{{target}} {{endpoint}}")], "none", ""), 12, 8),
        lay.row("Connection pool"),
        lay.place(timeseries("Pool usage",
                             [target(f"dbpulse_app_pool_usage_ratio{{{SEL}}}", "app {{target}} {{pool}}")],
                             "percentunit", "From the app's own pool block (PostgreSQL's side of it: "
                             "Application pool usage on the PostgreSQL dashboard).", max_=1), 12, 8),
        lay.place(timeseries("Pool connections",
                             [target(f"dbpulse_app_pool_checked_out{{{SEL}}}", "checked out {{target}} {{pool}}"),
                              target(f"dbpulse_app_pool_overflow{{{SEL}}}", "overflow {{target}} {{pool}}"),
                              target(f"dbpulse_app_pool_size{{{SEL}}}", "pool_size {{target}} {{pool}}"),
                              target(f"dbpulse_app_pool_capacity{{{SEL}}}", "capacity {{target}} {{pool}}")],
                             "short", ""), 12, 8),
    ]
    return dashboard("dbpulse-app", "dbpulse / Application",
                     "The application's health endpoints, latency, components and pool use.",
                     "dbpulse_source_up", p)


# --- PgBouncer --------------------------------------------------------------------
@board
def pgbouncer() -> dict[str, Any]:
    lay = Layout()
    pool = "{{target}} {{database}}/{{user}}"
    p = [
        lay.row("Where clients wait"),
        lay.place(stat("PgBouncer", [target(f"dbpulse_pgbouncer_up{{{SEL}}}", "{{target}}")], "none",
                       "The admin console answered the last poll.", UP_THRESHOLDS, UP_MAPPING), 6, 5),
        lay.place(stat("Clients waiting", [target(f'sum by (target) (dbpulse_pgbouncer_pool_clients{{{SEL}, '
                                                  f'state="waiting"}})', "{{target}}")], "short",
                       "Clients that sent a query and wait for a server connection (cl_waiting).",
                       usage_thresholds(1, 10)), 6, 5),
        lay.place(stat("Longest wait", [target(f"max by (target) (dbpulse_pgbouncer_pool_maxwait_seconds{{{SEL}}})",
                                               "{{target}}")], "s",
                       "The oldest waiting client's wait (maxwait); PgBouncerMaxWaitHigh at 5 s.",
                       usage_thresholds(1, 5)), 6, 5),
        lay.place(stat("Client connections", [target(f"dbpulse_pgbouncer_client_connections{{{SEL}}} "
                                                     f"/ dbpulse_pgbouncer_max_client_conn{{{SEL}}}",
                                                     "{{target}}")], "percentunit",
                       "Clients connected (dbpulse's own left out) against max_client_conn.",
                       usage_thresholds(0.8, 0.9)), 6, 5),
        lay.place(timeseries("Waiting clients by pool",
                             [target(f'dbpulse_pgbouncer_pool_clients{{{SEL}, state="waiting"}}', pool)],
                             "short", "cl_waiting of each pool."), 12, 8),
        lay.place(timeseries("Longest wait by pool",
                             [target(f"dbpulse_pgbouncer_pool_maxwait_seconds{{{SEL}}}", pool)], "s",
                             "maxwait of each pool."), 12, 8),
        lay.row("The pool chain: application pool -> PgBouncer -> PostgreSQL"),
        lay.place(timeseries("Pool chain: each link's use of its limit",
                             [target(f"dbpulse_pgbouncer_chain_saturation_ratio{{{SEL}}}",
                                     "{{target}} {{database}}/{{user}} {{link}}")],
                             "percentunit", "One line per link of each pool's chain: app_pool (checked out / "
                             "pool_size + max_overflow), pgbouncer_clients (/ max_client_conn), pgbouncer_pool "
                             "(active servers / pool_size), server (PostgreSQL connections / max_connections). The "
                             "first link at 100% is where requests queue (PgBouncerChainAppPoolSaturated)."), 24, 9),
        lay.row("Pools against their limits"),
        lay.place(timeseries("Active servers / pool_size",
                             [target(f'sum without (state) (dbpulse_pgbouncer_pool_servers{{{SEL}, state="active"}}) '
                                     f"/ ignoring (user) group_left () dbpulse_pgbouncer_database_pool_size{{{SEL}}}",
                                     pool)],
                             "percentunit", "At 100% with clients waiting, the pool is the limit "
                             "(PgBouncerPoolSaturated); the reserve pool can take it beyond."), 12, 8),
        lay.place(timeseries("Server connections by state",
                             [target(f"sum by (target, database, state) (dbpulse_pgbouncer_pool_servers{{{SEL}}})",
                                     "{{target}} {{database}} {{state}}")], "short",
                             "sv_active, sv_idle, sv_used, sv_tested, sv_login.", stack=True), 12, 8),
        lay.place(timeseries("Clients by application",
                             [target(f"sum by (target, application_name) (dbpulse_pgbouncer_clients{{{SEL}}})",
                                     "{{target}} {{application_name}}")], "short",
                             "SHOW CLIENTS counted by application_name (the top ones; the rest as __other__).",
                             stack=True), 12, 8),
        lay.place(table("Where each database leads",
                        [target(f"dbpulse_pgbouncer_database_info{{{SEL}}}", instant=True)], "none",
                        "SHOW DATABASES: the PostgreSQL host, port and database behind each PgBouncer database."),
                  12, 8),
        lay.row("Traffic"),
        lay.place(timeseries("Transactions and queries",
                             [target(f"rate(dbpulse_pgbouncer_transactions_total{{{SEL}}}[{RI}])",
                                     "xact {{target}} {{database}}"),
                              target(f"rate(dbpulse_pgbouncer_queries_total{{{SEL}}}[{RI}])",
                                     "query {{target}} {{database}}")], "ops", ""), 12, 8),
        lay.place(timeseries("Mean query and wait time",
                             [target(f"rate(dbpulse_pgbouncer_query_seconds_total{{{SEL}}}[{RI}]) / "
                                     f"rate(dbpulse_pgbouncer_queries_total{{{SEL}}}[{RI}])",
                                     "query {{target}} {{database}}"),
                              target(f"rate(dbpulse_pgbouncer_client_wait_seconds_total{{{SEL}}}[{RI}]) / "
                                     f"rate(dbpulse_pgbouncer_queries_total{{{SEL}}}[{RI}])",
                                     "wait {{target}} {{database}}")], "s",
                             "Per query: time on the server, and time clients waited for one."), 12, 8),
    ]
    return dashboard("dbpulse-pgbouncer", "dbpulse / PgBouncer",
                     "PgBouncer pools: where clients wait, each pool against its limits, and the PostgreSQL "
                     "behind each database.", "dbpulse_pgbouncer_up", p)


# --- a source without a builder: its declared charts --------------------------------
UNITS = {"ratio": "percentunit", "bytes": "bytes", "seconds": "s", "count": "short", "bytes/s": "Bps"}


def chart_panel(chart: ChartSpec) -> dict[str, Any]:
    """One timeseries panel of a declared chart: the same series, rates and sums the main page draws."""
    matchers = SEL + "".join(f', {k}="{v}"' for k, v in chart.match.items())
    by = ", ".join(n for n in ("target", chart.each, chart.label) if n)
    legend = " ".join(f"{{{{{n}}}}}" for n in ("target", chart.each, chart.label) if n)
    legend += f" {chart.line}" if chart.line and not chart.label else ""
    exprs = []
    for metric in (chart.metric,) if isinstance(chart.metric, str) else chart.metric:
        expr = f"{metric}{{{matchers}}}"
        expr = f"rate({expr}[{RI}])" if chart.rate else expr
        exprs.append(f"sum by ({by}) ({expr})" if chart.combine else expr)
    # combined: the metrics add up into one line per label value, as on the main page
    targets = [target(" + ".join(exprs), legend)] if chart.combine else [target(e, legend) for e in exprs]
    if isinstance(chart.ceiling, str):  # the hard limit it is drawn against
        ceiling = " ".join(f"{{{{{n}}}}}" for n in ("target", chart.each) if n)
        targets.append(target(f"{chart.ceiling}{{{SEL}}}", f"{ceiling} {chart.ceiling_label or 'limit'}"))
    unit = UNITS.get(chart.unit, "ops" if chart.unit.endswith("/s") else "short")
    return timeseries(chart.title.replace("{value}", chart.each), targets, unit, "As on dbpulse's main page.")


def charted(spec: SourceSpec[Any, Any]) -> dict[str, Any]:
    """The dashboard of a source that has no builder here: its spec's charts, in order."""
    lay = Layout()
    panels = [lay.row(spec.title)] + [lay.place(chart_panel(c), 12, 8) for c in spec.charts]
    first = spec.charts[0].metrics[0] if spec.charts else "dbpulse_source_up"
    return dashboard(f"dbpulse-{spec.name}", f"dbpulse / {spec.title}",
                     f"The charts of the {spec.title} section of dbpulse's main page, drawn from its spec.",
                     first, panels)


# --- the registry ------------------------------------------------------------------
def builders_of(spec: SourceSpec[Any, Any]) -> list[Builder]:
    """A source's dashboard builders: those its spec names, else the one named like it, else its charts'."""
    names = spec.dashboards if spec.dashboards is not None else (
        (spec.name,) if spec.name in BUILDERS else ())
    missing = [n for n in names if n not in BUILDERS]
    if missing:
        raise ValueError(f"{spec.name}: no dashboard builder {', '.join(missing)} in dashboards/generate.py")
    return [BUILDERS[n] for n in names] if names else [lambda: charted(spec)]


def boards() -> dict[str, list[Builder]]:
    """Every dashboard's builder by owner: "" for the service's own (``SHARED``), else the source's name. A
    builder nobody claims is an error: it would be generated for no source."""
    owned = {spec.name: builders_of(spec) for spec in sources()}
    claimed = {b for bs in owned.values() for b in bs} | {BUILDERS[n] for n in SHARED}
    stray = sorted(name for name, b in BUILDERS.items() if b not in claimed)
    if stray:
        raise ValueError(f"dashboard builder(s) {', '.join(stray)} belong to no source (SourceSpec.dashboards) "
                         "and are not SHARED")
    return {"": [BUILDERS[n] for n in SHARED], **owned}


def build_all() -> dict[str, dict[str, Any]]:
    return {f"{d['uid']}.json": d for bs in boards().values() for d in (build() for build in bs)}


def render(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed JSON is out of date")
    args = parser.parse_args(argv)
    stale = []
    OUT.mkdir(exist_ok=True)
    for name, model in build_all().items():
        path = OUT / name
        text = render(model)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print("out of date (run python dashboards/generate.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
