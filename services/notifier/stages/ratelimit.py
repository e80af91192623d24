"""Per-integration rate limits that never exceed the provider's documented ceiling.

Providers state their limits as counts per window ("20 per minute per robot"). A token
bucket with a burst overshoots such a limit (a full bucket plus a window's refill), and
DingTalk answers an overshoot by throttling the robot for ten minutes; so each limit is
a sliding window: at most ``count`` sends in any ``per_seconds``. Several limits can
apply at once (Feishu: 5/s and 100/min). A provider's own rate-limit answer pauses the
integration until its Retry-After has passed.

Times are plain monotonic seconds, passed in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from slawatch.services.notifier.providers import RateLimit


class SlidingWindow:
    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._sent: deque[float] = deque()

    def _trim(self, now: float) -> None:
        horizon = now - self.limit.per_seconds
        while self._sent and self._sent[0] <= horizon:
            self._sent.popleft()

    def available_at(self, now: float) -> float:
        self._trim(now)
        if len(self._sent) < self.limit.count:
            return now
        # the oldest send in the window must have left it
        return self._sent[-self.limit.count] + self.limit.per_seconds

    def record(self, at: float) -> None:
        self._sent.append(at)
        while len(self._sent) > self.limit.count:
            self._sent.popleft()


class RateLimiter:
    def __init__(self, limits: Iterable[RateLimit]) -> None:
        self.windows = [SlidingWindow(limit) for limit in limits]
        self.paused_until = 0.0

    def available_at(self, now: float) -> float:
        at = max(now, self.paused_until)
        # a later window's answer can push past an earlier one's: iterate to a fixed point
        while True:
            later = max((w.available_at(at) for w in self.windows), default=at)
            if later <= at:
                return at
            at = later

    def record(self, at: float) -> None:
        for window in self.windows:
            window.record(at)

    def pause_until(self, until: float) -> None:
        self.paused_until = max(self.paused_until, until)
