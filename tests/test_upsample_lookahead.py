"""Upsampler windows with a lookahead (engine.sampling.drivers.plan_level): every window but the last
stops short of its end and the next window draws those tokens, so each kept token was drawn with the
upper-level codes after it in view. The windows must still tile the level exactly, the draws they share
with the reference's windows must be the same draws, and an interrupted render must resume exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.api import ComposeEngine, LabelSpec
from engine.prior.sampler import SamplingSettings
from engine.prior.windows import hop_length
from engine.sampling.drivers import plan_level
from engine.sampling.upsample import level_lengths, upsample
from tests.compose_model import write_tiny_bundle
from tests.test_upsample_conditioning import stopped_after_bottom_windows

pytestmark = pytest.mark.usefixtures("one_thread")

ADA = LabelSpec("Ada Tone", "rock")


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> ComposeEngine:
    return ComposeEngine.load(write_tiny_bundle(tmp_path_factory.mktemp("bundle")))


def _labels(engine: ComposeEngine) -> list:
    return [[engine.label(ADA, 0, up)] for up in engine.bundle.upsamplers]


def _top(seed: int, length: int = 32) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 64, (1, length)))


@pytest.mark.parametrize("hop", [0.5, 0.25])
@pytest.mark.parametrize("have", [0, 5, 40])
def test_lookahead_windows_tile_the_level_and_keep_the_window_count(engine, hop, have):
    up = engine.bundle.upsamplers[0]
    n_ctx = up.config.n_ctx
    total = 5 * n_ctx + 7
    reference = plan_level(up, total, have, hop)
    for lookahead in range(1, n_ctx - hop_length(hop, n_ctx)):
        plans = plan_level(up, total, have, hop, lookahead)
        if have == 0:  # the same windows as the reference's (resumed elsewhere, one may have nothing new)
            assert [p.start for p in plans] == [p.start for p in reference]
        held = have
        for plan in plans:
            assert plan.tokens_before == held and plan.new_tokens > 0
            assert plan.prefix_tokens > 0 or plan.start == 0  # every later window continues from codes
            held += plan.new_tokens
        assert held == total
        # every window but the last stops `lookahead` short of its end; the last reaches the level's end
        for plan in plans[:-1]:
            assert plan.start + plan.sample_tokens == plan.end - lookahead
        assert plans[-1].start + plans[-1].sample_tokens == total == plans[-1].end


def test_a_lookahead_that_would_leave_a_window_without_prefix_is_refused(engine):
    up = engine.bundle.upsamplers[0]
    n_ctx = up.config.n_ctx
    room = n_ctx - hop_length(0.5, n_ctx)
    for bad in (-1, room, n_ctx):
        with pytest.raises(ValueError, match="lookahead must leave every window a prefix"):
            plan_level(up, 3 * n_ctx, 0, 0.5, bad)
    # hop 1: windows without a prefix, so only the reference's plan (lookahead 0) exists
    assert plan_level(up, 3 * n_ctx, 0, 1.0, 0)
    with pytest.raises(ValueError, match="lookahead"):
        plan_level(up, 3 * n_ctx, 0, 1.0, 1)


def test_the_first_window_draws_what_the_reference_draws_up_to_its_lookahead(engine):
    ups = engine.bundle.upsamplers
    top, labels = _top(0), _labels(engine)
    plain = upsample(ups, top, labels, seeds=[3])
    ahead = upsample(ups, top, labels, seeds=[3], lookahead_fraction=0.25)
    middle = ups[1].config.n_ctx
    kept = middle - int(0.25 * middle)
    # the middle level is drawn first, from the same upper codes: the same window, the same seed
    assert torch.equal(plain[1][:, :kept], ahead[1][:, :kept])
    # the tokens past the first window's lookahead are drawn in the next window, so they differ
    assert not torch.equal(plain[1][:, kept:], ahead[1][:, kept:])
    for level, length in enumerate(level_lengths(ups, top.shape[1])):
        assert ahead[level].shape == (1, length)


def test_an_interrupted_render_with_a_lookahead_resumes_exactly(engine):
    ups = engine.bundle.upsamplers
    top, labels = _top(1), _labels(engine)
    whole = upsample(ups, top, labels, seeds=[8], lookahead_fraction=0.25)
    finished = stopped_after_bottom_windows(3, ups, top, labels, seeds=[8], lookahead_fraction=0.25)
    assert finished[0].shape[1] < whole[0].shape[1]
    resumed = upsample(ups, top, labels, seeds=[8], lookahead_fraction=0.25, codes=finished)
    for a, b in zip(resumed, whole, strict=True):
        assert torch.equal(a, b)


def test_the_engine_upsamples_with_its_bundles_lookahead(tmp_path):
    folder = write_tiny_bundle(tmp_path / "bundle")
    manifest = json.loads((folder / "bundle.json").read_text())
    (folder / "bundle.json").write_text(json.dumps({**manifest, "upsample_lookahead": 0.25}))
    engine = ComposeEngine.load(folder)
    top = _top(2)
    named = engine.upsample(top[0].numpy(), ADA, 0, 5, [None, None])
    direct = upsample(engine.bundle.upsamplers, top, _labels(engine), seeds=[5], lookahead_fraction=0.25,
                      settings=SamplingSettings(0.99))  # fmt: skip
    for a, b in zip(named, direct, strict=True):
        np.testing.assert_array_equal(a, b[0].numpy())
    reference = engine.upsample(top[0].numpy(), ADA, 0, 5, [None, None], lookahead=0.0)
    assert not np.array_equal(reference[1], named[1])
