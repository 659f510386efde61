"""ArchSpec: one candidate architecture as plain data.

An ArchSpec maps decision names of a :class:`~autodlgym.SearchSpace` (``"stage1.block"``,
``"optimizer"``, ...) to JSON scalars. It holds only the decisions that are active for its
values (a conv kernel size appears only for conv-like blocks). It is frozen and hashable;
``to_json``/``from_json`` round-trip exactly; ``arch_id`` is a hash of the canonical JSON and is
the same in every process and on every machine.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

from autodlgym.errors import SpecError

Scalar = bool | int | float | str


def _check_scalar(name: str, value: Any) -> Scalar:
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SpecError(f"spec value {name}={value!r} is not finite; use a finite number")
        return value
    raise SpecError(
        f"spec value {name}={value!r} has type {type(value).__name__}; "
        "values must be bool, int, float or str"
    )


class ArchSpec(Mapping[str, Scalar]):
    """A frozen mapping from decision name to value.

    Args:
        values: decision name -> bool, int, float or str.
    """

    __slots__ = ("_items", "_dict", "_hash", "_json")

    def __init__(self, values: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        merged = dict(values or {}, **kwargs)
        for key in merged:
            if not isinstance(key, str):
                raise SpecError(f"spec key {key!r} is not a string")
        items = tuple(sorted((k, _check_scalar(k, v)) for k, v in merged.items()))
        object.__setattr__(self, "_items", items)
        object.__setattr__(self, "_dict", dict(items))
        object.__setattr__(self, "_hash", None)
        object.__setattr__(self, "_json", None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("ArchSpec is frozen; use spec.replace(...) for a modified copy")

    def __getitem__(self, key: str) -> Scalar:
        return self._dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        if self._hash is None:
            object.__setattr__(self, "_hash", hash(self._items))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ArchSpec):
            # bool is an int subclass: compare types too so True != 1
            return self._items == other._items and all(
                type(a[1]) is type(b[1]) for a, b in zip(self._items, other._items)
            )
        return NotImplemented

    def __repr__(self) -> str:
        return f"ArchSpec({self._dict!r})"

    def __reduce__(self):
        return (ArchSpec, (self._dict,))

    def replace(self, **changes: Any) -> ArchSpec:
        """A copy with some values changed (a value of None removes the key)."""
        d = dict(self._dict)
        for k, v in changes.items():
            if v is None:
                d.pop(k, None)
            else:
                d[k] = v
        return ArchSpec(d)

    def to_dict(self) -> dict[str, Scalar]:
        return dict(self._dict)

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, floats written as Python's repr."""
        if self._json is None:  # frozen: computed once (specs are hashed and stored often)
            text = json.dumps(self._dict, sort_keys=True, separators=(",", ":"), allow_nan=False)
            object.__setattr__(self, "_json", text)
        return self._json

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(
                f"spec is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
            ) from None
        if not isinstance(data, dict):
            raise SpecError(
                f"spec JSON must be an object of decision -> value, got {type(data).__name__}"
            )
        return cls(data)

    @property
    def arch_id(self) -> str:
        """First 16 hex digits of the SHA-256 of the canonical JSON."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    # Structured views used by the builder -------------------------------------------------
    @property
    def n_stages(self) -> int:
        return int(self._dict.get("n_stages", 1))

    def stage(self, i: int) -> dict[str, Scalar]:
        """Decisions of stage ``i`` (1-based) without the ``stageI.`` prefix."""
        prefix = f"stage{i}."
        return {k[len(prefix) :]: v for k, v in self._items if k.startswith(prefix)}

    def summary(self) -> str:
        """A short human-readable description, e.g. ``conv x2 (64) > gru x1 (32)``."""
        parts = []
        for i in range(1, self.n_stages + 1):
            st = self.stage(i)
            if not st:
                continue
            block = str(st.get("block", "?"))
            if block == "recurrent":
                block = str(st.get("cell", "rnn")) + ("-bi" if st.get("bidirectional") else "")
            parts.append(f"{block} x{st.get('depth', 1)} ({st.get('width', '?')})")
        # a spec without stages (a tabular benchmark's space): its decisions as they are
        flat = " ".join(f"{k}={v}" for k, v in self._items)
        return " > ".join(parts) or flat or "(empty)"
