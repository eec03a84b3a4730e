"""Lyric alignment against the reference's `get_alignment` on runs A (5b_lyrics-like) and B (1b-like)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.sampling.alignment import get_alignment
from tests.reference import arrays
from tests.test_drivers import run_labels, run_meta
from tests.test_sampler import prior

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on shared cores

# Run B's metadata records no hop fractions; its `hps` kept the reference default (top level 0.125).
REFERENCE_DEFAULT_TOP_HOP = 0.125


def top_hop(run: str) -> float:
    return run_meta(run).get("hop_fraction", [REFERENCE_DEFAULT_TOP_HOP])[-1]


def top_kind(run: str) -> str:
    meta = run_meta(run)
    return meta["models"][-1] if "models" in meta else meta["model"]


@pytest.mark.parametrize("run", ["A", "B"])
def test_alignment_item0_matches_reference(run):
    ref = arrays("windowed_sampling_ref")
    kind = top_kind(run)
    model = prior(kind)
    codes = torch.from_numpy(ref[f"{run}_zs_l{model.config.level}"])
    got = get_alignment(model, codes, run_labels(kind, run), top_hop(run), items=[0])[0]
    assert got.shape == tuple(ref[f"{run}_alignment_item0_shape"])
    cols = ref[f"{run}_alignment_item0_cols"]
    np.testing.assert_array_equal(np.flatnonzero(np.abs(got).sum(0)), cols)
    np.testing.assert_allclose(got[:, cols], ref[f"{run}_alignment_item0_vals"], atol=1e-5, rtol=0)


def test_earliest_window_wins_where_windows_overlap():
    ref = arrays("windowed_sampling_ref")
    model = prior(top_kind("A"))
    ctx = model.config.n_ctx
    codes = torch.from_numpy(ref[f"A_zs_l{model.config.level}"])[:1]
    labels = run_labels(top_kind("A"), "A")[:1]
    got = get_alignment(model, codes, labels, top_hop("A"))[0]
    # Window 0 alone: on its lyric columns, rows [0, n_ctx) must hold its weights, not later hops'.
    first = get_alignment(model, codes[:, :ctx], labels, top_hop("A"))[0]
    cols = np.flatnonzero(np.abs(first).sum(0))
    assert len(cols) == model.config.n_tokens
    np.testing.assert_array_equal(got[:ctx, cols], first[:, cols])
    assert np.abs(got[ctx:]).sum() > 0


def test_short_song_is_padded_then_trimmed():
    ref = arrays("windowed_sampling_ref")
    kind = top_kind("B")
    model = prior(kind)
    short = model.config.n_ctx // 2
    codes = torch.from_numpy(ref[f"B_zs_l{model.config.level}"])[:1, :short]
    labels = run_labels(kind, "B")[:1]
    got = get_alignment(model, codes, labels, top_hop("B"))[0]
    padded = torch.cat([codes, torch.zeros(1, model.config.n_ctx - short, dtype=torch.long)], 1)
    full = get_alignment(model, padded, labels, top_hop("B"))[0]
    assert got.shape == (short, len(labels[0].full_tokens))
    np.testing.assert_array_equal(got, full[:short])


def test_prior_without_lyrics_has_no_alignment():
    with pytest.raises(ValueError, match="no lyric alignment"):
        get_alignment(prior("prior_5b"), torch.zeros(1, 4, dtype=torch.long), [], 0.125)
