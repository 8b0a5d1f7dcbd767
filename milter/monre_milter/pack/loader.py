"""Load, layer, validate and compile a policy pack.

`load_pack(["base.yaml", "site.yaml"])` reads each file with marks, merges them (mappings merge, scalars and lists
replace; later files win), validates the result against the schema (unknown keys are errors), then compiles every
rule once per (unit, direction). All errors are collected and raised together as `PackErrors`, each formatted as
`file:line:col: key.path: message (hint: ...)`.
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import ipaddress
import json
import math
import os
import stat
from dataclasses import dataclass, field

import jsonschema

from .. import engine as _engine  # noqa: F401  (registers the rules)
from ..engine.base import REGISTRY, CompileContext, PackError, Rule
from ..engine.addresses import domain_of, normalise_domain, parse_ip
from . import schema as schema_mod
from ..engine.sizes import format_size, parse_size  # noqa: F401  (re-exported)
from .yamlmarks import Mark, YamlError, load as yaml_load

DIRECTIONS = ("inbound", "outbound")
OTHER_UNIT = "other"
# Option keys whose values name files: resolved relative to the pack file that set them.
MAX_PACK_BYTES = 8 * 2**20  # packs are settings; long lists go in list files
MAX_LIST_BYTES = 64 * 2**20  # a list file larger than this is a mistake (or /dev/zero)
PATH_KEYS = {"lists", "trust_anchors", "list_files"}


class PackErrors(Exception):
    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass
class Pack:
    files: list[str]
    version: str
    sha256: str
    data: dict  # merged, validated pack (for display and for tools)
    internal_domains: tuple[str, ...]
    internal_networks: list
    authserv_id: str
    units: dict[str, str]  # code -> name
    unit_map: dict[str, str]  # address or domain (lower case) -> unit code
    limits: dict
    trusted_hosts: list = field(default_factory=list)
    _rules: dict = field(default_factory=dict)  # (unit, direction) -> [(Rule, compiled)]

    def rules(self, unit: str, direction: str) -> list[tuple[Rule, object]]:
        return self._rules.get((unit, direction)) or self._rules[(OTHER_UNIT, direction)]

    def rule_config(self, rule_id: str, unit: str, direction: str):
        for rule, cfg in self.rules(unit, direction):
            if rule.id == rule_id:
                return cfg
        return None

    # -- organisation ----------------------------------------------------------------------------------------------
    def is_internal_domain(self, domain: str) -> bool:
        d = normalise_domain(domain)
        return any(d == i or d.endswith("." + i) for i in self.internal_domains)

    def is_internal_address(self, addr: str) -> bool:
        d = domain_of(addr)
        return bool(d) and self.is_internal_domain(d)

    def in_networks(self, ip: str | None, networks) -> bool:
        a = parse_ip(ip)
        return a is not None and any(a in n for n in networks)

    def direction(self, client_ip: str | None, sasl_user: str | None) -> str:
        """outbound: an authenticated client or one inside the internal networks; inbound: everything else."""
        if sasl_user:
            return "outbound"
        return "outbound" if self.in_networks(client_ip, self.internal_networks) else "inbound"

    def unit_of(self, addr: str | None) -> str:
        """The appendix-1 unit an address belongs to: the pack's unit_map (address, then domain and its parents),
        then the naming rule of art. 4.2 / 4.3: <name>_<unit>@monre.gov.vn."""
        if not addr:
            return OTHER_UNIT
        a = addr.lower().rstrip(".")
        if a in self.unit_map:
            return self.unit_map[a]
        d = domain_of(a)
        labels = d.split(".") if d else []
        for i in range(len(labels)):
            u = self.unit_map.get(".".join(labels[i:]))
            if u:
                return u
        if d and self.is_internal_domain(d):
            local = a.rsplit("@", 1)[0]
            if "_" in local:
                code = local.rsplit("_", 1)[1]
                if code in self.units:
                    return code
        return OTHER_UNIT


# ---------------------------------------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------------------------------------
def _merge(base, bmarks: dict, over, omarks: dict, path: tuple = ()):
    """Mappings merge key by key; scalars and lists replace. Marks follow the value that won."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            if k in out:
                out[k] = _merge(out[k], bmarks, v, omarks, path + (k,))
            else:
                out[k] = v
                _copy_marks(omarks, bmarks, path + (k,))
            key_mark = omarks.get(path + (k, "__key__"))
            if key_mark:
                bmarks[path + (k, "__key__")] = key_mark
        return out
    for p in [p for p in bmarks if p[: len(path)] == path]:
        del bmarks[p]
    _copy_marks(omarks, bmarks, path)
    return over


