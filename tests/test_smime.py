"""The smime rule (art. 9.2) through the engine and `monre-milter check --json`: results, per-outcome actions,
Authentication-Results, unwrapping of opaque content for the other rules, encrypted mail, forwarded signatures."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monre_milter.pack import load_pack  # first: it loads the engine, then extract (import order matters)
from monre_milter.check import check_file
from test_smime_pki import TEXT, entity, openssl, outer_headers, pki, sign  # noqa: F401  (pki: fixture)

REPO = Path(__file__).resolve().parents[1]
from conftest import CORPUS  # noqa: E402

SMIME = CORPUS / "smime"
POLICY = REPO / "policies" / "monre.yaml"
OUTSIDE = "198.51.100.20"
PDF = (b"Content-Type: application/pdf; name=r.pdf\r\nContent-Disposition: attachment; filename=r.pdf\r\n"
       b"Content-Transfer-Encoding: base64\r\n\r\n")


def run_check(msg: Path, *policies: Path, mail_from="alice@partner.gov.vn", rcpts=("nva@monre.gov.vn",),
              client_ip=OUTSIDE, sasl_user=None) -> dict:
    cmd = [sys.executable, "-m", "monre_milter.cli", "check", "--json", "--policy", str(POLICY)]
    for p in policies:
        cmd += ["--policy", str(p)]
    cmd += ["--mail-from", mail_from, "--client-ip", client_ip]
    for r in rcpts:
        cmd += ["--rcpt", r]
    if sasl_user:
        cmd += ["--sasl-user", sasl_user]
    out = subprocess.run(cmd + [str(msg)], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def smime_entries(v: dict) -> list[dict]:
    return [r for r in v["rules"] if r["id"] == "smime"]


def ar_values(v: dict) -> list[str]:
    return [val for name, val in v["add_headers"] if name == "Authentication-Results"]


@pytest.fixture
def write(tmp_path):
    def w(name: str, data: bytes) -> Path:
        p = tmp_path / name
        p.write_bytes(data)
        return p
    return w


def test_check_json_pass_adds_authentication_results(pki, write):
    msg = write("ok.eml", sign(TEXT, pki.alice, [pki.inter], outer_headers("alice@partner.gov.vn",
                                                                          "nva@monre.gov.vn")))
    v = run_check(msg, pki.overlay())
    assert v["action"] == "accept"
    [e] = smime_entries(v)
    assert (e["result"], e["action"], e["article"]) == ("pass", "monitor", "9.2")
    assert ar_values(v) == ["mail.monre.gov.vn; smime=pass body.smime-identifier=alice@partner.gov.vn "
                            f"body.smime-serial={pki.alice.cert.serial_number:x}"]


def test_check_json_tampered_is_rejected(pki, write):
    data = sign(TEXT, pki.alice, [pki.inter], outer_headers("alice@partner.gov.vn", "nva@monre.gov.vn"))
    msg = write("bad.eml", data.replace(b"Hello from", b"Hellp from"))
    v = run_check(msg, pki.overlay())
    assert v["action"] == "reject"
    assert v["smtp_reply"] == ("550 5.7.5 The S/MIME signature of this message does not verify (content altered "
                               "after signing) (regulation art. 9.2)")
    [e] = smime_entries(v)
    assert (e["result"], e["action"]) == ("fail", "reject")


@pytest.mark.parametrize("case, result, outcome", [
    ("untrusted", "policy", "untrusted"), ("expired", "policy", "expired"), ("mismatch", "policy", "mismatch")])
def test_each_outcome_has_its_own_action(pki, write, case, result, outcome):
    signer = {"untrusted": pki.stranger, "expired": pki.expired, "mismatch": pki.alice}[case]
    frm = "boss@partner.gov.vn" if case == "mismatch" else "alice@partner.gov.vn"
    msg = write(f"{case}.eml", sign(TEXT, signer, [pki.inter, pki.other_root], outer_headers(frm, "nva@monre.gov.vn")))
    # defaults: tag
    v = run_check(msg, pki.overlay())
    [e] = smime_entries(v)
    assert (e["result"], e["action"]) == (result, "tag") and e["reason"].startswith(outcome + ":")
    assert v["action"] == "accept" and ["X-MONRE-Policy", f"smime (art. 9.2): {result}"] in v["add_headers"]
    # a pack that sets only this outcome's key changes only this outcome
    v = run_check(msg, pki.overlay(f"    on_{outcome}: quarantine\n"))
    assert smime_entries(v)[0]["action"] == "quarantine" and v["action"] == "quarantine"
    other = {"untrusted": "expired", "expired": "mismatch", "mismatch": "untrusted"}[outcome]
    v = run_check(msg, pki.overlay(f"    on_{other}: reject\n"))
    assert smime_entries(v)[0]["action"] == "tag"


def test_protocol_prefix_may_disagree_with_part_type(pki, write):
    data = sign(TEXT, pki.alice, [pki.inter], outer_headers("alice@partner.gov.vn", "nva@monre.gov.vn"))
    # openssl cms writes the registered type in both places: make the protocol parameter the legacy x- one
    assert b'protocol="application/pkcs7-signature"' in data
    assert b"Content-Type: application/pkcs7-signature" in data
    data = data.replace(b'protocol="application/pkcs7-signature"', b'protocol="application/x-pkcs7-signature"')
    v = run_check(write("p.eml", data), pki.overlay())
    assert smime_entries(v)[0]["result"] == "pass"


def test_opaque_content_is_unwrapped_for_the_other_rules(pki, write, tmp_path):
    import base64
    import os
    blob = base64.encodebytes(os.urandom(150_000)).replace(b"\n", b"\r\n")
    inner = entity({"Content-Type": 'multipart/mixed; boundary="b1"'},
                   b"--b1\r\nContent-Type: text/plain\r\n\r\nReport attached.\r\n--b1\r\n" + PDF + blob + b"--b1--\r\n")
    msg = write("opaque.eml", sign(inner, pki.alice, [pki.inter], outer_headers("alice@partner.gov.vn",
                                                                              "nva@monre.gov.vn"), opaque=True))
    pack = load_pack([str(POLICY), str(pki.overlay())])
    v = check_file(pack, str(msg), mail_from="alice@partner.gov.vn", rcpts=["nva@monre.gov.vn"], client_ip=OUTSIDE)
    assert [f.result for f in v.findings if f.rule == "smime"] == ["pass"]
    from monre_milter.extract.message import analyse
    with open(msg, "rb") as fh:
        facts = analyse(fh, pack, "inbound", "other")
    # the inner PDF is seen (part 1.2 of the signed content), the smime.p7m container is not counted twice
    assert [(a.part, a.filename, a.size) for a in facts.attachments] == [("1.2", "r.pdf", 150_000)]
    assert facts.attachments_total == 150_000
    # the attachment inside the signed-data is seen by attachment-size: a 100 KB limit refuses the message
    small = tmp_path / "small.yaml"
    small.write_text("rules:\n  attachment-size:\n    limit: 100 KB\n")
    v = run_check(msg, pki.overlay(), small)
    assert v["action"] == "reject", v
    assert {r["id"]: r["result"] for r in v["rules"]} == {"smime": "pass", "attachment-size": "over-limit"}


def test_forged_authentication_results_removed_others_kept(pki, write):
    data = sign(TEXT, pki.alice, [pki.inter], outer_headers("alice@partner.gov.vn", "nva@monre.gov.vn"))
    data = (b"Authentication-Results: mx.partner.gov.vn; spf=pass smtp.mailfrom=partner.gov.vn\r\n"
            b"Authentication-Results: MAIL.monre.gov.vn (forged); smime=pass body.smime-identifier=boss@x\r\n"
            + data)
    pack = load_pack([str(POLICY), str(pki.overlay())])
    v = check_file(pack, str(write("f.eml", data)), mail_from="alice@partner.gov.vn", rcpts=["nva@monre.gov.vn"],
                   client_ip=OUTSIDE)
    assert v.remove_headers == [("Authentication-Results", 2)]
    assert [n for n, _ in v.add_headers] == ["Authentication-Results"]


def test_outbound_unsigned_is_counted_and_a_unit_can_enforce(pki, write, tmp_path):
    plain = write("plain.eml", b"From: nva_vea@monre.gov.vn\r\nTo: x@partner.gov.vn\r\nSubject: t\r\n\r\nHi.\r\n")
    v = run_check(plain, pki.overlay(), mail_from="nva_vea@monre.gov.vn", rcpts=["x@partner.gov.vn"],
                  sasl_user="nva_vea@monre.gov.vn")
    assert v["direction"] == "outbound" and v["action"] == "accept"
    [e] = smime_entries(v)
    assert (e["result"], e["action"]) == ("none", "monitor")
    assert ar_values(v) == []  # the default pack adds Authentication-Results to received mail only
    unit = tmp_path / "unit.yaml"
    unit.write_text("units:\n  vea:\n    rules:\n      smime:\n        outbound:\n          on_unsigned: reject\n")
    v = run_check(plain, pki.overlay(), unit, mail_from="nva_vea@monre.gov.vn", rcpts=["x@partner.gov.vn"],
                  sasl_user="nva_vea@monre.gov.vn")
    assert v["action"] == "reject" and smime_entries(v)[0]["result"] == "none"
    # signed by the official: passes under the same unit policy
    signed = write("signed.eml", sign(TEXT, pki.nva, [pki.inter], outer_headers("nva_vea@monre.gov.vn",
                                                                                "x@partner.gov.vn")))
    v = run_check(signed, pki.overlay(), unit, mail_from="nva_vea@monre.gov.vn", rcpts=["x@partner.gov.vn"],
                  sasl_user="nva_vea@monre.gov.vn")
    assert v["action"] == "accept" and smime_entries(v)[0]["result"] == "pass"
    # inbound unsigned: nothing to say
    v = run_check(plain, pki.overlay(), mail_from="x@partner.gov.vn")
    assert smime_entries(v) == [] and ar_values(v) == []


def test_encrypted_between_government_domains_counted_else_held(pki, write, tmp_path):
    body = entity({"Content-Type": "text/plain"}, b"secret\r\n")
    r = openssl("smime", "-encrypt", "-aes256", "-from", "alice@partner.gov.vn", "-to", "nva@monre.gov.vn",
                "-subject", "enc", str(pki.nva.cert_path), data=body)
    assert r.returncode == 0, r.stderr
    msg = write("enc.eml", r.stdout)
    v = run_check(msg, pki.overlay())
    [e] = smime_entries(v)
    assert (e["result"], e["action"], v["action"]) == ("neutral", "monitor", "accept")
    v = run_check(msg, pki.overlay(), mail_from="someone@example.com")
    assert (smime_entries(v)[0]["action"], v["action"]) == ("quarantine", "quarantine")


def test_signature_inside_forwarded_message_does_not_decide(pki, write):
    signed = sign(TEXT, pki.alice, [pki.inter], outer_headers("alice@partner.gov.vn", "nva@monre.gov.vn"))
    tampered = signed.replace(b"Hello from", b"Hellp from")
    fwd = entity({"From": "clerk@partner.gov.vn", "To": "nva@monre.gov.vn", "Subject": "Fwd",
                  "MIME-Version": "1.0", "Content-Type": 'multipart/mixed; boundary="f1"'},
                 b"--f1\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n--f1\r\nContent-Type: message/rfc822\r\n\r\n"
                 + tampered + b"\r\n--f1--\r\n")
    pack = load_pack([str(POLICY), str(pki.overlay())])
    v = check_file(pack, str(write("fwd.eml", fwd)), mail_from="clerk@partner.gov.vn", rcpts=["nva@monre.gov.vn"],
                   client_ip=OUTSIDE)
    assert v.action == "accept" and not [f for f in v.findings if f.rule == "smime"]
    from monre_milter.extract.message import analyse
    with open(write("fwd2.eml", fwd), "rb") as fh:
        facts = analyse(fh, pack, "inbound", "other")
    [s] = facts.extra["smime"].signatures
    assert (s.result, s.msg_depth, s.part) == ("fail", 1, "2.1")


def test_corpus_real_clients(write, tmp_path):
    overlay = tmp_path / "h.yaml"
    overlay.write_text(f"rules:\n  smime:\n    trust_anchors: [{SMIME / 'hiraoka' / 'ca_smime.crt'}]\n")
    for name in ("outlook15-signed.eml", "thunderbird128-signed.eml"):
        v = run_check(SMIME / "hiraoka" / name, overlay, mail_from="smime1@hmailserver.test",
                      rcpts=["smime2@monre.gov.vn"])
        assert smime_entries(v)[0]["result"] == "pass", (name, v)
    v = run_check(SMIME / "misc" / "pkcs7-empty-digest-set.eml", overlay, rcpts=["a@monre.gov.vn"])
    assert smime_entries(v)[0]["result"] == "permerror"
    v = run_check(SMIME / "pyca" / "signed-opaque.msg", overlay, rcpts=["a@monre.gov.vn"])
    assert smime_entries(v)[0]["result"] == "permerror"


def test_bad_anchor_path_is_a_pack_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  smime:\n    trust_anchors: [no-such-folder]\n")
    from monre_milter.pack import PackErrors
    with pytest.raises(PackErrors) as e:
        load_pack([str(POLICY), str(bad)])
    assert any("rules.smime.trust_anchors: no such file or folder:" in x and x.startswith(f"{bad}:3:")
               for x in e.value.errors), e.value.errors


def test_garbage_signature_is_neutral_not_a_crash(pki, write):
    import base64
    data = sign(TEXT, pki.alice, [pki.inter], outer_headers("alice@partner.gov.vn", "nva@monre.gov.vn"))
    head, sig_and_rest = data.split(b'name="smime.p7s"', 1)
    hdrs, rest = sig_and_rest.split(b"\r\n\r\n", 1)
    junk = base64.encodebytes(b"\x30\x82\x01\x00" + bytes(range(256))).replace(b"\n", b"\r\n")
    tail = rest[rest.index(b"\r\n\r\n------"):]
    v = run_check(write("junk.eml", head + b'name="smime.p7s"' + hdrs + b"\r\n\r\n" + junk + tail), pki.overlay())
    [e] = smime_entries(v)
    assert (e["result"], e["action"], v["action"]) == ("neutral", "tag", "accept"), e
    assert e["reason"].startswith("invalid: ")


def test_unreadable_opaque_signed_content_is_held(tmp_path):
    """Content a client might show but we cannot parse was not inspected: the uninspectable action applies."""
    import base64

    msg = tmp_path / "garbage.eml"
    msg.write_bytes(b"From: a@example.org\r\nTo: b@monre.gov.vn\r\nMIME-Version: 1.0\r\n"
                    b"Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\n"
                    b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(b"\x30\x03\x02\x01\x01" * 40))
    pack = load_pack([str(REPO / "policies" / "monre.yaml")])
    v = check_file(pack, str(msg), client_ip="198.51.100.7")
    assert v.action == "quarantine"
    assert ("classified", "uninspectable") in {(f.rule, f.result) for f in v.findings}
