"""Reference tables for the README, generated from the code so they cannot drift.

``scripts/readme-tables`` rewrites each block between
``<!-- generated:NAME -->`` and ``<!-- /generated -->``; a test fails when
the README's copy differs from what this module makes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import get_args

from annotated_types import Ge, Gt, Le, Lt
from pydantic.fields import FieldInfo

from smartplace.config import settings_reference
from smartplace.schemas import KINDS, DeviceStatusReading, Reading
from smartplace.schemas.profiles import load_profiles
from smartplace.schemas.reasons import reasons_markdown


def settings_markdown() -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [
        f"| `{env}` | `{default}` | {_one_line(meaning)} |"
        for env, default, meaning in settings_reference()
    ]
    return "\n".join(lines)


def fields_markdown() -> str:
    """Per kind: each field, its JSON type, its accepted range and its meaning."""
    blocks = []
    models: list[tuple[str, type[Reading]]] = [
        *((name, spec.model) for name, spec in KINDS.items()),
        ("status", DeviceStatusReading),
    ]
    for name, model in models:
        lines = [
            f"**{name}** (measurement `{model.measurement}`)",
            "",
            "| field | type | range | meaning |",
            "|---|---|---|---|",
        ]
        for field, kind_of in zip(model.measurement_fields(), model.field_types(), strict=True):
            info = model.model_fields[field]
            required = "" if not info.is_required() else " (required)"
            lines.append(
                f"| `{field}`{required} | {_json_type(kind_of)} | {_range(model, field)} | {_one_line(info.description or '')} |"
            )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def profiles_markdown() -> str:
    lines = ["| profile | kind | TTS model ids | what smartplace derives |", "|---|---|---|---|"]
    for profile in sorted(load_profiles().values(), key=lambda p: p.name):
        derive = {
            "none": "-",
            "bin_fill_from_distance": "fill_pct from distance_mm and the bin's depth ("
            + ", ".join(f"{k} default {v:g}" for k, v in profile.parameters.items())
            + ")",
            "footfall_from_totals": "per-interval counts of lines "
            + ", ".join(str(line) for line in profile.counted_lines)
            + ": their period counts, else the rise of their cumulative totals (a 32-bit wrap "
            "counted across, a larger fall a reset); every line's totals and region counts stored",
        }[profile.derive]
        models = ", ".join(f"`{m}`" for m in profile.ttn_model_ids) or "-"
        lines.append(f"| `{profile.name}` | {profile.kind} | {models} | {derive} |")
    return "\n".join(lines)


GENERATED: dict[str, Callable[[], str]] = {
    "settings": settings_markdown,
    "fields": fields_markdown,
    "profiles": profiles_markdown,
    "reasons": reasons_markdown,
}

_BLOCK = re.compile(r"(<!-- generated:(\w+) -->\n)(.*?)(<!-- /generated -->)", re.DOTALL)


def refresh(text: str) -> str:
    """``text`` with every generated block rewritten from the code."""

    def replace(match: re.Match[str]) -> str:
        return f"{match[1]}{GENERATED[match[2]]()}\n{match[4]}"

    return _BLOCK.sub(replace, text)


def _one_line(text: str) -> str:
    """A docstring wrapped over lines would end its table row at the first break."""
    return " ".join(text.split())


def _json_type(kind_of: str) -> str:
    return {"float": "number", "int": "integer", "bool": "true/false", "str": "text"}[kind_of]


def _range(model: type[Reading], field: str) -> str:
    info = model.model_fields[field]
    constraints = list(info.metadata)
    for arg in get_args(info.annotation):  # X | None: the bounds sit on the Annotated X
        for item in getattr(arg, "__metadata__", ()):
            constraints.extend(item.metadata if isinstance(item, FieldInfo) else [item])
    low = high = None
    for item in constraints:
        if isinstance(item, Ge | Gt):
            low = item.ge if isinstance(item, Ge) else item.gt
        if isinstance(item, Le | Lt):
            high = item.le if isinstance(item, Le) else item.lt
    if low is None and high is None:
        return "-"
    return f"{low if low is not None else ''} .. {high if high is not None else ''}"
