"""Smooth weighted round-robin (nginx's): deterministic, evenly spread, per process.

Each pick adds every provider's weight to its running score, takes the highest score (the first
in config order on a tie) and takes the total weight off the winner. Weights 3:1 give
a, a, b, a | a, a, b, a | ...: exactly 3 of every 4 picks, never a run of all the a's first.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence


class SmoothWeighted:
    def __init__(self, providers: Sequence[str], weights: Mapping[str, int]):
        self.providers = tuple(providers)
        self.weights = {p: int(weights[p]) for p in self.providers}
        self.total = sum(self.weights.values())
        self._scores = {p: 0 for p in self.providers}
        self._lock = threading.Lock()

    def pick(self) -> str:
        with self._lock:
            best = None
            for p in self.providers:
                self._scores[p] += self.weights[p]
                if best is None or self._scores[p] > self._scores[best]:
                    best = p
            assert best is not None
            self._scores[best] -= self.total
            return best

    def order(self) -> tuple[str, ...]:
        """This send's order: the pick first, then the others in config order (its failover)."""
        first = self.pick()
        return (first, *(p for p in self.providers if p != first))
