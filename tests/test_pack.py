"""Policy packs: golden error messages (file:line:col, key path, hint), layering, units, check-policy."""
from __future__ import annotations

import subprocess
import sys

import pytest

from monre_milter.engine import Transaction
from monre_milter.facts import Connection
from monre_milter.pack import PackErrors, load_pack

from conftest import REPO

DEFAULT = str(REPO / "policies" / "monre.yaml")


def errors_of(tmp_path, text: str, base: bool = True) -> list[str]:
    site = tmp_path / "site.yaml"
    site.write_text(text)
    with pytest.raises(PackErrors) as exc:
        load_pack(([DEFAULT] if base else []) + [str(site)])
    return [e.replace(str(tmp_path) + "/", "") for e in exc.value.errors]


GOLDEN = [
    ("rules:\n  freemail:\n    acton: tag\n",
     ["site.yaml:3:5: rules.freemail.acton: unknown key (hint: did you mean 'action'?)"]),
    ("rules:\n  attachment-size:\n    limit: 15\n",
     ['site.yaml:3:12: rules.attachment-size.limit: 15 is not of type \'string\' (hint: a size with its unit, '
      'e.g. "15 MB" or "15 MiB")']),
    ("rules:\n  attachment-size:\n    limit: \"15\"\n",
     ['site.yaml:3:12: rules.attachment-size.limit: expected a size like "15 MB", got \'15\' (hint: write the '
      'unit: B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024))']),
    ("rules:\n  freemail:\n    action: block\n",
     ["site.yaml:3:13: rules.freemail.action: 'block' is not one of reject, tempfail, quarantine, discard, tag, "
      "monitor"]),
    ("rules:\n  fremail:\n    action: tag\n",
     ["site.yaml:2:3: rules.fremail: unknown key (hint: did you mean 'freemail'?)"]),
    ("rules:\n  freemail:\n    action: tag\n    action: reject\n",
     ["site.yaml:4:5: duplicate key 'action' (hint: a later duplicate would silently replace the first; keep one)"]),
    ("rules:\n  freemail: [\n", None),  # YAML syntax: checked by prefix below
    ("organisation:\n  internal_networks: [10.0.0.0/33]\n",
     ["site.yaml:2:23: organisation.internal_networks.0: not a network: '10.0.0.0/33' (hint: write an address or "
      "CIDR block, e.g. 10.0.0.0/8)"]),
    ("rules:\n  freemail:\n    lists: [nowhere.txt]\n",
     None),
    ("units:\n  vea:\n    rules:\n      attachment-size: {limit: 10 Mb}\n",
     ['site.yaml:4:32: units.vea.rules.attachment-size.limit: expected a size like "15 MB", got \'10 Mb\' (hint: '
      'write the unit: B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024))']),
]


@pytest.mark.parametrize("text, expected", GOLDEN)
def test_golden_errors(tmp_path, text, expected):
    errs = errors_of(tmp_path, text)
    if expected is not None:
        assert errs == expected
    elif "[\n" in text:
        assert len(errs) == 1 and errs[0].startswith("site.yaml:") and "YAML syntax" in errs[0]
    else:
        assert len(errs) == 1 and "cannot read" in errs[0] and "nowhere.txt" in errs[0]
        assert errs[0].startswith("site.yaml:3:")


