"""Metrics observer: fixed names, bounded labels, policy info swap on reload, zeros pre-initialised; the HTTP endpoint;
the monitoring files checked with promtool."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from dataclasses import replace

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monre_milter.engine.verdict import Finding, Verdict
from monre_milter.lab import free_port
from monre_milter.metrics import Metrics, start_metrics
from monre_milter.observe import EventContext
from monre_milter.pack import load_pack

from conftest import REPO

PACK = load_pack([str(REPO / "policies" / "monre.yaml")])
MON = REPO / "monitoring"


def samples(m: Metrics) -> dict:
    text = generate_latest(m.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples if not s.name.endswith("_created")}


def val(m, name, **labels):
    return samples(m).get((name, tuple(sorted(labels.items()))))


def ctx(unit="vea", direction="outbound", rcpt="x@gmail.com"):
    return EventContext.build("4AB12", direction, unit, f"nva_{unit}@monre.gov.vn", [rcpt], "10.0.0.1")


def finding(rule="freemail", article="9.1", result="recipient", action="reject", reason="to free-mail"):
    return Finding(rule, article, result, reason, action)


@pytest.fixture
def m():
    m = Metrics()
    m.on_reload(True, PACK)
    return m


def test_rule_hits_incidents_and_verdicts_are_counted(m):
    m.on_findings([finding(), finding(rule="attachment-size", article="4.4", result="over-limit")], ctx())
    m.on_message(Verdict(action="reject", direction="outbound", unit="vea"), ctx(), 20_000_000, 0.042)
    assert val(m, "monre_milter_rule_hits_total", rule="freemail", article="9.1", action="reject",
               direction="outbound", unit="vea") == 1
    assert val(m, "monre_milter_incidents_total", category="attachment-size", direction="outbound", unit="vea") == 1
    assert val(m, "monre_milter_messages_total", direction="outbound", action="reject") == 1
    assert val(m, "monre_milter_processing_seconds_count") == 1
    assert val(m, "monre_milter_processing_seconds_bucket", le="0.05") == 1
    assert val(m, "monre_milter_processing_seconds_bucket", le="0.025") == 0
    assert val(m, "monre_milter_message_size_bytes_bucket", le="2e+07") == 1


def test_labels_stay_bounded_whatever_the_traffic(m):
    before = len(samples(m))
    for i in range(300):
        c = EventContext(f"Q{i}", f"dir{i}", f"unit{i}@evil.example", f"d{i}.example", [f"r{i}.example"])
        m.on_findings([finding(rule=f"rule{i}", article=f"{i}", action=f"act{i}", result=f"res{i}")], c)
        m.on_findings([finding(rule="smime", article="9.2", result=f"weird{i}")], c)
        m.on_findings([finding(rule="dnsbl", article="10.2", result="listed", reason=f"1.2.3.{i} listed by zone{i}")], c)
        m.on_message(Verdict(action=f"act{i}"), c, i, 0.01)
        m.on_error(f"stage{i}", c)
    after = samples(m)
    assert len(after) - before <= 12  # a handful of "other" series, not 300 of anything
    text = generate_latest(m.registry).decode()
    assert "evil" not in text and "example" not in text and "Q1" not in text
    assert val(m, "monre_milter_rule_hits_total", rule="other", article="other", action="other", direction="other",
               unit="other") == 300
    assert val(m, "monre_milter_errors_total", stage="other") == 300
    assert val(m, "monre_milter_smime_results_total", result="other") == 300
    assert val(m, "monre_milter_dnsbl_lookups_total", zone="other", result="listed") == 300


def test_dnsbl_zone_comes_from_the_pack_and_smime_results_are_counted(m):
    zones = sorted({z.name for u in list(PACK.units) + ["other"] for d in ("inbound", "outbound")
                    for z in (getattr(PACK.rule_config("dnsbl", u, d), "zones", ()) or ())})
    assert zones, "the default pack lists DNSBL zones"
    z = zones[0]
    m.on_findings([finding(rule="dnsbl", article="10.2", result="listed",
                           reason=f"198.51.100.7 listed by {z}: spam source (127.0.0.2)")], ctx(direction="inbound"))
    m.on_findings([finding(rule="smime", article="9.2", result="fail", action="reject", reason="fail: bad")], ctx())
    m.on_findings([finding(rule="smime", article="9.2", result="pass", action="monitor", reason="pass")], ctx())
    assert val(m, "monre_milter_dnsbl_lookups_total", zone=z, result="listed") == 1
    assert val(m, "monre_milter_smime_results_total", result="fail") == 1
    assert val(m, "monre_milter_smime_results_total", result="pass") == 1
    assert val(m, "monre_milter_smime_results_total", result="temperror") == 0  # pre-initialised
    assert val(m, "monre_milter_incidents_total", category="signature", direction="outbound", unit="vea") == 1


def test_policy_info_is_swapped_on_reload_and_failures_counted(m):
    assert val(m, "monre_milter_policy_info", version=str(PACK.version), sha256=PACK.sha256) == 1
    newer = replace(PACK, version="2027.01-1", sha256="ab" * 32)
    m.on_reload(True, newer)
    m.on_reload(False, newer)
    infos = {k: v for k, v in samples(m).items() if k[0] == "monre_milter_policy_info"}
    assert infos == {("monre_milter_policy_info", (("sha256", "ab" * 32), ("version", "2027.01-1"))): 1}
    assert val(m, "monre_milter_policy_reloads_total", result="ok") == 2
    assert val(m, "monre_milter_policy_reloads_total", result="failed") == 1


def test_zeros_for_every_unit_direction_and_stage(m):
    s = samples(m)
    for u in list(PACK.units) + ["other"]:
        for d in ("inbound", "outbound"):
            assert s[("monre_milter_incidents_total", (("category", "freemail"), ("direction", d), ("unit", u)))] == 0
            assert ("monre_milter_rule_hits_total", (("action", "reject"), ("article", "9.1"), ("direction", d),
                                                     ("rule", "freemail"), ("unit", u))) in s
    assert val(m, "monre_milter_errors_total", stage="eom") == 0
    assert len(s) < 2000


def test_http_endpoint_serves_the_dedicated_registry():
    port = free_port()
    m = start_metrics(f"127.0.0.1:{port}")
    m.on_reload(True, PACK)
    m.on_error("eom", None)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert re.search(r'^monre_milter_errors_total\{stage="eom"\} 1\.0$', body, re.M)
    assert "python_gc_objects_collected_total" not in body  # not the process-global registry
    with pytest.raises(SystemExit):
        start_metrics("no-port")


# -- monitoring files ----------------------------------------------------------------------------------------------------
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (package prometheus) missing")


@needs_promtool
def test_alert_rules_pass_promtool_check_and_unit_tests():
    p = subprocess.run(["promtool", "check", "rules", str(MON / "prometheus" / "alerts.yml")], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS: 8 rules found" in p.stdout
    p = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], capture_output=True, text=True,
                       cwd=MON / "prometheus")
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run(["promtool", "check", "config", "prometheus.yml"], capture_output=True, text=True,
                       cwd=MON / "prometheus")
    assert p.returncode == 0, p.stdout + p.stderr


def test_dashboard_queries_only_known_metric_names(m):
    dash = json.loads((MON / "grafana" / "monre-milter.json").read_text())
    known = {fam.name for fam in text_string_to_metric_families(generate_latest(m.registry).decode())}
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    titles = " ".join(p["title"] for p in dash["panels"])
    for word in ("Verdicts per direction", "Rule hits by rule", "Rule hits by unit", "p99", "errors",
                 "policy pack", "S/MIME"):
        assert word.lower() in titles.lower(), word
    for e in exprs:
        for name in re.findall(r"\b(monre_milter_[a-z_]+)", e):
            base = re.sub(r"_(bucket|count|sum|total)$", "", name)
            assert base in known, (name, e)
    assert "id" not in dash and dash["uid"] == "monre-milter"
