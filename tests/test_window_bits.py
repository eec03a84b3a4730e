"""bits_by_position (engine/evaluation/window_bits.py) is the upsampler's own loss, split by position."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.api import ComposeEngine, LabelSpec
from engine.evaluation.window_bits import bits_by_position
from tests.compose_model import write_tiny_bundle

pytestmark = pytest.mark.usefixtures("one_thread")

ADA = LabelSpec("Ada Tone", "rock", total_seconds=4.0)


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> ComposeEngine:
    return ComposeEngine.load(write_tiny_bundle(tmp_path_factory.mktemp("bundle"), audible=True))


@pytest.mark.parametrize("level", [0, 1])
def test_a_one_window_song_averages_to_the_upsamplers_loss(engine, level):
    up = engine.bundle.upsamplers[level]
    cfg = up.config
    audio = (
        np.random.default_rng(level).standard_normal(cfg.n_ctx * cfg.raw_to_tokens).astype(np.float32) * 0.3
    )
    bits = bits_by_position(engine, level, [(audio, ADA)], windows_per_song=2)
    assert bits.shape == (cfg.n_ctx,)
    with torch.no_grad():
        codes = engine.bundle.vqvae.encode_levels(torch.from_numpy(audio)[None], [level, level + 1])
        labels = torch.tensor([engine.label(ADA, 0, up).y])
        loss = up.loss(codes[level].long(), labels, codes[level + 1].long())["gen_loss"]
    # the only window there is starts at 0, twice: its per-position bits average to the prior's loss
    assert bits.mean() == pytest.approx(float(loss[0]), rel=1e-5)
    assert np.all(bits > 0)


def test_a_song_shorter_than_a_window_is_refused(engine):
    cfg = engine.bundle.upsamplers[0].config
    short = np.zeros(cfg.n_ctx * cfg.raw_to_tokens // 2, np.float32)
    with pytest.raises(ValueError, match="shorter than one level-0 window"):
        bits_by_position(engine, 0, [(short, ADA)], windows_per_song=1)
