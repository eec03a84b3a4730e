"""One progress count across many sampler calls (windows, batch splits, levels)."""

from __future__ import annotations

from engine.prior.sampler import Progress, report


class ProgressTally:
    """Adds up the steps of successive sampler calls into one `progress(done, total)` stream.

    `total` is fixed up front from the window plans, so a progress bar never jumps backwards.
    """

    def __init__(self, progress: Progress | None, total: int):
        self.progress = progress
        self.total = total
        self.done = 0

    def start(self) -> None:
        report(self.progress, self.done, self.total)

    def call(self, steps: int) -> Progress | None:
        """The callback for a sampler call of `steps` draws; the tally moves on by `steps` afterwards."""
        if self.progress is None:
            return None
        offset = self.done

        def forward(done: int, _total: int) -> bool | None:
            return self.progress(offset + done, self.total)

        return forward

    def advance(self, steps: int) -> None:
        self.done += steps