def test_layering_merges_mappings_and_replaces_lists(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text("rules:\n  freemail:\n    exempt_recipients: [abuse@monre.gov.vn]\n"
                    "    outbound: {action: monitor}\n")
    pack = load_pack([DEFAULT, str(site)])
    cfg_in = pack.rule_config("freemail", "other", "inbound")
    cfg_out = pack.rule_config("freemail", "other", "outbound")
    assert cfg_in.exempt == frozenset({"abuse@monre.gov.vn"})  # list replaced, not appended
    assert cfg_in.action == "reject" and cfg_out.action == "monitor"
    assert len(cfg_in.domains) > 4000  # the lists from the base pack are kept (mapping merged)


def test_unit_overrides_apply_to_that_unit_only(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text("units:\n  vea:\n    rules:\n      attachment-size: {limit: 1 MB}\n")
    pack = load_pack([DEFAULT, str(site)])
    assert pack.rule_config("attachment-size", "vea", "outbound").limit == 1_000_000
    assert pack.rule_config("attachment-size", "gdla", "outbound").limit == 15_000_000
    assert pack.unit_of("nva_vea@monre.gov.vn") == "vea"
    assert pack.unit_of("nva_unknown@monre.gov.vn") == "other"
    assert pack.unit_of("nva_vea@gmail.com") == "other"  # the naming rule holds only for our domain


def test_unit_map_by_address_and_domain(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text("unit_map:\n  vea.gov.vn: vea\n  chanh.vp@monre.gov.vn: dosm\n")
    pack = load_pack([DEFAULT, str(site)])
    assert pack.unit_of("a@mail.vea.gov.vn") == "vea"
    assert pack.unit_of("Chanh.VP@monre.gov.vn") == "dosm"
    tx = Transaction(pack, Connection("10.0.0.1", sasl_user="chanh.vp@monre.gov.vn"))
    tx.mail_from("chanh.vp@monre.gov.vn")
    assert tx.sender_unit() == "dosm"


def test_unknown_unit_in_unit_map_is_an_error(tmp_path):
    errs = errors_of(tmp_path, "unit_map:\n  x.gov.vn: nope\n")
    assert errs[0].startswith("site.yaml:2:13: unit_map.x.gov.vn: unknown unit 'nope' (hint: units are: vea, ")


def test_check_policy_cli(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  freemail:\n    acton: tag\n")
    cli = [sys.executable, "-m", "monre_milter.cli", "check-policy"]
    env = {"PYTHONPATH": str(REPO / "milter")}
    ok = subprocess.run(cli + [DEFAULT], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok: ")
    res = subprocess.run(cli + [DEFAULT, str(bad)], capture_output=True, text=True, env=env)
    assert res.returncode == 1
    assert f"{bad}:3:5: rules.freemail.acton: unknown key (hint: did you mean 'action'?)" in res.stderr


def test_misspelt_unit_code_is_an_error_not_a_new_unit(tmp_path):
    errs = errors_of(tmp_path, "units:\n  vae:\n    rules:\n      attachment-size: {limit: 10 MB}\n")
    assert errs == ["site.yaml:2:3: units.vae: unit 'vae' has no name (hint: did you mean 'vea'?)"]


def test_a_new_unit_with_a_name_is_accepted(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text("units:\n  ttcntt:\n    name: Trung tâm Công nghệ thông tin\n")
    assert "ttcntt" in load_pack([DEFAULT, str(site)]).units


@pytest.mark.parametrize("text, expected", [
    ("a: &x [1, 2]\nb: *x\n", "site.yaml:1:4: YAML anchors and aliases (&x, *x) are not supported in packs (hint: "
                              "write the values out, or layer a second pack)"),
    ("rules:\n  classified:\n    scan: {seconds: .inf}\n",
     "site.yaml:3:21: rules.classified.scan.seconds: inf is not a usable number (hint: write a finite number)"),
    ("rules:\n  freemail:\n    lists: [/dev/zero]\n",
     "site.yaml:3:13: rules.freemail.lists.0: /dev/zero is not a regular file (hint: name a list file (a directory "
     "is allowed only where the option says so))"),
    ("rules:\n  freemail:\n    domains: " + "[" * 200 + "]" * 200 + "\n", None),
])
def test_hostile_packs_are_refused_quickly(tmp_path, text, expected):
    errs = errors_of(tmp_path, text)
    if expected is None:
        assert len(errs) == 1 and "YAML nested too deeply" in errs[0]
    else:
        assert errs == [expected]


def test_a_pack_that_is_not_a_regular_file_is_refused():
    with pytest.raises(PackErrors) as exc:
        load_pack(["/dev/zero"])
    assert exc.value.errors == ["/dev/zero:1:1: not a pack: not a regular file"]
