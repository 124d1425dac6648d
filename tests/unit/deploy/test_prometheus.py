"""deploy/prometheus: the rules pass promtool (syntax and their own unit tests), and every metric the
rules and the Grafana dashboard read is one the code exports (or one the brokers' exporters do)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.deploy.manifests import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "kalends.rules.yaml"
DASHBOARD = PROMETHEUS / "grafana-dashboard.json"
# Exported by others: RabbitMQ's prometheus plugin, CloudNativePG's exporter, the kubelet's cAdvisor.
EXTERNAL_PREFIXES = ("rabbitmq_", "cnpg_", "container_")
METRIC_CALL = re.compile(
    r"""(?:Counter|Gauge|Histogram|Summary|CounterMetricFamily|GaugeMetricFamily)\(\s*["']([a-z_:][a-z0-9_:]*)["']"""
)


@cache
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        script = ROOT / "scripts" / "tools" / "promtool.sh"
        subprocess.run(["bash", str(script)], check=False, capture_output=True, timeout=600)
        found = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
    if found is None:
        pytest.skip("promtool is missing and scripts/tools/promtool.sh could not install Debian's prometheus package")
    return found


def test_promtool_accepts_the_rules() -> None:
    done = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_each_alert_fires_on_the_series_that_should_raise_it_and_not_on_healthy_ones() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", "kalends.rules.test.yaml"],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@cache
def code_metrics() -> frozenset[str]:
    """Every series name the services export: metric names from the source, with their sample suffixes."""
    names: set[str] = set()
    for path in [*(ROOT / "shared").rglob("*.py"), *(ROOT / "services").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        for match in METRIC_CALL.finditer(text):
            kind = match.group(0).split("(")[0]
            name = match.group(1)
            names.add(name)
            if kind in ("Counter", "CounterMetricFamily"):
                names.add(name + "_total")
            if kind == "Histogram":
                names.update(name + suffix for suffix in ("_bucket", "_sum", "_count"))
    return frozenset(names)


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def recorded() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads (strings, label matchers, ranges, grouping labels,
    functions and keywords left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", text):
        if match.group(2) or match.group(1) in KEYWORDS:
            continue
        names.add(match.group(1))
    return names


def unknown(names: set[str]) -> set[str]:
    return {
        name
        for name in names
        if name not in code_metrics() and name not in recorded() and not name.startswith(EXTERNAL_PREFIXES)
    }


def test_the_metric_name_reader_finds_series_and_skips_the_rest() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, route) "
        '(rate(feed_http_request_duration_seconds_bucket{route=~"a.b"}[5m]))) > 0.1 and on() up'
    )
    assert metric_names(expr) == {"feed_http_request_duration_seconds_bucket", "up"}
    assert unknown({"feed_http_requests_total", "webhook_attempts_total", "outbox_backlog", "no_such_metric"}) == {
        "no_such_metric"
    }


def test_every_rule_reads_metrics_the_code_or_the_brokers_export() -> None:
    for rule in rules():
        assert unknown(metric_names(rule["expr"])) == set(), rule.get("record") or rule.get("alert")


def test_the_dashboard_is_grafana_json_whose_every_panel_queries_existing_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    read = set()
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names and unknown(names) == set(), (panel["title"], target["expr"])
            read |= names
    # The five signals are all on the dashboard.
    assert {
        "kalends:outbox_backlog:max",
        "kalends:dlq_messages:sum",
        "kalends:webhook_attempt_failure_ratio:rate5m",
        "kalends:feed_request_duration_seconds:p99_5m",
        "kalends:pg_replication_lag_seconds:max",
    } <= read
