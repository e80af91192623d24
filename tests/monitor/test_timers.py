"""The deadline heap against a plain dict model: same answers under any operation sequence."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from slawatch.services.sla_monitor.timers import DeadlineHeap

tickets = st.sampled_from([f"T{i}" for i in range(12)])
times = st.integers(0, 100).map(float)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("schedule"), tickets, st.one_of(st.none(), times)),
        st.tuples(st.just("cancel"), tickets, st.none()),
        st.tuples(st.just("pop"), st.none(), times),
    ),
    max_size=200,
)


@given(operations)
def test_behaves_like_a_dict_of_due_times(ops: list) -> None:
    heap = DeadlineHeap()
    model: dict[str, float] = {}  # ticket -> due time
    for op, ticket, when in ops:
        if op == "schedule":
            heap.schedule(ticket, when)
            if when is None:
                model.pop(ticket, None)
            else:
                model[ticket] = when
        elif op == "cancel":
            heap.cancel(ticket)
            model.pop(ticket, None)
        else:
            expected = sorted(
                (t for t, w in model.items() if w <= when), key=lambda t: (model[t], t)
            )
            assert heap.pop_due(when) == expected
            for t in expected:
                del model[t]
        assert len(heap) == len(model)
        assert heap.next_due() == (min(model.values()) if model else None)
        assert len(heap._heap) <= max(64, 2 * len(model)) + 1  # stale entries are bounded


def test_reschedule_churn_does_not_grow_the_heap() -> None:
    heap = DeadlineHeap()
    for i in range(100_000):
        heap.schedule(f"T{i % 100}", float(i))
    assert len(heap) == 100
    assert len(heap._heap) <= 201
    # The last schedule of T{k} was at 99_900 + k.
    assert heap.pop_due(99_899.0) == []
    assert heap.pop_due(99_902.0) == ["T0", "T1", "T2"]
    assert heap.next_due() == 99_903.0


def test_pop_due_respects_limit_and_order() -> None:
    heap = DeadlineHeap()
    for i, t in enumerate(["c", "a", "b"]):
        heap.schedule(t, float(10 - i))
    assert heap.pop_due(100.0, limit=2) == ["b", "a"]
    assert heap.pop_due(100.0) == ["c"]
    assert heap.next_due() is None
