"""The beat clock: where each position of a window falls inside its beat and its bar (pure functions).

A conditioner of our own; no official prior has one. A song's tempo, its beats per bar and the sample
where one of its bars starts (the anchor) are three more entries of the label vector, and every position
of a window is embedded by its phase inside the beat and by its beat inside the bar, beside the timing
signal. Without it a prior must keep the beat from the codes alone, and the default model's did not: its
songs drifted off their genre's tempo within a few seconds (docs/MODELS.md). With it the beat is an
input, as a click track is for a musician.

Label entries: tempo in hundredths of a beat per minute (0: the song has no clock, every position gets
bin 0), beats per bar, anchor in samples at the model's rate. The arithmetic is integer, so a position's
bins are the same on every machine and for every way a song is cut into windows.
"""

from __future__ import annotations

import torch

from engine.prior.tempo import NO_CLOCK, TEMPO_SCALE


def clock_bins(
    offset: torch.Tensor,
    sample_length: torch.Tensor,
    slots: torch.Tensor,
    *,
    n_time: int,
    sr: float,
    beat_bins: int,
    bar_beats: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(phase, beat) int64 bins, each (N, n_time), of the n_time positions of each item's window.

    offset, sample_length: (N,) samples; slots: (N, 3) [tempo x TEMPO_SCALE, beats per bar, anchor].
    phase: 1 + the position's share of its beat in beat_bins steps; beat: 1 + its beat's index in the
    bar (beats beyond bar_beats share the last row). Both are 0 (NO_CLOCK) where the tempo is 0.
    """
    offset = offset.long().view(-1, 1)
    length = sample_length.long().view(-1, 1)
    steps = torch.arange(n_time, dtype=torch.int64, device=offset.device).view(1, n_time)
    position = offset + steps * length // n_time
    tempo, per_bar, anchor = (slots[:, i : i + 1].long() for i in range(3))
    if bool((tempo < 0).any() or ((tempo > 0) & (per_bar < 1)).any()):
        raise ValueError(f"a beat clock takes a tempo >= 0 and beats per bar >= 1, got {slots.tolist()}")
    per_beat = TEMPO_SCALE * 60 * round(sr)  # beats = (position - anchor) * tempo / per_beat
    scaled = (position - anchor) * tempo
    whole = torch.div(scaled, per_beat, rounding_mode="floor")
    phase = 1 + (scaled - whole * per_beat) * beat_bins // per_beat
    beat = 1 + torch.remainder(whole, per_bar.clamp(min=1)).clamp(max=bar_beats - 1)
    free = tempo <= 0
    return phase.masked_fill(free, NO_CLOCK), beat.masked_fill(free, NO_CLOCK)
