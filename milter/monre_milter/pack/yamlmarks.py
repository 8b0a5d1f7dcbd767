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


MAX_DEPTH = 32


def _mark(file: str, m) -> Mark:
    return Mark(file, m.line + 1, m.column + 1)


def load(text: str, file: str) -> tuple[object, dict[tuple, Mark]]:
    """Parse one YAML document. Returns (value, marks) where marks maps key paths to the mark of the value."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise YamlError(Mark(file, 1, 1), "YAML nested too deeply", "a pack needs a few levels, not hundreds") \
            from None
    except yaml.MarkedYAMLError as exc:
        m = exc.problem_mark or exc.context_mark
        mark = _mark(file, m) if m else Mark(file, 1, 1)
        raise YamlError(mark, f"YAML syntax: {exc.problem or exc.context}",
                        "check indentation and quoting around this place") from None
    marks: dict[tuple, Mark] = {}
    if node is None:
        return {}, marks
    constructor = yaml.SafeLoader("")
    value = _build(node, (), file, marks, constructor, set())
    return value, marks


def _build(node, path: tuple, file: str, marks: dict, constructor, seen: set) -> object:
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        # An alias makes the composer reuse a node: expanding it would let a few lines grow exponentially
        # ("billion laughs"). Packs have no use for anchors.
        if id(node) in seen:
            raise YamlError(_mark(file, node.start_mark), "YAML anchors and aliases (&x, *x) are not supported in "
                            "packs", "write the values out, or layer a second pack")
        seen.add(id(node))
        if len(path) > MAX_DEPTH:
            raise YamlError(_mark(file, node.start_mark), "YAML nested too deeply",
                            "a pack needs a few levels, not hundreds")
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
            out[key] = _build(vnode, path + (key,), file, marks, constructor, seen)
            marks[path + (key, "__key__")] = _mark(file, knode.start_mark)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(v, path + (i,), file, marks, constructor, seen) for i, v in enumerate(node.value)]
    return constructor.construct_object(node)
