"""A columnar way in for native readings: a micro-batch's readings of one model at once.

pydantic judges readings one object at a time, and for readings of plain
numbers that was most of ingest's CPU. The screen takes, as columns, the rows
it can show pydantic would accept with the same values: each field's value
of the field's type (or null) inside its bounds, every required field there,
a ``ts`` that timestamp_to_ns reads (float seconds and ISO UTC text in its
usual shape a column at a time) inside the accepted window, no ``device_id``
but the topic's, and the model's own cross-field rule. Every other row (a
string where a number goes, a bool, a value out of range, a Sensor.Community
record...) goes the ordinary way, alone, and gets pydantic's verdict and
reason. ``tests/unit/ingest/test_screen.py`` holds the
two ways to the same answers on hostile input.

Input is parsed JSON (orjson), which has no NaN or infinity: a NaN here means
a missing value.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from functools import cache
from itertools import repeat
from typing import Annotated, Any, Union, cast, get_args, get_origin

import annotated_types
import numpy as np
import numpy.typing as npt
from pydantic_core import PydanticCustomError

from smartplace.ingest.decode.columns import FloatArray
from smartplace.ingest.decode.times import parse_utc
from smartplace.schemas import Reading
from smartplace.schemas.kinds import ColumnRule, every_row, spec_of_model
from smartplace.schemas.reading import NS_PER_S, field_layout, timestamp_to_ns

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

# Float epoch seconds converted a column at a time: below this, seconds * 1e9 fits in int64.
_MAX_SCREENED_S = 4_000_000_000
_INT64_LIMIT = 2**63


_TYPES = {"float": frozenset({float, int}), "int": frozenset({int}), "bool": frozenset({bool})}


@dataclass(frozen=True, slots=True)
class ModelScreen:
    """What a model accepts, as numbers: worked out once per model from its fields."""

    fields: tuple[str, ...]
    """The model's numeric fields, in column order (``field_layout(model).numeric``)."""
    accepted_types: tuple[frozenset[type], ...]
    required: tuple[bool, ...]
    low: FloatArray
    high: FloatArray
    low_open: BoolArray
    high_open: BoolArray
    rule: ColumnRule


@dataclass(frozen=True, slots=True)
class Screened:
    rows: IntArray
    """The items taken, by index in the array, ascending."""
    values: FloatArray
    """Shape (rows, fields): as pydantic's values would make them (NaN for null, bools 0/1)."""
    ts_ns: IntArray


@cache
def screen_for(model: type[Reading]) -> ModelScreen | None:
    """The model's screen, or None when it cannot have one (text fields, unknown constraints,
    a validator whose kind's spec gives no ``screen_rule``)."""
    layout = field_layout(model)
    validators = model.__pydantic_decorators__.model_validators
    spec = spec_of_model(model)
    rule = spec.screen_rule if spec is not None else None
    if layout.texts or (validators and rule is None):
        return None
    lows, highs, low_open, high_open = [], [], [], []
    for name in layout.numeric:
        bounds = _bounds(model.model_fields[name].annotation, model.model_fields[name].metadata)
        if bounds is None:
            return None
        lows.append(bounds[0])
        highs.append(bounds[1])
        low_open.append(bounds[2])
        high_open.append(bounds[3])
    return ModelScreen(
        fields=layout.numeric,
        accepted_types=tuple(_TYPES[t] for t in layout.numeric_types),
        required=tuple(model.model_fields[name].is_required() for name in layout.numeric),
        low=np.array(lows),
        high=np.array(highs),
        low_open=np.array(low_open),
        high_open=np.array(high_open),
        rule=rule or every_row,
    )


def _bounds(annotation: Any, metadata: list[Any]) -> tuple[float, float, bool, bool] | None:
    """(low, high, low is open, high is open) from Ge/Gt/Le/Lt; None for any other constraint."""
    constraints = list(metadata)
    if isinstance(annotation, types.UnionType) or get_origin(annotation) is Union:
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    if get_origin(annotation) is Annotated:
        for extra in get_args(annotation)[1:]:
            constraints.extend(getattr(extra, "metadata", [extra]))
    low, high, low_open, high_open = -np.inf, np.inf, False, False
    for constraint in constraints:
        if isinstance(constraint, annotated_types.Ge):
            low = float(constraint.ge)  # type: ignore[arg-type]
        elif isinstance(constraint, annotated_types.Gt):
            low, low_open = float(constraint.gt), True  # type: ignore[arg-type]
        elif isinstance(constraint, annotated_types.Le):
            high = float(constraint.le)  # type: ignore[arg-type]
        elif isinstance(constraint, annotated_types.Lt):
            high, high_open = float(constraint.lt), True  # type: ignore[arg-type]
        else:
            return None
    return low, high, low_open, high_open


