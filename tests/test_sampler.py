"""One-window sampler: per-branch seeds, shared-prefix fork, cancellation, resumption, the 1b music mask,
and exact reproduction of the reference's primed/ancestral tokens in its RNG order."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch

from engine.official.prior_loader import load_prior
from engine.prior.sampler import (
    REFERENCE_RNG,
    Cancelled,
    SamplingSettings,
    branch_generators,
    prefill,
    push,
    sample,
)
from tests.reference import DOCUMENTED_SAMPLING_BASE, arrays, checkpoint_path, resolved_hps, sampling_seed

FIXTURE_SEEDS = DOCUMENTED_SAMPLING_BASE  # only the prior names; the seeds come from sampling_seed()


# Tiny models on shared cores; the reference fixture is also bit-exact single-threaded.
pytestmark = pytest.mark.usefixtures("one_thread")


@cache
def prior(kind: str):
    return load_prior(checkpoint_path(kind), kind, resolved_hps(kind), resolved_hps("vqvae"))


def conditioning(kind: str, rows=slice(None)):
    ref = arrays(f"{kind}_ref")
    upper = torch.from_numpy(ref["z_cond"])[rows] if "z_cond" in ref else None
    return torch.from_numpy(ref["y"])[rows], upper


def some_prefix(kind: str, length: int) -> torch.Tensor:
    return torch.from_numpy(arrays(f"{kind}_ref")["anc_tokens"][:, :length])


@pytest.mark.parametrize("kind", ["prior_5b", "upsampler_level_1"])
def test_a_branch_depends_only_on_its_seed(kind):
    model = prior(kind)
    labels, upper = conditioning(kind, slice(0, 1))
    prefix = some_prefix(kind, 9)[:1]
    n_new = model.config.n_ctx // 5
    seeds = [11, 22, 33, 44]
    batch = sample(model, labels, n_new, seeds=seeds, upper_tokens=upper, prefix=prefix)
    alone = model.sample(labels, n_new, seeds=[seeds[2]], upper_tokens=upper, prefix=prefix)
    assert batch.codes.shape == (4, n_new)
    assert torch.equal(batch.codes[2], alone.codes[0])
    # Different seeds do differ (the batch is not one branch repeated).
    assert len({tuple(row.tolist()) for row in batch.codes}) > 1


def test_shared_prefix_prefills_once_then_forks_like_per_branch_prefill():
    kind = "prior_5b_lyrics"
    model = prior(kind)
    labels, _ = conditioning(kind, slice(0, 1))
    prefix = some_prefix(kind, 13)[:1]
    forked = prefill(model, labels, None, prefix, 3, chunk_size=5)
    separate = model.start(labels.expand(3, -1))
    push(model, separate, prefix.expand(3, -1), chunk_size=5)
    assert forked.position == separate.position and forked.batch_size == 3
    torch.testing.assert_close(forked.next_logits, separate.next_logits, atol=1e-5, rtol=0)
    follow = torch.tensor([[1, 2], [3, 4], [5, 6]]) % model.config.l_bins
    torch.testing.assert_close(
        model.extend(forked, follow), model.extend(separate, follow), atol=1e-5, rtol=0
    )


def test_progress_false_cancels_between_tokens():
    model = prior("prior_5b")
    labels, _ = conditioning("prior_5b")
    calls = []

    def stop_after_five(done, total):
        calls.append((done, total))
        return done < 5

    n_new = model.config.n_ctx // 4
    with pytest.raises(Cancelled) as stop:
        sample(model, labels, n_new, seeds=[1, 2], progress=stop_after_five)
    assert calls == [(i, n_new) for i in range(6)]
    assert stop.value.codes.shape == (2, 5)
    full = sample(model, labels, n_new, seeds=[1, 2], progress=lambda d, t: None)
    assert torch.equal(full.codes[:, :5], stop.value.codes)


def test_progress_may_raise_cancelled_itself():
    def refuse(done, total):
        raise Cancelled("user pressed stop")

    with pytest.raises(Cancelled, match="user pressed stop"):
        sample(prior("prior_5b"), conditioning("prior_5b")[0], 4, seeds=[1, 2], progress=refuse)


def test_resuming_with_the_same_generators_equals_one_call():
    model = prior("prior_5b")
    labels, _ = conditioning("prior_5b")
    half = model.config.n_ctx // 4
    once = sample(model, labels, 2 * half, seeds=[5, 6])
    gens = branch_generators([5, 6])
    first = sample(model, labels, half, seeds=gens)
    second = sample(model, None, half, seeds=gens, resume=first.resume)
    assert torch.equal(torch.cat([first.codes, second.codes], 1), once.codes)
    assert second.resume.window_tokens == 2 * half


def test_resume_one_branch_into_many_equals_recomputing_the_window():
    model = prior("prior_5b")
    labels, _ = conditioning("prior_5b", slice(0, 1))
    first = sample(model, labels, 10, seeds=[7, 8, 9])
    chosen = first.resume.select([1])
    reused = sample(model, None, 6, seeds=[1, 2, 3], resume=chosen)
    fresh = sample(model, labels, 6, seeds=[1, 2, 3], prefix=first.codes[1:2])
    assert torch.equal(reused.codes, fresh.codes)
    # The caller's resume state is not consumed: it can be continued again.
    again = sample(model, None, 6, seeds=[1, 2, 3], resume=chosen)
    assert torch.equal(again.codes, reused.codes)


def test_window_limit_is_enforced():
    model = prior("prior_5b")
    labels, _ = conditioning("prior_5b")
    with pytest.raises(ValueError, match="exceed the window"):
        sample(model, labels, 2, seeds=[1, 2], prefix=some_prefix("prior_5b", model.config.n_ctx - 1))
    with pytest.raises(ValueError, match="resume has 2 branches"):
        sample(model, labels, 2, seeds=[1, 2, 3], resume=sample(model, labels, 1, seeds=[1, 2]).resume)
    with pytest.raises(ValueError):
        SamplingSettings(temperature=0.0)


def _spy_fed_ids(monkeypatch, model) -> list[torch.Tensor]:
    fed = []
    original = model.extend_raw

    def spy(state, ids):
        fed.append(torch.as_tensor(ids).clone())
        return original(state, ids)

    monkeypatch.setattr(model, "extend_raw", spy)
    return fed


def test_1b_samples_music_codes_only_unless_reference_quirks(monkeypatch):
    kind = "prior_1b_lyrics"
    model = prior(kind)
    labels, _ = conditioning(kind)
    shift = model.config.vocab_shift
    n_new = min(16, model.config.n_ctx)
    # A hot temperature flattens the joint distribution, so lyric ids would be drawn often.
    hot = SamplingSettings(temperature=50.0)
    fed = _spy_fed_ids(monkeypatch, model)
    sample(model, labels, n_new, seeds=[1, 2], settings=hot)
    assert fed and all(bool((ids >= shift).all()) for ids in fed)
    fed.clear()
    quirky = SamplingSettings(temperature=50.0, reference_quirks=True)
    result = sample(model, labels, n_new, seeds=[1, 2], settings=quirky)
    lyric_drawn = torch.cat(fed, 1) < shift
    assert bool(lyric_drawn.any()), "expected the joint-vocabulary draw to pick some lyric ids"
    assert bool((result.codes[:, :-1][lyric_drawn] == 0).all())  # returned as code 0, like the reference


@pytest.mark.parametrize("kind", list(FIXTURE_SEEDS))
def test_primed_tokens_reproduced_in_reference_rng_order(kind):
    """The fixture's primed run: seed S+8, prefix pushed in chunks, one draw per step for the batch."""
    model, ref = prior(kind), arrays(f"{kind}_ref")
    labels, upper = conditioning(kind)
    n_prime, chunk = int(ref["primed_n_prime"]), int(ref["primed_chunk_size"])
    torch.manual_seed(sampling_seed(kind, "primed"))
    result = sample(
        model,
        labels,
        model.config.n_ctx - n_prime,
        seeds=REFERENCE_RNG,
        upper_tokens=upper,
        prefix=torch.from_numpy(ref["primed_tokens"][:, :n_prime]),
        settings=SamplingSettings(temperature=1.0, chunk_size=chunk, reference_quirks=True),
    )
    np.testing.assert_array_equal(result.codes.numpy(), ref["primed_tokens"][:, n_prime:])
