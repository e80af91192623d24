"""The engine reads durations in slawatch's one grammar: shared/durations.py."""

from __future__ import annotations

from slawatch.shared.durations import DurationError, format_duration, parse_duration

__all__ = ["DurationError", "format_duration", "parse_duration"]
