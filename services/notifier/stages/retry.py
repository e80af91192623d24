"""Retry decisions: exponential backoff with full jitter, bounded by attempts and time.

Retried: timeouts, connection errors, 5xx, 429 and the providers' own rate-limit codes;
``Retry-After`` (or a provider's documented throttle time) is a floor under the delay.
Anything else is permanent at once: a 400 will not improve by being sent again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from slawatch.services.notifier.model import DeliveryResult, Outcome


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_s: float = 1.0
    cap_s: float = 300.0
    budget_s: float = 3600.0  # from the first attempt to giving up

    def backoff(self, attempts_made: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^(n-1))] after the n-th attempt."""
        ceiling = min(self.cap_s, self.base_s * (2 ** max(attempts_made - 1, 0)))
        return rng.uniform(0.0, ceiling)

    def next_delay(
        self,
        attempts_made: int,
        elapsed_s: float,
        result: DeliveryResult,
        rng: random.Random,
    ) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        if result.outcome is not Outcome.retryable:
            return None
        if attempts_made >= self.max_attempts:
            return None
        delay = self.backoff(attempts_made, rng)
        if result.retry_after is not None:
            delay = max(delay, result.retry_after)
        if elapsed_s + delay > self.budget_s:
            return None
        return delay

    def give_up_reason(self, attempts_made: int, result: DeliveryResult) -> str:
        if result.outcome is Outcome.permanent:
            return f"permanent failure: {result.reason}"
        if attempts_made >= self.max_attempts:
            return f"gave up after {attempts_made} attempts: {result.reason}"
        return f"retry budget of {self.budget_s:g}s exhausted after {attempts_made} attempts: {result.reason}"
