"""Kafka plumbing shared by the services: client options, topics, producers.

Every service talks to Kafka through aiokafka with the options built here, so security
settings (SASL/TLS) are configured once and topics are created the same way everywhere.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.protocol.group import LeaveGroupRequest

from slawatch.shared.settings import CommonSettings

log = logging.getLogger("slawatch.kafka")


def client_options(settings: CommonSettings) -> dict[str, Any]:
    """Connection options common to producers, consumers and the admin client."""
    if not settings.kafka_bootstrap:
        raise ValueError("SLAWATCH_KAFKA_BOOTSTRAP is not set")
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        )
    if settings.kafka_security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password
    return options


def group_options(settings: CommonSettings) -> dict[str, Any]:
    """Consumer-group timing: a member is dropped after the session timeout without a
    heartbeat (heartbeats every third of it). Tansu also holds a group's first JoinGroup
    for half the session timeout, which is most of a restarted consumer's time to ready."""
    session_ms = int(settings.kafka_session_timeout_s * 1000)
    return {"session_timeout_ms": session_ms, "heartbeat_interval_ms": max(session_ms // 3, 100)}


def topic_specs(settings: CommonSettings) -> dict[str, int]:
    """Every topic slawatch uses, with its partition count.

    The SLA topic has as many partitions as the events topic so that keying by ticket keeps
    one ticket's SLA events in order end to end.
    """
    parts = settings.events_partitions
    return {
        settings.topic_events: parts,
        settings.topic_events_dlq: 1,
        settings.topic_sla: parts,
        settings.topic_notifications_dlq: 1,
    }


async def ensure_topics(settings: CommonSettings, timeout: float = 30.0) -> list[str]:
    """Create missing topics (idempotent); returns the ones created."""
    admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = topic_specs(settings)
        missing = [
            NewTopic(name, num_partitions=parts, replication_factor=settings.topic_replication)
            for name, parts in wanted.items()
            if name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process won the race; that is the state we want
        return [topic.name for topic in missing]
    finally:
        await admin.close()


def make_producer(settings: CommonSettings, **overrides: Any) -> AIOKafkaProducer:
    """A durable producer: acks from all in-sync replicas, idempotent retries off (Tansu)."""
    options: dict[str, Any] = {
        **client_options(settings),
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": 1_048_576,
        "request_timeout_ms": 15_000,
        "compression_type": None,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


Record = tuple[bytes | None, bytes, list[tuple[str, bytes]]]  # key, value, headers


async def send_confirmed(producer: AIOKafkaProducer, topic: str, records: Iterable[Record]) -> None:
    """Send records (batched by the producer) and return once the broker acked every one;
    raises if any was not acked, so the caller can keep its own state unchanged."""
    futures = [
        await producer.send(topic, value, key=key, headers=headers or None)
        for key, value, headers in records
    ]
    await asyncio.gather(*futures)


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """Stop a group consumer and make sure it *leaves* the group, so that its partitions
    go to the others (or to its own restart) at once instead of after the session timeout.

    aiokafka sends LeaveGroup on stop only for a generation above 0 (Kafka numbers them
    from 1); Tansu numbers the first generation of a group 0, so a monitor stopped in the
    group's first generation left a ghost member behind and its restart waited about
    session timeout + join delay (15-20 s) for its own partitions. For generation 0 we send
    the LeaveGroup ourselves at the point aiokafka would (after the heartbeat stopped).
    """
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is not None and hasattr(coordinator, "_maybe_leave_group"):
        original = coordinator._maybe_leave_group

        async def leave_group() -> None:
            if coordinator.generation == 0 and coordinator.member_id:
                try:
                    await coordinator._send_req(
                        LeaveGroupRequest(coordinator.group_id, coordinator.member_id)
                    )
                    log.info("left consumer group %s", coordinator.group_id)
                except KafkaError as exc:
                    log.warning("LeaveGroup failed: %s", exc)
                coordinator.reset_generation()
            else:
                await original()

        coordinator._maybe_leave_group = leave_group
    await consumer.stop()


async def broker_reachable(settings: CommonSettings, timeout: float = 2.0) -> bool:
    """A cheap readiness probe: can we fetch cluster metadata right now?"""
    admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        await asyncio.wait_for(admin.list_topics(), timeout)
        return True
    except (TimeoutError, KafkaError, OSError):
        return False
    finally:
        try:
            await admin.close()
        except Exception:  # noqa: BLE001 - closing a half-open client must not fail a probe
            log.debug("closing admin client after probe failed", exc_info=True)


def topics_main(argv: list[str]) -> int:
    """`slawatch topics create`: create missing topics (idempotent), for deploy jobs."""
    import argparse

    from slawatch.shared.settings import SettingsError, load_settings, require

    parser = argparse.ArgumentParser(prog="slawatch topics", description=topics_main.__doc__)
    parser.add_argument("action", choices=["create"])
    parser.parse_args(argv)
    try:
        settings = load_settings(CommonSettings)
        require(settings, "kafka_bootstrap", hint="")
    except SettingsError as exc:
        return int(exc.code or 2)
    created = asyncio.run(ensure_topics(settings))
    print("topics created: " + (", ".join(created) if created else "none (all exist)"))
    return 0
