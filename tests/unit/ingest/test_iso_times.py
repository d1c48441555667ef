"""Column-wise ISO times agree with timestamp_to_ns wherever they claim a text."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from smartplace.ingest.decode.times import parse_utc
from smartplace.schemas.reading import timestamp_to_ns

times = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2254, 12, 31)).map(
    lambda t: t.replace(tzinfo=UTC)
)


def _shapes(t: datetime, nanoseconds: int = 0) -> list[str]:
    seconds = t.isoformat(timespec="seconds").replace("+00:00", "")
    return [
        seconds + "Z",
        t.isoformat(timespec="milliseconds").replace("+00:00", "Z"),  # the simulator's
        t.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        *(f"{seconds}.{nanoseconds:09d}"[: 20 + digits] + "Z" for digits in range(1, 10)),
    ]


def test_known_times_to_the_nanosecond() -> None:
    ns, ok = parse_utc(
        [
            "2026-11-25T22:15:00Z",
            "2026-11-25T22:15:00.123Z",
            "2024-02-29T23:59:59Z",
            "1970-01-01T00:00:00Z",
        ]
    )
    assert ok.tolist() == [True] * 4
    assert ns.tolist() == [
        1_795_644_900 * 10**9,
        1_795_644_900_123_000_000,
        1_709_251_199 * 10**9,
        0,
    ]


def test_other_shapes_and_impossible_dates_are_left_alone() -> None:
    texts = [
        "2023-02-29T00:00:00Z",  # not a leap year
        "2026-04-31T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-11-25T24:00:00Z",
        "2026-11-25T23:60:00Z",
        "2026-11-25T23:59:60Z",  # leap second: datetime has none
        "2026-11-25T22:15:00+00:00",
        "2026-11-25 22:15:00Z",
        "2026-11-25T22:15:00.1234567891Z",  # finer than a nanosecond
        "2026-11-25T22:15:00.Z",
        "2026-11-25T22:15:00.12a4Z",
        "2026-11-25T22:15:00.123",
        "2026-11-25T22:15:00,123Z",
        "2026-11-25T22:15:00",
        "0000-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",  # before the epoch: the window refuses it anyway
        "\uff12\uff10\uff12\uff16-11-25T22:15:00Z",  # full-width digits
        "",
    ]
    assert parse_utc(texts)[1].tolist() == [False] * len(texts)


@settings(max_examples=300)
@given(st.lists(st.tuples(times, st.integers(0, 10**9 - 1)), min_size=1, max_size=10))
def test_every_shape_of_any_time_parses_as_timestamp_to_ns_reads_it(
    ts: list[tuple[datetime, int]],
) -> None:
    texts = [text for t, nanoseconds in ts for text in _shapes(t, nanoseconds)]
    ns, ok = parse_utc(texts)
    assert ok.all()
    assert ns.tolist() == [timestamp_to_ns(text) for text in texts]


@settings(max_examples=500)
@given(
    st.lists(
        st.text(max_size=26)
        | st.tuples(times, st.integers(0, 29), st.characters()).map(
            lambda spoil: _spoilt(_shapes(spoil[0], 987654321)[spoil[1] % 12], spoil[1], spoil[2])
        ),
        min_size=1,
        max_size=20,
    )
)
def test_a_text_it_takes_is_read_exactly_as_timestamp_to_ns_reads_it(texts: list[str]) -> None:
    ns, ok = parse_utc(texts)
    for text, value, taken in zip(texts, ns.tolist(), ok.tolist(), strict=True):
        if taken:
            assert value == timestamp_to_ns(text), text


def _spoilt(text: str, position: int, char: str) -> str:
    return text[:position] + char + text[position + 1 :]


@settings(max_examples=500)
@given(
    st.integers(0, 11).flatmap(
        lambda shape: st.lists(
            st.tuples(times, st.integers(0, 29), st.characters() | st.sampled_from("0Z.:-T\0"))
            .map(lambda spoil: _spoilt(_shapes(spoil[0], 123456789)[shape], *spoil[1:]))
            .filter(lambda text: len(text) == len(_shapes(datetime(2000, 1, 1), 0)[shape])),
            min_size=1,
            max_size=20,
        )
    )
)
def test_texts_of_one_length_read_as_they_read_among_others(texts: list[str]) -> None:
    """One length (a batch's usual case, read a faster way) gives the same answers as when a
    text of another length is among them."""
    ns, ok = parse_utc(texts)
    mixed_ns, mixed_ok = parse_utc([*texts, "2026-11-25T22:15:00.1Z" * 2])
    assert ok.tolist() == mixed_ok[:-1].tolist()
    assert ns.tolist() == mixed_ns[:-1].tolist()
    for text, value, taken in zip(texts, ns.tolist(), ok.tolist(), strict=True):
        if taken:
            assert value == timestamp_to_ns(text), text


def test_one_length_but_not_ascii_or_not_a_time_is_refused() -> None:
    texts = ["2026-11-25T22:15:00.12\u0663Z", "2026-11-25T22:15:00.123Z", "x" * 24]
    assert parse_utc(texts)[1].tolist() == [False, True, False]
    assert parse_utc(["short", "sh\0rt"])[1].tolist() == [False, False]
    assert parse_utc(["2026-11-25T22:15:00.1234567891Z"] * 2)[1].tolist() == [False, False]
