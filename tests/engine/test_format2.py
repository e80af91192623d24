"""State format 2 (shared/engine/codec.py): what it stores reads back the same, whichever
way the state was made (computed, loaded with its log still packed, loaded from format 1);
damage is a StateError, never another exception."""

from __future__ import annotations

import random
import zlib
from datetime import timedelta
from typing import Any

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slawatch.shared.engine import (
    StateError,
    advance,
    apply,
    describe,
    deserialise,
    facts,
    serialise,
)
from slawatch.shared.engine.codec import COMPRESS_ABOVE
from slawatch.shared.events import TicketEvent
from tests.engine.helpers import ev, policies, random_ticket, run, utc

PS = policies()


def _records(out: list[Any]) -> list[str]:
    return [record.to_json() for record in out]


ZSTD_FRAME = b"\x28\xb5\x2f\xfd"


def _plain(blob: bytes) -> bytes:
    if blob[:4] == ZSTD_FRAME:
        return zstandard.ZstdDecompressor().decompress(blob)
    return zlib.decompress(blob) if blob[:1] == b"x" else blob


def _history(seed: int) -> list[TicketEvent]:
    return random_ticket(random.Random(seed), ticket=f"T{seed}")


def _blobs(seeds: range) -> list[bytes]:
    out = []
    for seed in seeds:
        state = None
        for event in _history(seed):
            state, _ = apply(state, event, PS)
            out.append(serialise(state))
    return out


BLOBS = _blobs(range(12))


def test_serialise_writes_format_2_and_reads_it_back_byte_for_byte() -> None:
    for blob in BLOBS:
        assert _plain(blob)[:1] == b"\x02"
        assert serialise(deserialise(blob, PS)) == blob


@pytest.mark.parametrize("seed", range(40))
def test_a_state_loaded_before_every_event_stores_and_emits_what_one_kept_in_memory(
    seed: int,
) -> None:
    """Loaded before every event (its log still packed: an event in order appends to it),
    late ones included, a state emits and stores exactly what one never stored does."""
    rng = random.Random(seed)
    events = _history(seed)
    for i in range(2, len(events)):  # some arrive late: those unpack the log and replay
        if rng.random() < 0.2:
            events[i - 1], events[i] = events[i], events[i - 1]
    kept = loaded = None
    kept_out: list[Any] = []
    loaded_out: list[Any] = []
    for event in events:
        kept, out = apply(kept, event, PS)
        kept_out.extend(out)
        loaded, out = apply(
            None if loaded is None else deserialise(serialise(loaded), PS), event, PS
        )
        loaded_out.extend(out)
        assert serialise(loaded) == serialise(kept)
    assert kept is not None and loaded is not None
    later = events[-1].occurred_at + timedelta(days=3)
    kept, out = advance(kept, later, PS)
    kept_out.extend(out)
    loaded, out = advance(deserialise(serialise(loaded), PS), later, PS)
    loaded_out.extend(out)
    assert _records(loaded_out) == _records(kept_out)
    assert facts(loaded) == facts(kept) and describe(loaded, later, PS) == describe(kept, later, PS)
    assert [(e.at, e.hashed, e.kind, e.fields) for e in loaded.log] == [
        (e.at, e.hashed, e.kind, e.fields) for e in kept.log
    ]


def test_a_duplicate_is_recognised_with_the_log_still_packed() -> None:
    events = _history(3)
    state = None
    for event in events:
        state, _ = apply(state, event, PS)
    assert state is not None
    blob = serialise(state)
    for event in events:
        again, out = apply(deserialise(blob, PS), event, PS)
        assert out == [] and serialise(again) == blob
    assert deserialise(blob, PS).event_count() == len(events)


