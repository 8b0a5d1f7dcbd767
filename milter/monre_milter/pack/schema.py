"""The pack's JSON schema, assembled from the organisation settings and each registered rule's options."""
from __future__ import annotations

import copy

from ..engine.base import COMMON_OPTIONS, REGISTRY

STRINGS = {"type": "array", "items": {"type": "string"}}


def rule_schema(rule, with_directions: bool = True) -> dict:
    props = dict(COMMON_OPTIONS)
    props.update(copy.deepcopy(rule.options_schema))
    schema = {"type": "object", "additionalProperties": False, "properties": props}
    if with_directions:
        inner = rule_schema(rule, with_directions=False)
        inner["description"] = f"options of {rule.id} that apply to one direction only"
        props["inbound"] = inner
        props["outbound"] = copy.deepcopy(inner)
    return schema


def rules_schema() -> dict:
    return {"type": "object", "additionalProperties": False,
            "properties": {rid: rule_schema(rule) for rid, rule in REGISTRY.items()}}


def pack_schema() -> dict:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "version": {"type": ["string", "number"], "description": "a label for this pack, shown in metrics"},
            "description": {"type": "string"},
            "organisation": {
                "type": "object", "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "internal_domains": STRINGS,
                    "internal_networks": STRINGS,
                    "trusted_hosts": {**STRINGS, "description": "upstream filters whose spam headers are believed"},
                    "authserv_id": {"type": "string"},
                },
            },
            "limits": {
                "type": "object", "additionalProperties": False,
                "properties": {
                    "max_parts": {"type": "integer", "minimum": 1},
                    "max_depth": {"type": "integer", "minimum": 1},
                    "max_message_spool_memory": {"type": "string"},
                },
            },
            "units": {
                "type": "object",
                "additionalProperties": {
                    "type": "object", "additionalProperties": False,
                    "properties": {"name": {"type": "string"}, "rules": rules_schema()},
                },
            },
            "journal": {"type": "object", "additionalProperties": False, "properties": {
                "retention_days": {"type": "number", "minimum": 0,
                                   "description": "days incident-journal rows are kept (0: forever); art. 15 "
                                                  "reports are yearly, keep at least 400"}}},
            "unit_map": {"type": "object", "additionalProperties": {"type": "string"},
                         "description": "address or domain -> unit code"},
            "rules": rules_schema(),
        },
    }
