"""A prior re-patterned (`engine.prior.repattern`) keeps every weight, reads other positions, and
re-patterned back computes exactly what it did."""

from __future__ import annotations

import pytest
import torch

from cocompose.models import DEFAULT_MODEL_DIR
from engine import checkpoint
from engine.prior.config import DENSE
from engine.prior.repattern import with_attention_pattern

pytestmark = pytest.mark.usefixtures("one_thread")


def _logits(prior, codes, labels):
    with torch.no_grad():
        return prior.logits(codes, labels)


def test_a_prior_re_patterned_and_back_computes_what_it_did_and_in_between_reads_otherwise():
    prior = checkpoint.load_model(DEFAULT_MODEL_DIR / "prior_default", "prior").eval()
    cfg = prior.config
    generator = torch.Generator().manual_seed(0)
    codes = torch.randint(0, cfg.l_bins, (2, cfg.n_ctx), generator=generator)
    clock = [12_000, 4, 0]  # 120 bpm in 4/4, for a prior with a beat clock (cut off for one without)
    labels = torch.tensor(
        [[30 * 16000, 0, 16000 * 30 - cfg.n_ctx * 128, 1, 2, *clock], [20 * 16000, 0, 0, 3, 1, *clock]]
    )
    labels = labels[:, : cfg.label_len]
    before = _logits(prior, codes, labels)

    dense = with_attention_pattern(prior, attn_order=0)
    assert dense.config.transformer.attn_funcs == (DENSE,) * cfg.transformer.depth
    for key, value in prior.state_dict().items():
        assert torch.equal(dense.state_dict()[key], value), key
    changed = _logits(dense, codes, labels)
    # The first block's first rows see the same positions either way; later rows reach further back.
    assert not torch.allclose(changed[:, cfg.n_ctx // 2 :], before[:, cfg.n_ctx // 2 :], atol=1e-3)

    back = with_attention_pattern(dense, attn_order=2, blocks=cfg.transformer.blocks)
    assert back.config == cfg
    assert torch.equal(_logits(back, codes, labels), before)
    assert with_attention_pattern(prior) is prior


def test_a_pattern_that_does_not_fit_the_context_is_refused_by_name():
    prior = checkpoint.load_model(DEFAULT_MODEL_DIR / "prior_default", "prior")
    with pytest.raises(ValueError, match="cannot be split into 7 blocks"):
        with_attention_pattern(prior, blocks=7)
    with pytest.raises(ValueError, match="attn_order 5"):
        with_attention_pattern(prior, attn_order=5)