def screen_rows(
    items: list[Any],
    screen: ModelScreen,
    device_ids: npt.NDArray[np.str_],
    earliest_ns: IntArray,
    latest_ns: IntArray,
) -> Screened | None:
    """The readings that need no pydantic, as columns; None if none do.

    Per row: ``device_ids`` the topic's (already matched whole against the id
    pattern); ``earliest_ns``..``latest_ns`` the event times its arrival
    allows, inclusive.
    """
    n = len(items)
    ok = np.ones(n, dtype=np.bool_)
    if set(map(type, items)) != {dict}:  # the ordinary way refuses the others
        ok &= np.array([type(item) is dict for item in items], dtype=np.bool_)
        items = [item if type(item) is dict else {} for item in items]
    present: set[str] = set().union(*items)  # the keys any item has, in C
    if "ts" not in present:
        return None  # arrival time stands in, and a flag says so: the ordinary way does that
    values = np.empty((n, len(screen.fields)), dtype=np.float64)
    try:
        for k, name in enumerate(screen.fields):
            if name in present:
                values[:, k] = _column(items, name, screen.accepted_types[k], ok)
            else:  # most of a model's fields, usually
                values[:, k] = np.nan
    except OverflowError:  # an integer too large for a double: out of every range anyway
        return None
    missing = np.isnan(values)
    ok &= ~(missing & np.array(screen.required)).any(axis=1)
    too_low = np.where(screen.low_open, values <= screen.low, values < screen.low)
    too_high = np.where(screen.high_open, values >= screen.high, values > screen.high)
    ok &= ~((too_low | too_high) & ~missing).any(axis=1)
    ok &= screen.rule({name: values[:, k] for k, name in enumerate(screen.fields)})
    ts_ns = _timestamps(items, ok)
    ok &= (ts_ns >= earliest_ns) & (ts_ns <= latest_ns)
    if "device_id" in present:
        ids, own = _values(items, "device_id"), device_ids.tolist()
        if ids != own:  # one list comparison, in C, when every reading names its own device
            ok &= np.array(
                [i is None or i == mine for i, mine in zip(ids, own, strict=True)], dtype=np.bool_
            )
    if "sensordatavalues" in present:  # a Sensor.Community record: its own adapter reads it
        ok &= np.array(["sensordatavalues" not in item for item in items], dtype=np.bool_)
    rows = np.flatnonzero(ok)
    if not len(rows):
        return None
    return Screened(rows=rows, values=values[rows], ts_ns=ts_ns[rows])


def _column(
    items: list[dict[str, Any]], name: str, accepted: frozenset[type], ok: BoolArray
) -> list[Any]:
    """One field's values (None where missing); a row with a value of another type is marked not ok."""
    column = _values(items, name)
    kinds = set(map(type, column))
    kinds.discard(type(None))
    if kinds <= accepted:
        return column
    wrong = np.array([v is not None and type(v) not in accepted for v in column], dtype=np.bool_)
    ok &= ~wrong
    return [None if bad else v for v, bad in zip(column, wrong.tolist(), strict=True)]


def _values(items: list[dict[str, Any]], name: str) -> list[Any]:
    """``item.get(name)`` for each item (every one a dict), without a Python frame per item."""
    return list(map(dict.get, items, repeat(name)))


def _timestamps(items: list[dict[str, Any]], ok: BoolArray) -> IntArray:
    """Each ``ts`` as nanoseconds, as timestamp_to_ns makes them; a row whose ts it refuses
    (or that is missing) is marked not ok, for pydantic to judge and explain.

    Columns of float seconds and of ISO UTC text in its usual shape are converted with
    numpy; any other row asks timestamp_to_ns itself.
    """
    ts = _values(items, "ts")
    kinds = set(map(type, ts))
    if kinds == {float}:
        seconds = np.array(ts, dtype=np.float64)
        inside = (seconds >= 0) & (seconds < _MAX_SCREENED_S)
        if inside.all():
            # round(s * 1_000_000_000) in Python is the same double product, rounded half to even.
            ns: IntArray = np.rint(seconds * NS_PER_S).astype(np.int64)
            return ns
    elif kinds == {str}:
        from_text, parsed = parse_utc(cast(list[str], ts))
        return _one_by_one(ts, from_text, parsed, ok)
    return _one_by_one(ts, np.zeros(len(ts), dtype=np.int64), np.zeros(len(ts), np.bool_), ok)


def _one_by_one(ts: list[Any], ns: IntArray, done: BoolArray, ok: BoolArray) -> IntArray:
    """The rows numpy did not convert, through timestamp_to_ns itself."""
    for index in np.flatnonzero(~done).tolist():
        try:
            one = timestamp_to_ns(ts[index])
        except PydanticCustomError:
            one = -1
        if 0 <= one < _INT64_LIMIT:
            ns[index] = one
        else:
            ok[index] = False
    return ns
