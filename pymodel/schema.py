"""Checking YAML documents with errors that carry the key path.

Every error is a :class:`ValueError` whose message starts with the source (file name)
and the key path of the offending value, e.g.::

    models/digits/digits_cnn.yaml: layers[1].kernal: unknown key (did you mean
    'kernel'?); allowed: activation, filters, kernel, name, op, ...

Used by :mod:`pymodel.graph.network` (float network descriptions) and
:mod:`pymodel.graph.artifact` (quantized-network artifacts).
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode,
                       deep: bool = False) -> dict:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen[key] = True
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _construct_mapping)


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file (safe loader, duplicate keys rejected).

    Raises:
        ValueError naming the file (and line) on a missing file or a syntax error.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ValueError(f"{p}: cannot read ({exc.strerror or exc})") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ValueError(f"{p}: not valid YAML: {exc}") from None


class Checker:
    """Typed accessors for one document; errors name ``source`` and the key path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, path: str, message: str) -> ValueError:
        return ValueError(f"{self.source}: {path}: {message}")

    def mapping(self, value: Any, path: str, allowed: Iterable[str],
                required: Iterable[str] = ()) -> Mapping[str, Any]:
        """Check that ``value`` is a mapping with only ``allowed`` keys and every
        ``required`` key."""
        allowed = list(allowed)
        if not isinstance(value, Mapping):
            raise self.error(path, f"expected a mapping with keys {', '.join(allowed)}; "
                                   f"got {_show(value)}")
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.error(_join(path, key), f"unknown key{hint}; allowed: "
                                                   f"{', '.join(sorted(allowed))}")
        for key in required:
            if key not in value:
                raise self.error(_join(path, key), "missing (required)")
        return value

    def string(self, value: Any, path: str, choices: Iterable[str] | None = None) -> str:
        if not isinstance(value, str):
            raise self.error(path, f"expected a string; got {_show(value)}")
        if choices is not None:
            choices = list(choices)
            if value not in choices:
                raise self.error(path, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def integer(self, value: Any, path: str, lo: int | None = None,
                hi: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(path, f"expected an integer; got {_show(value)}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.error(path, f"{value} is outside the allowed range "
                                   f"[{'-inf' if lo is None else lo}, "
                                   f"{'inf' if hi is None else hi}]")
        return value

    def real(self, value: Any, path: str, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(path, f"expected a number; got {_show(value)}")
        v = float(value)
        if not math.isfinite(v) or (positive and v <= 0):
            raise self.error(path, f"{v!r} is not a {'positive ' if positive else ''}"
                                   "finite number")
        return v

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(path, f"expected true or false; got {_show(value)}")
        return value

    def int_list(self, value: Any, path: str, length: int | tuple[int, ...],
                 lo: int | None = None) -> tuple[int, ...]:
        lengths = (length,) if isinstance(length, int) else length
        if not isinstance(value, (list, tuple)) or len(value) not in lengths:
            want = " or ".join(str(n) for n in lengths)
            raise self.error(path, f"expected a list of {want} integers; got {_show(value)}")
        return tuple(self.integer(v, f"{path}[{i}]", lo) for i, v in enumerate(value))

    def pair(self, value: Any, path: str, lo: int = 1) -> tuple[int, int]:
        """An int ``n`` (meaning ``(n, n)``) or a list ``[h, w]``."""
        if isinstance(value, int) and not isinstance(value, bool):
            v = self.integer(value, path, lo)
            return v, v
        if isinstance(value, (list, tuple)):
            h, w = self.int_list(value, path, 2, lo)
            return h, w
        raise self.error(path, f"expected an integer or a list [h, w]; got {_show(value)}")

    def sequence(self, value: Any, path: str, nonempty: bool = True) -> list:
        if not isinstance(value, list):
            raise self.error(path, f"expected a list; got {_show(value)}")
        if nonempty and not value:
            raise self.error(path, "expected a non-empty list")
        return value


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
