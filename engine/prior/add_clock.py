"""A trained top prior given a beat clock (`engine.prior.beat_clock`) that starts out silent.

The clock's two tables are added at zero, so the grown prior's logits equal the trained one's until a
fine-tune teaches the tables; its label vector gains the clock's three entries.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from engine.prior.builders import build_prior

# The PriorHparams fields that set the clock, and the weights it adds.
CLOCK_FIELDS = frozenset({"beat_bins", "bar_beats"})
CLOCK_TABLES = frozenset({"y_emb.beat_phase_emb.emb.weight", "y_emb.bar_beat_emb.emb.weight"})


def with_beat_clock(prior, beat_bins: int, bar_beats: int):
    """A copy of `prior` (same weights, same device) with a beat clock of these sizes; the prior itself
    when it has exactly that clock already."""
    cfg = prior.config
    labels = cfg.labels
    if labels is None or not labels.include_timing:
        raise ValueError("only a top prior with timing labels can take a beat clock")
    if beat_bins < 1 or bar_beats < 1:
        raise ValueError(f"a beat clock needs beat_bins and bar_beats >= 1, got {beat_bins}, {bar_beats}")
    if (labels.beat_bins, labels.bar_beats) == (beat_bins, bar_beats):
        return prior
    if labels.beat_clock:
        raise ValueError(
            f"this prior already has a beat clock of {labels.beat_bins} phase bins and {labels.bar_beats} "
            "beats per bar; its tables cannot be resized"
        )
    device = next(prior.parameters()).device
    clocked = replace(labels, beat_bins=beat_bins, bar_beats=bar_beats)
    grown = build_prior(replace(cfg, labels=clocked), device=device)
    missing, unexpected = grown.load_state_dict(prior.state_dict(), strict=False)
    if set(missing) != CLOCK_TABLES or unexpected:
        raise RuntimeError(f"unexpected weights while adding a beat clock: {missing}, {unexpected}")
    with torch.no_grad():
        for name in CLOCK_TABLES:
            grown.get_parameter(name).zero_()
    grown.train(prior.training)
    return grown
