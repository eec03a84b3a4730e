"""The low-precision path (bf16/fp16 transformer stacks, used on GPUs) stays close to float32.

Run on the CPU here, so it checks the dtype plumbing (casts at the stack's edges, float32 layer norms,
softmax and outputs, a low-precision KV cache) rather than any GPU kernel.
"""

from __future__ import annotations

import pytest
import torch

from engine.official import PRIOR_KINDS, load_prior
from tests.reference import arrays, checkpoint_path, resolved_hps

# Relative to the largest logit: fp16 keeps ~11 mantissa bits, bf16 ~8, through dozens of layers.
TOLERANCE = {torch.float16: 0.01, torch.bfloat16: 0.03}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("kind", PRIOR_KINDS)
def test_low_precision_logits_and_cache_follow_float32(kind, dtype):
    ref = arrays(f"{kind}_ref")
    tokens, labels = torch.from_numpy(ref["z"]), torch.from_numpy(ref["y"])
    upper = torch.from_numpy(ref["z_cond"]) if "z_cond" in ref else None
    exact = load_prior(checkpoint_path(kind), kind, resolved_hps(kind), resolved_hps("vqvae"))
    low = load_prior(checkpoint_path(kind), kind, resolved_hps(kind), resolved_hps("vqvae"), dtype=dtype)
    assert low.prior.transformer.compute_dtype == dtype
    assert low.prior.x_out.weight.dtype == torch.float32  # outputs and embeddings stay float32

    with torch.no_grad():
        expected = exact.logits(tokens, labels, upper)
        got = low.logits(tokens, labels, upper)
        state = low.start(labels, upper)
        stepped = low.extend(state, tokens[:, :12])
    assert got.dtype == torch.float32
    scale = expected.abs().max()
    assert (got - expected).abs().max() <= TOLERANCE[dtype] * scale
    # Stepped row j predicts token j + 1: the full pass's music row j + 1.
    music = expected[:, -tokens.shape[1] :][:, 1:13]
    assert (stepped - music).abs().max() <= TOLERANCE[dtype] * scale
    # The distributions a sampler draws from barely move.
    tv = 0.5 * (got.softmax(-1) - expected.softmax(-1)).abs().sum(-1)
    assert tv.max() < 0.1
