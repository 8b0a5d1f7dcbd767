"""Observability end to end: a real Prometheus scrapes a running milter while mail flows through a real Postfix; every
Grafana panel query returns data; the yearly report read through Prometheus agrees with the incident journal."""
from __future__ import annotations

import csv
import json
import math
import re
import shutil
import sqlite3
import subprocess
import time
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import make_message, send
from monre_milter.lab import free_port, wait_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "monitoring" / "grafana" / "monre-milter.json"
OUTSIDE = "198.51.100.20"
# Values a Grafana user would see with "All" selected, a 1 s scrape interval and a short time range.
TEMPLATE = {"$__rate_interval": "1m", "$__range": "2m", "$instance": ".*", "$unit": ".*", "$job": "monre-milter"}


def api(base: str, path: str, **params) -> dict:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]


def read_csv(path: Path) -> dict[str, list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return {r[0]: r for r in list(csv.reader(fh))[1:]}


def substitute(expr: str) -> str:
    for k in sorted(TEMPLATE, key=len, reverse=True):
        expr = expr.replace(k, TEMPLATE[k])
    assert "$" not in expr, expr
    return expr


def _scraped(base: str) -> bool:
    try:
        r = api(base, "/api/v1/query", query='up{job="monre-milter"} == 1')["result"]
    except OSError:  # not ready yet
        return False
    return bool(r)


@pytest.fixture(scope="module")
def observed(lab_factory, tmp_path_factory):
    if shutil.which("prometheus") is None:
        pytest.fail("the prometheus package is needed: run scripts/setup.sh")
    d = tmp_path_factory.mktemp("prom")
    mport, pport = free_port(), free_port()
    journal = d / "journal.db"
    lab = lab_factory("observed", metrics=f"127.0.0.1:{mport}", journal=str(journal))
    (d / "prometheus.yml").write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: monre-milter
    static_configs: [{{targets: ["127.0.0.1:{mport}"]}}]
""")
    log = open(d / "prometheus.log", "wb")
    proc = subprocess.Popen(["prometheus", f"--config.file={d / 'prometheus.yml'}", f"--storage.tsdb.path={d / 'data'}",
                             f"--web.listen-address=127.0.0.1:{pport}", "--storage.tsdb.retention.time=1d"],
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{pport}"
    try:
        wait_port(pport, 20, proc)
        deadline = time.monotonic() + 20  # the first scrape must come before the traffic, so rate() sees it
        while not _scraped(base):
            assert time.monotonic() < deadline, (d / "prometheus.log").read_text()[-2000:]
            time.sleep(0.2)
        yield {"lab": lab, "base": base, "journal": journal, "metrics": f"http://127.0.0.1:{mport}/metrics",
               "log": d / "prometheus.log"}
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture(scope="module")
def traffic(observed):
    """Mail that triggers rules (free-mail recipient and sender, announced size over the limit) and plain mail."""
    lab = observed["lab"]
    results = []
    msg = make_message("nva_vea@monre.gov.vn", ["friend@gmail.com", "ttb@monre.gov.vn"])
    results.append(send(lab, msg, "nva_vea@monre.gov.vn", ["friend@gmail.com", "ttb@monre.gov.vn"],
                        login="nva_vea@monre.gov.vn"))
    msg = make_message("citizen@gmail.com", ["nva@monre.gov.vn"])
    results.append(send(lab, msg, "citizen@gmail.com", ["nva@monre.gov.vn"], client_ip=OUTSIDE))
    results.append(send(lab, b"", "nva_vea@monre.gov.vn", ["x@example.org"], login="nva_vea@monre.gov.vn",
                        size=26_000_000))
    for i in range(3):
        msg = make_message("partner@example.org", ["nva@monre.gov.vn"], f"hello {i}")
        results.append(send(lab, msg, "partner@example.org", ["nva@monre.gov.vn"], client_ip=OUTSIDE))
    assert results[0].rcpt["friend@gmail.com"][0] == 550
    assert results[1].rcpt["nva@monre.gov.vn"][0] == 550
    assert results[2].mail[0] == 552
    assert all(r.data and r.data[0] == 250 for r in results[3:])
    # Prometheus has scraped the figures once the finished messages are all counted.
    finished = 6  # 3 accepted + the outbound message (one recipient left) + 2 refused transactions
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = api(observed["base"], "/api/v1/query", query="sum(monre_milter_messages_total)")["result"]
        if r and float(r[0]["value"][1]) >= finished:
            break
        time.sleep(0.3)
    else:
        pytest.fail(f"Prometheus did not see {finished} messages: {r}\n{observed['log'].read_text()[-2000:]}")
    time.sleep(2.5)  # a few more scrapes so rate() has points after the last change
    return results


def test_every_dashboard_panel_query_returns_data(observed, traffic):
    dash = json.loads(DASHBOARD.read_text())
    checked = []
    for panel in dash["panels"]:
        for t in panel["targets"]:
            expr = substitute(t["expr"])
            result = api(observed["base"], "/api/v1/query", query=expr)["result"]
            assert result, f"panel {panel['title']!r}: no data for {expr}"
            values = [float(s["value"][1]) for s in result]
            assert any(math.isfinite(v) for v in values), f"panel {panel['title']!r}: only NaN for {expr}"
            checked.append((panel["title"], expr, values))
    assert len(checked) >= 15
    by_title = {t: v for t, _, v in checked}
    assert by_title["Milter up"] == [1.0]
    p99 = [v for t, e, v in checked if "0.99" in e and "processing" in e][0][0]
    assert 0 < p99 < 30  # seconds, end of data to verdict


def test_metrics_have_fixed_names_and_bounded_labels(observed, traffic):
    text = urllib.request.urlopen(observed["metrics"], timeout=5).read().decode()
    Path("/tmp/metrics-sample.txt").write_text(text)
    for name in ("monre_milter_messages_total", "monre_milter_rule_hits_total", "monre_milter_processing_seconds_bucket",
                 "monre_milter_message_size_bytes_bucket", "monre_milter_errors_total",
                 "monre_milter_policy_reloads_total", "monre_milter_policy_info", "monre_milter_smime_results_total"):
        assert re.search(rf"^{name}[{{ ]", text, re.M), name
    samples = {(smp.name, tuple(sorted(smp.labels.items()))): smp.value
               for fam in text_string_to_metric_families(text) for smp in fam.samples}

    def value(name, **labels):
        return samples.get((name, tuple(sorted(labels.items()))))

    hit = "monre_milter_rule_hits_total"
    assert value(hit, rule="freemail", article="9.1", action="reject", direction="outbound", unit="vea") == 1
    assert value(hit, rule="freemail", article="9.1", action="reject", direction="inbound", unit="other") == 1
    assert value(hit, rule="attachment-size", article="4.4", action="reject", direction="outbound", unit="vea") == 1
    assert value(hit, rule="freemail", article="9.1", action="reject", direction="inbound", unit="nrsc") == 0  # zeros
    assert value("monre_milter_messages_total", direction="inbound", action="accept") == 3
    assert value("monre_milter_messages_total", direction="inbound", action="reject") == 1
    assert value("monre_milter_incidents_total", category="freemail", direction="outbound", unit="vea") == 1
    assert value("monre_milter_processing_seconds_count") == 4  # the messages that reached end of data
    assert value("monre_milter_errors_total", stage="eom") == 0
    assert not any(n.endswith("_created") for n, _ in samples)
    units = {dict(lbl).get("unit") for _, lbl in samples} - {None}
    assert units <= {"vea", "gdla", "gdgmv", "vasi", "dosm", "dwrm", "dmhcc", "nrsc", "nchmf", "nawapi", "other"}
    assert "gmail.com" not in text and "example.org" not in text and "@" not in text


def test_journal_has_every_hit_and_report_through_prometheus_agrees(observed, traffic, tmp_path):
    db = sqlite3.connect(observed["journal"])
    rows = db.execute("SELECT direction, unit, rule, article, action, sender_domain, rcpt_domains FROM incidents "
                      "ORDER BY id").fetchall()
    assert ("outbound", "vea", "freemail", "9.1", "reject", "monre.gov.vn", "gmail.com") in rows
    assert ("inbound", "other", "freemail", "9.1", "reject", "gmail.com", "monre.gov.vn") in rows
    assert ("outbound", "vea", "attachment-size", "4.4", "reject", "monre.gov.vn", "") in rows
    from monre_milter.cli import main

    year, month = datetime.now().year, datetime.now().month
    out = tmp_path / "r.csv"
    assert main(["report", "--year", str(year), "--prometheus", observed["base"], "--format", "csv",
                 "-o", str(out)]) == 0
    prom = read_csv(out)
    assert main(["report", "--year", str(year), "--journal", str(observed["journal"]), "--format", "csv",
                 "-o", str(tmp_path / "j.csv")]) == 0
    jour = read_csv(tmp_path / "j.csv")
    assert jour["freemail"][-1] == "2" and jour["attachment-size"][-1] == "1"
    for code in ("freemail", "attachment-size", "total"):
        assert prom[code][-1] == jour[code][-1], (code, prom[code], jour[code])
        assert prom[code][2 + month] == jour[code][2 + month]
    md = tmp_path / "r.md"
    assert main(["report", "--year", str(year), "--unit", "vea", "--prometheus", observed["base"], "--format", "md",
                 "-o", str(md)]) == 0
    text = md.read_text()
    assert "không bao quát cả năm" in text and "1d" in text  # retention 1 day does not cover the year
