"""Load YAML keeping where every key and value came from, so errors can say file:line:col.

PyYAML's composer gives nodes with marks; we build plain Python values from them and a side table
{key path: Mark}. Duplicate keys are an error (PyYAML would silently keep the last one).
"""
from __future__ import annotations

from dataclasses import dataclass

import yaml


@dataclass(frozen=True)
class Mark:
    file: str
    line: int  # 1-based
    col: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class YamlError(Exception):
    def __init__(self, mark: Mark, message: str, hint: str | None = None):
        super().__init__(f"{mark}: {message}")
        self.mark = mark
        self.message = message
        self.hint = hint


def _mark(file: str, m) -> Mark:
    return Mark(file, m.line + 1, m.column + 1)


def load(text: str, file: str) -> tuple[object, dict[tuple, Mark]]:
    """Parse one YAML document. Returns (value, marks) where marks maps key paths to the mark of the value."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        m = exc.problem_mark or exc.context_mark
        mark = _mark(file, m) if m else Mark(file, 1, 1)
        raise YamlError(mark, f"YAML syntax: {exc.problem or exc.context}",
                        "check indentation and quoting around this place") from None
    marks: dict[tuple, Mark] = {}
    if node is None:
        return {}, marks
    constructor = yaml.SafeLoader("")
    value = _build(node, (), file, marks, constructor)
    return value, marks


def _build(node, path: tuple, file: str, marks: dict, constructor) -> object:
    marks[path] = _mark(file, node.start_mark)
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                raise YamlError(_mark(file, knode.start_mark), "mapping keys must be plain scalars")
            key = constructor.construct_object(knode)
            if key == "<<":
                raise YamlError(_mark(file, knode.start_mark), "YAML merge keys (<<) are not supported in packs",
                                "layer packs with several --policy files instead")
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                raise YamlError(_mark(file, knode.start_mark), f"duplicate key {key!r}",
                                "a later duplicate would silently replace the first; keep one")
            out[key] = _build(vnode, path + (key,), file, marks, constructor)
            marks[path + (key, "__key__")] = _mark(file, knode.start_mark)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(v, path + (i,), file, marks, constructor) for i, v in enumerate(node.value)]
    return constructor.construct_object(node)
