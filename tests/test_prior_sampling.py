"""Logit filtering and token draws: bit-exact against the reference, plus the per-branch seed contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays as np_arrays

from engine.prior.sampling import (
    filter_logits,
    reference_order_sample,
    sample_next_token,
    sample_tokens_per_branch,
)
from tests.reference import (
    DOCUMENTED_SAMPLING_BASE,
    arrays,
    require_fixture,
    sampling_seed,
    sampling_temperature,
)


def filter_cases() -> list[tuple[str, dict]]:
    """(array key, filter kwargs) for every reference output in filter_logits_ref.npz, from the key names."""
    cases = []
    for key in sorted(arrays("filter_logits_ref")):
        if key.startswith("top_k_"):
            cases.append((key, {"top_k": int(key.removeprefix("top_k_"))}))
        elif key.startswith("top_p_"):
            cases.append((key, {"top_p": float(key.removeprefix("top_p_"))}))
    return cases


def test_filter_logits_equals_reference_bit_for_bit():
    require_fixture()
    ref = arrays("filter_logits_ref")
    cases = filter_cases()
    assert {"top_k", "top_p"} <= {next(iter(kw)) for _, kw in cases}
    logits = torch.from_numpy(ref["logits"])
    for key, kwargs in cases:
        out = filter_logits(logits, **kwargs).numpy()
        np.testing.assert_array_equal(np.isneginf(out), np.isneginf(ref[key]), err_msg=key)
        np.testing.assert_array_equal(out, ref[key], err_msg=key)
    assert torch.equal(filter_logits(logits), logits)


def test_filter_logits_does_not_modify_its_input():
    logits = torch.randn(2, 7)
    before = logits.clone()
    filter_logits(logits, top_k=2)
    filter_logits(logits, top_p=0.5)
    assert torch.equal(logits, before)


def test_filter_logits_rejects_bad_settings():
    logits = torch.zeros(1, 4)
    with pytest.raises(ValueError, match="either top_k or top_p"):
        filter_logits(logits, top_k=2, top_p=0.5)
    with pytest.raises(ValueError):
        filter_logits(logits, top_k=-1)
    with pytest.raises(ValueError):
        filter_logits(logits, top_p=1.5)
    # k above the vocabulary size keeps everything, as the reference's clamp does.
    assert torch.equal(filter_logits(logits, top_k=99), logits)


finite_rows = np_arrays(
    np.float32, st.integers(2, 40), elements=st.floats(-20, 20, width=32, allow_nan=False)
)


@settings(max_examples=200, deadline=None)
@given(row=finite_rows, k=st.integers(1, 40))
def test_top_k_keeps_exactly_the_values_at_or_above_the_kth_largest(row, k):
    logits = torch.from_numpy(row)
    kept = torch.isfinite(filter_logits(logits, top_k=k))
    kth = torch.sort(logits, descending=True).values[min(k, logits.numel()) - 1]
    assert torch.equal(kept, logits >= kth)
    assert kept.sum() >= min(k, logits.numel())
    assert kept[torch.argmax(logits)]


@settings(max_examples=200, deadline=None)
@given(row=finite_rows, p=st.floats(0.01, 1.0))
def test_top_p_keeps_the_shortest_prefix_whose_mass_exceeds_p(row, p):
    logits = torch.from_numpy(row)
    out = filter_logits(logits, top_p=p)
    kept = torch.isfinite(out)
    # The first entry of the sorted order always stays (with ties, whichever of the maxima sorts first).
    assert kept.any() and logits[kept].max() == logits.max()
    assert torch.equal(out[kept], logits[kept])
    # Kept entries are a top slice of the sorted order: nothing dropped outranks anything kept.
    if (~kept).any():
        assert logits[kept].min() >= logits[~kept].max()
    n_kept = int(kept.sum())
    mass = torch.cumsum(F.softmax(torch.sort(logits, descending=True).values, dim=-1), dim=-1)
    if n_kept >= 2:
        assert mass[n_kept - 2] <= p, "a shorter prefix would already exceed p"
    if n_kept < logits.numel():
        assert mass[n_kept - 1] > p


def test_per_branch_draws_do_not_depend_on_the_batch():
    torch.manual_seed(0)
    seeds = [101, 202, 303, 404]
    steps = [torch.randn(len(seeds), 50) for _ in range(6)]

    def run(branch_seeds, rows):
        gens = [torch.Generator().manual_seed(s) for s in branch_seeds]
        return torch.stack([sample_tokens_per_branch(s[rows], gens, temperature=0.9) for s in steps], dim=1)

    batch = run(seeds, slice(None))
    for i, seed in enumerate(seeds):
        alone = run([seed], slice(i, i + 1))
        assert torch.equal(alone[0], batch[i])
    # A branch's draws also survive reordering of the batch.
    reordered = run(seeds[::-1], torch.arange(len(seeds) - 1, -1, -1))
    assert torch.equal(reordered.flip(0), batch)


def test_per_branch_draws_follow_the_softmax_distribution():
    logits = torch.tensor([[2.0, 0.0, -1.0, 1.0, -30.0, 0.5]])
    probs = torch.softmax(logits / 0.9, dim=-1)[0].double()
    gen = torch.Generator().manual_seed(3)
    n = 20000
    draws = torch.stack([sample_tokens_per_branch(logits, [gen], temperature=0.9) for _ in range(n)])[:, 0]
    freq = torch.bincount(draws, minlength=6).double() / n
    # Within 4 standard errors of the binomial for every bin.
    assert torch.all((freq - probs).abs() <= 4 * (probs * (1 - probs) / n).sqrt() + 1e-4), (freq, probs)


def test_per_branch_draws_respect_the_filter():
    logits = torch.randn(3, 30)
    gens = [torch.Generator().manual_seed(s) for s in range(3)]
    allowed = torch.isfinite(filter_logits(logits, top_k=3))
    for _ in range(20):
        tokens = sample_tokens_per_branch(logits, gens, top_k=3)
        assert allowed.gather(1, tokens[:, None]).all()
    with pytest.raises(ValueError, match="generators"):
        sample_tokens_per_branch(logits, gens[:2])


def test_sample_next_token_is_reproducible_from_its_generator():
    logits = torch.randn(4, 64)
    a = sample_next_token(logits, torch.Generator().manual_seed(7), temperature=0.98, top_p=0.9)
    b = sample_next_token(logits, torch.Generator().manual_seed(7), temperature=0.98, top_p=0.9)
    assert a.shape == (4,) and a.dtype == torch.int64
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="temperature"):
        sample_next_token(logits, None, temperature=0.0)


def test_reference_order_sample_is_one_global_multinomial_per_step():
    logits = torch.randn(3, 100)
    torch.manual_seed(5)
    ours = [reference_order_sample(logits, 0.99) for _ in range(4)]
    torch.manual_seed(5)
    plain = [torch.multinomial(F.softmax(logits / 0.99, dim=-1), 1, replacement=True)[:, 0] for _ in range(4)]
    assert all(torch.equal(a, b) for a, b in zip(ours, plain, strict=True))


@pytest.mark.parametrize("prior", sorted(DOCUMENTED_SAMPLING_BASE))
def test_reference_order_sample_replays_the_fixture_draws(prior):
    ref = arrays(f"{prior}_ref")
    matched = []
    for run in ("anc", "primed"):
        torch.manual_seed(sampling_seed(prior, run))
        steps = torch.from_numpy(ref[f"{run}_step_logits"])
        temp = sampling_temperature(run)
        drawn = torch.stack([reference_order_sample(steps[:, t], temp) for t in range(steps.shape[1])], dim=1)
        matched.append(np.array_equal(drawn.numpy(), ref[f"{run}_raw_tokens"]))
    assert all(matched)