def test_a_ticket_open_for_months_takes_the_wide_layout() -> None:
    """Offsets past 31 bits of ms (about 25 days) make the whole integer array 64-bit."""
    state, _ = apply(None, ev("created", "2026-03-02T09:00", customer_tier="gold"), PS)
    state, _ = apply(state, ev("customer", "2026-03-02T09:05"), PS)
    state, _ = apply(state, ev("agent", "2026-07-02T09:05"), PS)
    state, _ = advance(state, ev("note", "2026-09-01T00:00").occurred_at, PS)
    blob = serialise(state)
    plain = _plain(blob)
    assert plain[10] == 8  # the large integers' width
    loaded = deserialise(blob, PS)
    assert serialise(loaded) == blob and facts(loaded) == facts(state)


def test_a_nul_in_a_stored_string_is_refused_not_stored_wrong() -> None:
    state, _ = apply(None, ev("created", "2026-03-02T09:00"), PS)
    state.subject = "a\x00b"  # events never carry one (shared/bounds.py refuses it)
    with pytest.raises(ValueError, match="NUL"):
        serialise(state)


def test_a_damaged_blob_is_a_state_error() -> None:
    blob = _plain(BLOBS[-1])
    with pytest.raises(StateError, match="checksum"):
        deserialise(blob[:-3] + b"zzz")
    with pytest.raises(StateError):
        deserialise(blob[:9])
    with pytest.raises(StateError):
        deserialise(b"\x02")
    with pytest.raises(StateError):
        deserialise(zlib.compress(b"\x02garbage"))
    with pytest.raises(StateError):
        deserialise(zstandard.ZstdCompressor().compress(b"\x02garbage"))
    with pytest.raises(StateError):
        deserialise(ZSTD_FRAME + b"\x00")  # a frame cut short
    # A frame whose header claims 1 GB once decompressed: refused before any allocation.
    # (frame header: single segment, an 8-byte content size; then an empty last block)
    huge = ZSTD_FRAME + b"\xe0" + (1 << 30).to_bytes(8, "little") + b"\x01\x00\x00"
    with pytest.raises(StateError, match="bytes"):
        deserialise(huge)


def test_a_state_compressed_by_an_earlier_engine_reads_back_the_same() -> None:
    """Engines before zstd stored long states zlib-compressed: they read as they were, and
    are written back zstd-compressed the next time their ticket changes."""
    events = [ev("created", "2026-03-02T09:00", priority="high", subject="Charged twice " * 8)]
    for i in range(30):
        events.append(ev("customer" if i % 2 else "agent", f"2026-03-02T{10 + i // 6:02d}:{(i % 6) * 10:02d}"))
    state, _ = run(events, PS)
    blob = serialise(state)
    plain = _plain(blob)
    assert blob[:4] == ZSTD_FRAME and len(plain) > COMPRESS_ABOVE
    earlier = deserialise(zlib.compress(plain, 1), PS)
    assert serialise(earlier) == blob
    assert facts(earlier) == facts(state)
    later = utc("2026-03-04T09:00")
    assert describe(earlier, later, PS) == describe(state, later, PS)


def _with_checksum(plain: bytes) -> bytes:
    body = plain[5:]
    return b"\x02" + zlib.crc32(body).to_bytes(4, "little") + body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_any_bytes_load_or_are_a_state_error(data: bytes) -> None:
    for blob in (
        data, b"\x02" + data, zlib.compress(data), zstandard.ZstdCompressor().compress(data),
        ZSTD_FRAME + data, _with_checksum(b"\x02" + data),
    ):  # fmt: skip
        try:
            deserialise(blob, PS)
        except StateError:
            pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(BLOBS),
    st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(0, 40),
)
def test_a_blob_altered_behind_its_checksum_loads_or_is_a_state_error(
    blob: bytes, changes: list[tuple[int, int]], cut: int
) -> None:
    """A blob made to look whole (its checksum recomputed after changing bytes) loads or is
    refused with StateError; its packed log, read later, unpacks or is a StateError too."""
    plain = bytearray(_plain(blob))
    for at, value in changes:
        plain[5 + at % (len(plain) - 5)] = value
    for candidate in (bytes(plain), bytes(plain[: len(plain) - cut])):
        try:
            state = deserialise(_with_checksum(candidate), PS)
        except StateError:
            continue
        try:
            state.log  # noqa: B018 - unpacks the stored log
        except StateError:
            pass
