"""Publication rate limiting (draft section 3.4): a token bucket per publisher and topic.

Sans-IO: the caller passes the time. The table is bounded; the least recently used
bucket goes first when it is full.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable


class PublishRateLimiter:
    def __init__(self, rate: float, burst: int, max_entries: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_entries = max_entries
        # key -> (tokens, time of last refill)
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: Hashable, now: float) -> int:
        """0 if a publication may go ahead now; otherwise the whole seconds to wait (the
        4.29's Max-Age, at least 1)."""
        if self.rate <= 0:
            return 0
        buckets = self._buckets
        entry = buckets.get(key)
        if entry is None:
            tokens = self.burst
            if len(buckets) >= self.max_entries:
                buckets.popitem(last=False)
        else:
            tokens = min(self.burst, entry[0] + (now - entry[1]) * self.rate)
            buckets.move_to_end(key)
        if tokens >= 1.0:
            buckets[key] = (tokens - 1.0, now)
            return 0
        buckets[key] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.rate))

    def clear(self) -> None:
        self._buckets.clear()
