"""Coverage-guided fuzzing of ingest's pipeline (atheris, libFuzzer underneath).

Each input is one micro-batch: up to three messages, each a topic chosen by
the input (every topic scheme, plausible and hostile device ids, any kind,
or the input's own topic) and a payload made of the input's bytes. It fails, and libFuzzer keeps the input,
when the pipeline raises or answers with an ``internal_error`` reject: a
message that made a stage fail is caught in production (it must never stop
ingest), but it is still a bug.

    .venv/bin/python fuzz/pipeline_fuzz.py -max_total_time=300 -dict=fuzz/json.dict CORPUS_DIR

The corpus directory is seeded with the sample payloads (tests/fixtures/samples)
and a few skeletons of each format when it is empty; libFuzzer adds what it finds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["smartplace"]):
    from smartplace.config import IngestSettings, Settings
    from smartplace.ingest.pipeline import Pipeline
    from smartplace.ingest.receive.message import RawMessage
    from smartplace.schemas.reasons import RejectReason

PREFIX = "smartplace"
KINDS = ("air_quality", "footfall", "bin", "device_status", "", "x")
LEAVES = ("reading", "status", "senml")
DEVICES = ("aq-0001", "ff-0001", "bin-0001", "aq-0002")
HOSTILE_DEVICES = ("", "+", "#", "..", "a" * 65, "aq\n", "aq 1", "aq/0", "\u00e9", "AQ-0001")
SCHEMES = 5
RECEIVED_NS = 1_795_046_460 * 10**9
MESSAGE_SEPARATOR = b"\x1e"
"""Splits an input into up to three messages (ASCII record separator)."""
FRESH_PIPELINE_EVERY = 20_000
"""Executions between fresh pipelines: its windows and per-device state grow with the ids seen."""
SAMPLES = Path(__file__).parents[1] / "tests" / "fixtures" / "samples"
SKELETONS = (
    (0, b'{"pm25_ugm3": 5, "ts": 1795046400}'),
    (0, b'[{"pm25_ugm3": 5}, {"no2_ugm3": 7, "ts": "2026-11-19T00:00:00Z"}]'),
    (2, b'[{"bn": "urn:dev:aq:", "bt": 1795046400, "n": "pm25", "u": "ug/m3", "v": 5}]'),
    (1, b'{"battery_pct": 50, "rssi_dbm": -70}'),
    (0, b'{"sensordatavalues": [{"value_type": "SDS_P2", "value": "5.1"}]}'),
)

settings = Settings(ingest=IngestSettings(require_registered_devices=False))
state = {"pipeline": Pipeline(settings), "runs": 0}


def message(chunk: bytes, index: int) -> RawMessage:
    """One message from a chunk: byte 0 picks the topic's scheme, kind and leaf, byte 1 its
    device id (a plausible one or a hostile one), the rest is the payload."""
    choice = chunk[0] if chunk else 0
    pick = chunk[1] if len(chunk) > 1 else 0
    device = DEVICES[pick % len(DEVICES)] if pick < 128 else HOSTILE_DEVICES[pick % 10]
    payload = chunk[2:]
    scheme, kind, leaf = choice % SCHEMES, KINDS[(choice // SCHEMES) % 6], LEAVES[choice // 30 % 3]
    if scheme <= 1:  # readings, the common case, twice as likely
        topic = f"{PREFIX}/{kind or 'air_quality'}/{device}/{leaf}"
    elif scheme == 2:
        topic = f"{PREFIX}/registry/{device}"
    elif scheme == 3:
        topic = f"v3/app@tenant/devices/{device}/up"
    else:
        topic, _, payload = payload.partition(b" ")
        # As ingest/receive/mqtt_wire.py reads a topic: bad UTF-8 stays, as lone surrogates.
        return RawMessage(topic.decode("utf-8", "surrogateescape"), payload, RECEIVED_NS + index)
    return RawMessage(topic, payload, RECEIVED_NS + index)


def test_one_input(raw: bytes) -> None:
    messages = [message(c, n) for n, c in enumerate(raw.split(MESSAGE_SEPARATOR)[:3])]
    state["runs"] += 1
    if state["runs"] % FRESH_PIPELINE_EVERY == 0:
        state["pipeline"] = Pipeline(settings)
    out = state["pipeline"].process(messages)
    internal = [r for r in out.rejects if r.reason is RejectReason.INTERNAL_ERROR]
    if internal:
        raise AssertionError(f"a stage failed on {messages!r}: {internal[0].detail}")
    "\n".join([*out.raw.lines, *out.agg.lines]).encode()  # as InfluxClient.write sends them


def topic_byte(kind: int, leaf: int) -> int:
    """The first byte of a chunk for a reading topic of KINDS[kind] and LEAVES[leaf]."""
    return leaf * 30 + kind * SCHEMES


def seed(corpus: Path) -> None:
    """Seed inputs, when the corpus is empty: each skeleton and sample on its own topic."""
    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
    seeds = [bytes([topic_byte(0, leaf), 0]) + payload for leaf, payload in SKELETONS]
    for sample in sorted(SAMPLES.glob("*.json")):
        if sample.name.startswith("ttn"):
            seeds.append(bytes([3, 0]) + sample.read_bytes())
        elif sample.name.startswith("senml"):
            seeds.append(bytes([topic_byte(0, 2), 0]) + sample.read_bytes())
        else:
            seeds.append(bytes([topic_byte(0, 0), 0]) + sample.read_bytes())
    registry = b'{"device_id": "aq-0001", "kind": "air_quality", "status": "active", "site": "s"}'
    seeds.append(bytes([2, 0]) + registry + MESSAGE_SEPARATOR + seeds[0])
    for n, data in enumerate(seeds):
        (corpus / f"seed-{n:02d}").write_bytes(data)


def main() -> None:
    corpora = [Path(arg) for arg in sys.argv[1:] if not arg.startswith("-")]
    for corpus in corpora:
        seed(corpus)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