def _copy_marks(src: dict, dst: dict, path: tuple) -> None:
    n = len(path)
    for p, m in src.items():
        if p[:n] == path:
            dst[p] = m


def _resolve_paths(value, base_dir: str, key: str | None = None):
    """Make the file names under PATH_KEYS absolute, relative to the pack file that names them."""
    if isinstance(value, dict):
        return {k: _resolve_paths(v, base_dir, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_paths(v, base_dir, key) for v in value]
    if key in PATH_KEYS and isinstance(value, str) and not os.path.isabs(value):
        return os.path.normpath(os.path.join(base_dir, value))
    return value


def _walk(value, path: tuple = ()):
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, path + (i,))


def _deep_merge_plain(a: dict, b: dict) -> dict:
    out = copy.deepcopy(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge_plain(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


class _Loader:
    def __init__(self, paths: list[str]):
        self.paths = paths
        self.marks: dict[tuple, Mark] = {}
        self.errors: list[str] = []
        self.digest = hashlib.sha256()

    # -- errors ------------------------------------------------------------------------------------------------------
    def mark_for(self, path: tuple) -> Mark:
        path = tuple(path)
        while path:
            if path in self.marks:
                return self.marks[path]
            path = path[:-1]
        return self.marks.get((), Mark(self.paths[-1] if self.paths else "<pack>", 1, 1))

    def error(self, path: tuple, message: str, hint: str | None = None, mark: Mark | None = None) -> None:
        mark = mark or self.mark_for(path)
        where = ".".join(str(p) for p in path)
        text = f"{mark}: {where + ': ' if where else ''}{message}"
        if hint:
            text += f" (hint: {hint})"
        if text not in self.errors:  # several (unit, direction) compilations can report the same problem
            self.errors.append(text)

    def read_text(self, path: str, key_path: tuple) -> str:
        try:
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode):
                raise PackError(f"{path} is not a regular file", key_path,
                                "name a list file (a directory is allowed only where the option says so)")
            if st.st_size > MAX_LIST_BYTES:
                raise PackError(f"{path} is larger than {MAX_LIST_BYTES // 2**20} MiB", key_path)
            with open(path, "rb") as fh:
                data = fh.read(MAX_LIST_BYTES + 1)
        except OSError as exc:
            raise PackError(f"cannot read {path}: {exc.strerror}", key_path,
                            "paths are relative to the pack file that names them") from None
        self.digest.update(data)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PackError(f"{path} is not UTF-8 (byte {exc.start})", key_path) from None

    # -- steps -------------------------------------------------------------------------------------------------------
    def load(self) -> Pack:
        merged: dict = {}
        for path in self.paths:
            try:
                st = os.stat(path)
                if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_PACK_BYTES:
                    self.errors.append(f"{path}:1:1: not a pack: " + ("not a regular file" if not stat.S_ISREG(
                        st.st_mode) else f"larger than {MAX_PACK_BYTES // 2**20} MiB (hint: long lists belong in "
                        "list files under lists/)"))
                    continue
                with open(path, "rb") as fh:
                    raw = fh.read(MAX_PACK_BYTES + 1)
            except OSError as exc:
                self.errors.append(f"{path}:1:1: cannot read pack: {exc.strerror}")
                continue
            self.digest.update(raw)
            try:
                value, marks = yaml_load(raw.decode("utf-8"), path)
            except UnicodeDecodeError as exc:
                self.errors.append(f"{path}:1:1: pack is not UTF-8 ({exc.reason} at byte {exc.start})")
                continue
            except YamlError as exc:
                self.errors.append(f"{exc.mark}: {exc.message}" + (f" (hint: {exc.hint})" if exc.hint else ""))
                continue
            if not isinstance(value, dict):
                self.errors.append(f"{marks.get((), Mark(path, 1, 1))}: a pack must be a mapping of settings")
                continue
            value = _resolve_paths(value, os.path.dirname(os.path.abspath(path)))
            merged = _merge(merged, self.marks, value, marks)
        if self.errors:
            raise PackErrors(self.errors)
        self.validate(merged)
        if self.errors:
            raise PackErrors(self.errors)
        pack = self.build(merged)
        if self.errors:
            raise PackErrors(self.errors)
        return pack

    def validate(self, data: dict) -> None:
        for path, value in _walk(data):
            if isinstance(value, float) and not math.isfinite(value):
                self.error(path, f"{value} is not a usable number", "write a finite number")
        validator = jsonschema.Draft202012Validator(schema_mod.pack_schema())
        for err in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
            path = tuple(err.absolute_path)
            if err.validator == "additionalProperties":
                allowed = list((err.schema.get("properties") or {}).keys())
                for key in [k for k in err.instance if k not in allowed]:
                    close = difflib.get_close_matches(str(key), allowed, n=1)
                    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(allowed)}"
                    self.error(path + (key,), "unknown key", hint, self.marks.get(path + (key, "__key__")))
            elif err.validator == "enum":
                self.error(path, f"{err.instance!r} is not one of {', '.join(map(str, err.validator_value))}")
            elif err.validator == "required":
                self.error(path, err.message)
            else:
                hint = err.schema.get("description") if isinstance(err.schema, dict) else None
                self.error(path, err.message, hint)

    def build(self, data: dict) -> Pack:
        org = data.get("organisation", {})
        internal_domains = tuple(normalise_domain(d) for d in org.get("internal_domains", ["monre.gov.vn"]))
        networks = []
        for i, n in enumerate(org.get("internal_networks", [])):
            try:
                networks.append(ipaddress.ip_network(n, strict=False))
            except ValueError:
                self.error(("organisation", "internal_networks", i), f"not a network: {n!r}",
                           "write an address or CIDR block, e.g. 10.0.0.0/8")
        trusted = []
        for i, n in enumerate(org.get("trusted_hosts", [])):
            try:
                trusted.append(ipaddress.ip_network(n, strict=False))
            except ValueError:
                self.error(("organisation", "trusted_hosts", i), f"not a network: {n!r}")
        units = {}
        for code, u in data.get("units", {}).items():
            if "name" not in u:
                # A unit only a site pack mentions, without a name, is nearly always a misspelt code.
                close = difflib.get_close_matches(code, [c for c, x in data["units"].items() if "name" in x], n=1)
                hint = (f"did you mean {close[0]!r}?" if close else
                        "a new unit needs its name, e.g. name: Cục ...")
                self.error(("units", code), f"unit {code!r} has no name", hint,
                           self.marks.get(("units", code, "__key__")))
            units[code] = u.get("name", code)
        unit_map = {}
        for key, code in data.get("unit_map", {}).items():
            if code not in units:
                self.error(("unit_map", key), f"unknown unit {code!r}", f"units are: {', '.join(units)}")
            unit_map[key.lower().rstrip(".")] = code
        pack = Pack(files=list(self.paths), version=str(data.get("version", "unversioned")), sha256="",
                    data=data, internal_domains=internal_domains, internal_networks=networks,
                    authserv_id=org.get("authserv_id", "mail.monre.gov.vn"), units=units, unit_map=unit_map,
                    limits=dict(data.get("limits", {})), trusted_hosts=trusted)
        for key in ("max_message_spool_memory",):
            if key in pack.limits:
                try:
                    pack.limits[key] = parse_size(pack.limits[key], ("limits", key))
                except PackError as exc:
                    self.error(exc.path, exc.message, exc.hint)
        self.compile_rules(pack, data)
        pack.sha256 = self.digest.hexdigest()
        return pack

    def compile_rules(self, pack: Pack, data: dict) -> None:
        base_rules = data.get("rules", {})
        cache: dict = {}
        for unit in list(pack.units) + [OTHER_UNIT]:
            unit_rules = data.get("units", {}).get(unit, {}).get("rules", {}) if unit != OTHER_UNIT else {}
            for direction in DIRECTIONS:
                compiled = []
                for rule_id, rule in REGISTRY.items():
                    layers = [rule.defaults, base_rules.get(rule_id, {}),
                              base_rules.get(rule_id, {}).get(direction, {}),
                              unit_rules.get(rule_id, {}), unit_rules.get(rule_id, {}).get(direction, {})]
                    opts: dict = {}
                    for layer in layers:
                        opts = _deep_merge_plain(opts, {k: v for k, v in layer.items() if k not in DIRECTIONS})
                    if not opts.get("enabled", True):
                        continue
                    key = (rule_id, json.dumps(opts, sort_keys=True, default=str))
                    if key not in cache:
                        path = ("rules", rule_id)
                        ctx = CompileContext(base_dir=os.path.dirname(os.path.abspath(self.paths[0])),
                                             internal_domains=pack.internal_domains, read_text=self.read_text,
                                             path=path)
                        try:
                            cache[key] = rule.compile(opts, ctx)
                        except PackError as exc:
                            where = path + exc.path
                            if unit_rules.get(rule_id):
                                where = ("units", unit, "rules", rule_id) + exc.path
                            self.error(where, exc.message, exc.hint)
                            cache[key] = None
                    if cache[key] is not None:
                        compiled.append((rule, cache[key]))
                pack._rules[(unit, direction)] = compiled


def load_pack(paths: list[str]) -> Pack:
    """Load and compile the pack made of `paths` (layered in order). Raises PackErrors with every problem found."""
    if not paths:
        raise PackErrors(["<pack>:1:1: no policy file given"])
    return _Loader([os.path.normpath(p) for p in paths]).load()
