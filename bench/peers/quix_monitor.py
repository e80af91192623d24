"""The peer in bench/monitor.py: Quix Streams hosting slawatch's SLA engine.

What a Python team would otherwise build: a Quix Streams application (RocksDB state per
partition, changelog topics, at-least-once, its default 5 s commit interval) whose one
stateful step is the monitor's: parse the event, load the ticket's state, apply, store
the state back. Run by bench/monitor.py in the bench environment (.venv-bench, the
`bench` dependency group); prints one JSON line: events, seconds, events/s.

    python bench/peers/quix_monitor.py BOOTSTRAP TOPIC GROUP STATE_DIR POLICY_FILE EVENTS
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))  # the tree bench/monitor.py chose (compiled or pure)

from quixstreams import Application  # noqa: E402
from quixstreams.state.rocksdb import RocksDBOptions  # noqa: E402

from slawatch.shared.engine import NATIVE, apply, deserialise, load_policies, serialise  # noqa: E402
from slawatch.shared.events import parse_event  # noqa: E402


def _as_bytes(value: bytes | str) -> bytes:
    """State keys are str, the engine's stored form is bytes: both stored as bytes."""
    return value if isinstance(value, bytes) else value.encode()


def main() -> None:
    bootstrap, topic_name, group, state_dir, policy_file, expected = sys.argv[1:7]
    expected_n = int(expected)
    policies = load_policies(Path(policy_file))
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        loglevel="WARNING",
        # The engine's stored form is already bytes: kept as they are, not as JSON.
        rocksdb_options=RocksDBOptions(dumps=_as_bytes, loads=bytes),
    )
    topic = app.topic(topic_name, value_deserializer="bytes", key_deserializer="bytes")
    progress = {"count": 0, "first": 0.0}

    def step(value: bytes, state) -> None:
        if not progress["count"]:
            progress["first"] = time.perf_counter()
        event = parse_event(value)
        blob = state.get("state")
        ticket = deserialise(blob, policies) if blob is not None else None
        ticket, _ = apply(ticket, event, policies)
        state.set("state", serialise(ticket))
        progress["count"] += 1
        if progress["count"] >= expected_n:
            app.stop()

    sdf = app.dataframe(topic)
    sdf = sdf.update(step, stateful=True)
    app.run(sdf)  # returns after stop(), once the last checkpoint committed
    seconds = time.perf_counter() - progress["first"]
    print(
        json.dumps(
            {
                "events": progress["count"],
                "seconds": seconds,
                "eps": progress["count"] / seconds,
                "native": NATIVE,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
