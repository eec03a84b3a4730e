"""Incremental decoding with the explicit KV cache reproduces the reference's sampling logits, and
chunked prefill, single steps and forks all agree with each other."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.official.prior_loader import load_prior
from engine.prior.decode_state import DecodeState
from engine.prior.kv_cache import KVCache
from tests.reference import (
    DOCUMENTED_SAMPLING_BASE,
    arrays,
    checkpoint_path,
    resolved_hps,
    sampling_seed,
    sampling_temperature,
)

torch.set_num_threads(2)

PRIORS = tuple(DOCUMENTED_SAMPLING_BASE)


def _load(kind: str):
    return load_prior(checkpoint_path(kind), kind, resolved_hps(kind), resolved_hps("vqvae"))


def _conditioning(ref: dict):
    upper = torch.from_numpy(ref["z_cond"]) if "z_cond" in ref else None
    return torch.from_numpy(ref["y"]), upper


def _step_by_step(model, state, ids: torch.Tensor) -> torch.Tensor:
    """Logits for the first position and after each of ids[:, :-1], one token at a time."""
    rows = [state.next_logits.clone()]
    for j in range(ids.shape[1] - 1):
        rows.append(model.extend_raw(state, ids[:, j : j + 1])[:, 0])
    return torch.stack(rows, dim=1)


def ancestral_reference_order(model, labels, upper, seed: int, temp: float) -> torch.Tensor:
    """The reference's RNG order: seed once, then one multinomial draw per step for the whole batch.

    Returns the raw stream ids drawn (the joint vocabulary for 1b_lyrics), fed back as drawn.
    """
    torch.manual_seed(seed)
    state = model.start(labels, upper)
    drawn = []
    for j in range(model.config.n_ctx):
        probs = torch.softmax(state.next_logits / temp, dim=-1)
        ids = torch.multinomial(probs, 1, True)
        drawn.append(ids)
        if j < model.config.n_ctx - 1:
            model.extend_raw(state, ids)
    return torch.cat(drawn, dim=1)


@pytest.mark.parametrize("kind", PRIORS)
def test_teacher_forced_steps_match_reference(kind):
    """One teacher-forced pass over the fed-back stream, checked against both the reference's own step
    logits and its full forward on the same stream."""
    model, ref = _load(kind), arrays(f"{kind}_ref")
    state = model.start(*_conditioning(ref))
    logits = _step_by_step(model, state, torch.from_numpy(ref["anc_raw_tokens"]))
    np.testing.assert_allclose(logits.numpy(), ref["anc_step_logits"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(logits.numpy(), ref["anc_forward_logits"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("kind", PRIORS)
def test_primed_chunks_then_steps_match_reference(kind):
    model, ref = _load(kind), arrays(f"{kind}_ref")
    n_prime, chunk = int(ref["primed_n_prime"]), int(ref["primed_chunk_size"])
    prefix = torch.from_numpy(ref["primed_tokens"][:, :n_prime])
    state = model.start(*_conditioning(ref))
    for a in range(0, n_prime, chunk):
        model.extend(state, prefix[:, a : a + chunk])
    assert state.music_tokens == n_prime
    logits = _step_by_step(model, state, torch.from_numpy(ref["primed_raw_tokens"]))
    np.testing.assert_allclose(logits.numpy(), ref["primed_step_logits"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("kind", PRIORS)
def test_prefill_in_any_chunking_equals_single_steps(kind):
    model, ref = _load(kind), arrays(f"{kind}_ref")
    ids = torch.from_numpy(ref["anc_raw_tokens"])
    state = model.start(*_conditioning(ref))
    one_by_one = _step_by_step(model, state, ids)
    n = ids.shape[1] - 1
    for chunk in (n, 8, 3, 7):
        state = model.start(*_conditioning(ref))
        rows = [state.next_logits.clone()]
        for a in range(0, n, chunk):
            out = model.extend_raw(state, ids[:, a : min(a + chunk, n)])
            rows.extend(out.unbind(1))
            assert torch.equal(state.next_logits, out[:, -1])
        chunked = torch.stack(rows, dim=1)
        err = (chunked - one_by_one).abs().max().item()
        assert err <= 1e-5, f"chunk {chunk}: max abs err {err:.3g}"


@pytest.mark.parametrize("kind", PRIORS)
def test_cached_logits_match_full_forward(kind):
    model, ref = _load(kind), arrays(f"{kind}_ref")
    codes = torch.from_numpy(ref["anc_tokens"])
    labels, upper = _conditioning(ref)
    state = model.start(labels, upper)
    steps = _step_by_step(model, state, codes + model.config.vocab_shift)
    with torch.no_grad():
        full = model.logits(codes, labels, upper)
    full = full[:, full.shape[1] - codes.shape[1] :]
    np.testing.assert_allclose(steps.numpy(), full.numpy(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", PRIORS)
def test_ancestral_tokens_reproduced_with_reference_rng_order(kind):
    model, ref = _load(kind), arrays(f"{kind}_ref")
    labels, upper = _conditioning(ref)
    seed, temp = sampling_seed(kind, "anc"), sampling_temperature("anc")
    drawn = ancestral_reference_order(model, labels, upper, seed, temp)
    np.testing.assert_array_equal(drawn.numpy(), ref["anc_raw_tokens"])
    np.testing.assert_array_equal(model.codes_from_ids(drawn).numpy(), ref["anc_tokens"])


@pytest.mark.parametrize("kind", ("prior_5b", "prior_1b_lyrics", "upsampler_level_1"))
def test_fork_continues_like_the_original(kind):
    model, ref = _load(kind), arrays(f"{kind}_ref")
    labels, upper = _conditioning(ref)
    prefix = torch.from_numpy(ref["primed_tokens"][:1, :13])
    one = model.start(labels[:1], None if upper is None else upper[:1])
    model.extend(one, prefix)
    branches = model.fork(one, 3)
    assert branches.batch_size == 3 and branches.position == one.position
    follow = torch.tensor([[1], [2], [3]]) % model.config.l_bins
    out = model.extend(branches, follow)
    for b in range(3):
        single = model.fork(one, [0])
        expected = model.extend(single, follow[b : b + 1])
        assert torch.allclose(out[b], expected[0], atol=1e-5, rtol=0)
    # forking copies the cache: the original is untouched by the branches
    again = model.extend(one, follow[:1])
    assert torch.allclose(again[0], out[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ("prior_5b_lyrics", "prior_1b_lyrics", "upsampler_level_1"))
def test_concatenated_states_step_like_each_state_alone(kind):
    model, ref = _load(kind), arrays(f"{kind}_ref")
    labels, upper = _conditioning(ref)
    prefix = torch.from_numpy(ref["primed_tokens"][:2, :9])
    a = model.start(labels[:1], None if upper is None else upper[:1])
    b = model.start(labels[1:2], None if upper is None else upper[1:2])
    model.extend(a, prefix[:1])
    model.extend(b, prefix[1:2])
    both = DecodeState.concat([a, b])
    assert both.batch_size == 2 and both.position == a.position
    follow = torch.tensor([[4, 5], [6, 7]]) % model.config.l_bins
    out = model.extend(both, follow)
    assert torch.allclose(out[:1], model.extend(a, follow[:1]), atol=1e-5, rtol=0)
    assert torch.allclose(out[1:], model.extend(b, follow[1:]), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="same position"):
        DecodeState.concat([a, model.start(labels[:1], None if upper is None else upper[:1])])


@pytest.mark.parametrize("kind", PRIORS)
def test_cache_keeps_only_what_each_attention_kind_needs(kind):
    model = _load(kind)
    cfg = model.config.transformer
    cache = KVCache.allocate(cfg, 2, torch.device("cpu"), torch.float32)
    bc = cfg.block_ctx
    expected = {0: cfg.n_ctx, 1: bc, 2: cfg.n_ctx, 3: 2 * bc, 6: cfg.encoder_len, 7: cfg.prime_keep}
    for kind_d, layer in zip(cfg.attn_funcs, cache.layers, strict=True):
        assert layer.keys.shape == (2, expected[kind_d], cfg.n_state)


def test_window_is_bounded():
    model, ref = _load("prior_5b"), arrays("prior_5b_ref")
    state = model.start(*_conditioning(ref))
    model.extend(state, torch.zeros(2, model.config.n_ctx - 1, dtype=torch.long))
    with pytest.raises(ValueError, match="window holds"):
        model.extend(state, torch.zeros(2, 1, dtype=torch.long))
