"""The per-source mapping file: what differs between installations of one helpdesk.

Declared once, as the pydantic model :class:`SourceMapping`; docs/schemas/source-mapping.schema.json
is generated from it (services/schemas.py). Files are read with the notifier's
line-keeping YAML loader (shared/yamlsource.py), so every problem is reported as
``FILE:LINE: problem``, all at once, by ``slawatch sources check`` and at ingest start.

Everything here is optional: each adapter has defaults that fit the system out of the box
(``DEFAULTS`` in its module); a file adds to or overrides them, e.g. a custom status
"Waiting on vendor" mapped to ``on_hold``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from slawatch.shared.bounds import Line
from slawatch.shared.events import Channel, Priority, Status
from slawatch.shared.yamlsource import Issue, describe, load_located

SYSTEMS = ("zendesk", "freshdesk", "zoho-desk", "jira", "zammad", "chatwoot")

NativeName = Annotated[Line, Field(min_length=1, max_length=128)]
Tier = Annotated[Line, Field(min_length=1, max_length=256)]
Path_ = Annotated[
    Line,
    Field(
        min_length=1,
        max_length=256,
        pattern=r"^[A-Za-z0-9_\-$]+(\.[A-Za-z0-9_\-$]+)*$",
        description="Dotted path into the native payload, e.g. `ticket.organization.name`;"
        " list items by number (`issue.fields.customfield_10002.0.name`).",
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomerTier(_Strict):
    """Where the customer tier is read from, and how its values are named in slawatch."""

    path: Path_ = Field(description="Dotted path to the value in the system's payload.")
    values: dict[NativeName, Tier] = Field(
        default_factory=dict,
        max_length=1000,
        description="Native value -> tier name (case-insensitive); unlisted values pass as"
        " they are.",
    )


class SourceMapping(_Strict):
    """A mapping file for one helpdesk (``SLAWATCH_SOURCE_<SYSTEM>_MAPPING``)."""

    version: Literal[1] = Field(1, description="File format version.")
    system: Literal["zendesk", "freshdesk", "zoho-desk", "jira", "zammad", "chatwoot"] = Field(
        description="The helpdesk this file is for; a file for another system is refused."
    )
    statuses: dict[NativeName, Status] = Field(
        default_factory=dict,
        max_length=1000,
        description="Native status name (case-insensitive) -> slawatch status, e.g."
        " `Waiting on vendor: on_hold`. Added to the system's defaults.",
    )
    priorities: dict[NativeName, Priority] = Field(
        default_factory=dict, max_length=1000, description="Native priority -> slawatch priority."
    )
    channels: dict[NativeName, Channel] = Field(
        default_factory=dict,
        max_length=1000,
        description="Native channel/source name -> slawatch channel.",
    )
    channel: Channel | None = Field(
        None, description="Report every ticket of this source under this channel."
    )
    customer_tier: CustomerTier | None = Field(
        None, description="Which field holds the customer's tier (organisation, custom field)."
    )
    ticket_prefix: Annotated[Line, Field(max_length=32)] | None = Field(
        None,
        description="Prefix of slawatch ticket ids from this source; default `<system>:`.",
    )


def mapping_json_schema() -> dict[str, Any]:
    return {"title": "SourceMapping", **SourceMapping.model_json_schema()}


@dataclass(frozen=True)
class Resolved:
    """Defaults merged with a file: what an adapter's translate step reads (keys lower-case)."""

    system: str
    statuses: Mapping[str, str] = field(default_factory=dict)
    priorities: Mapping[str, str] = field(default_factory=dict)
    channels: Mapping[str, str] = field(default_factory=dict)
    channel: str | None = None
    tier_path: str | None = None
    tier_values: Mapping[str, str] = field(default_factory=dict)
    prefix: str = ""

    def status(self, native: str | None, where: str) -> str | None:
        return self._lookup(self.statuses, native, where, "statuses")

    def priority(self, native: str | None, where: str) -> str | None:
        return self._lookup(self.priorities, native, where, "priorities")

    def channel_of(self, native: str | None) -> str:
        if self.channel:
            return self.channel
        if native is None:
            return "other"
        return self.channels.get(native.strip().lower(), "other")

    def tier(self, document: Any) -> str | None:
        if self.tier_path is None:
            return None
        from slawatch.services.ingest.sources.base import dig, text

        value = text(dig(document, self.tier_path))
        if value is None:
            return None
        return self.tier_values.get(value.lower(), value)

    def ticket(self, native_id: str) -> str:
        return f"{self.prefix}{native_id}"

    def _lookup(
        self, table: Mapping[str, str], native: str | None, where: str, key: str
    ) -> str | None:
        if native is None:
            return None
        found = table.get(native.strip().lower())
        if found is None:
            from slawatch.services.ingest.sources.base import Malformed

            raise Malformed(
                where,
                f"unknown {key[:-1] if key != 'priorities' else 'priority'} {native[:64]!r};"
                f" map it under `{key}:` in the {self.system} mapping file",
            )
        return found


def resolve(
    system: str, defaults: Mapping[str, Mapping[str, str]], mapping: SourceMapping | None
) -> Resolved:
    def merged(name: str) -> dict[str, str]:
        table = {k.lower(): v for k, v in defaults.get(name, {}).items()}
        if mapping is not None:
            table.update({k.strip().lower(): str(v) for k, v in getattr(mapping, name).items()})
        return table

    tier = mapping.customer_tier if mapping else None
    prefix = mapping.ticket_prefix if mapping and mapping.ticket_prefix is not None else None
    return Resolved(
        system=system,
        statuses=merged("statuses"),
        priorities=merged("priorities"),
        channels=merged("channels"),
        channel=str(mapping.channel) if mapping and mapping.channel else None,
        tier_path=tier.path if tier else None,
        tier_values={k.lower(): v for k, v in tier.values.items()} if tier else {},
        prefix=prefix if prefix is not None else f"{system}:",
    )


class MappingError(Exception):
    """A mapping file that cannot be used; ``lines`` are ``FILE:LINE: problem`` each."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def parse_mapping(
    text_: str, source: str, *, system: str | None = None, env: Mapping[str, str] | None = None
) -> SourceMapping:
    """Validate a mapping file's text; every problem with its line, or the model."""
    located = load_located(text_, os.environ if env is None else env)
    issues: list[Issue] = list(located.issues) + [
        Issue(line, f"duplicate key `{key}` in {describe(path)}")
        for path, key, line in located.duplicate_keys
    ]
    model: SourceMapping | None = None
    if not issues:
        if not isinstance(located.data, dict):
            issues.append(Issue(located.line(()), "expected a mapping with `system:` and options"))
        else:
            try:
                model = SourceMapping.model_validate(located.data)
            except ValidationError as exc:
                for error in exc.errors(include_url=False, include_input=False):
                    path = tuple(error["loc"])
                    message = error["msg"]
                    if error["type"] == "extra_forbidden":
                        message = f"unknown key `{path[-1]}`"
                    issues.append(Issue(located.line(path), f"{describe(path)}: {message}"))
    if model is not None and system is not None and model.system != system:
        issues.append(
            Issue(
                located.line(("system",)), f"system: this file is for {model.system}, not {system}"
            )
        )
    if issues:
        raise MappingError([issue.render(source) for issue in sorted(issues, key=_order)])
    assert model is not None
    return model


def _order(issue: Issue) -> int:
    return issue.line or 0


def load_mapping(path: Path, system: str | None = None) -> SourceMapping:
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError([f"{path}: cannot read: {exc.__class__.__name__}"]) from None
    return parse_mapping(content, str(path), system=system)
