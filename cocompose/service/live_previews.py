"""Audio of takes that are still being sampled, kept as it becomes final, so a branch can be played as
soon as its first second exists (the project's preview cache only holds finished takes).

Written by the worker thread, read by the app (GUI or audio thread): every call takes a short lock, and
readers get a copy they own.
"""

from __future__ import annotations

import threading

import numpy as np


class LivePreviews:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pieces: dict[int, list[np.ndarray]] = {}
        self._rates: dict[int, int] = {}

    def start(self, node_id: int, rate: int) -> None:
        with self._lock:
            self._pieces[node_id], self._rates[node_id] = [], rate

    def add(self, node_id: int, samples: np.ndarray) -> None:
        if len(samples):
            with self._lock:
                self._pieces.setdefault(node_id, []).append(samples)

    def audio(self, node_id: int) -> tuple[np.ndarray, int] | None:
        """(audio so far, rate) of a take being sampled, or None when there is none."""
        with self._lock:
            if node_id not in self._rates:
                return None
            pieces, rate = list(self._pieces[node_id]), self._rates[node_id]
        return (np.concatenate(pieces) if pieces else np.zeros(0, np.float32)), rate

    def seconds(self, node_id: int) -> float:
        with self._lock:
            rate = self._rates.get(node_id)
            return sum(len(p) for p in self._pieces.get(node_id, ())) / rate if rate else 0.0

    def drop(self, node_id: int) -> None:
        with self._lock:
            self._pieces.pop(node_id, None)
            self._rates.pop(node_id, None)
