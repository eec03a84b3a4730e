"""Label guidance: tokens drawn from log p(x | label) + g * (log p(x | label) - log p(x | neutral)).

The neutral stream is checked against an independent route to the same numbers: a copy of the prior
whose artist row and genre rows hold the tables' means (row 0, "unknown", left out) gives, through the
plain full forward pass, what the cached contrast stream must give. From there the guided draws are
rebuilt step by step with full forward passes and must equal the sampler's, and resuming, forking and
batching a guided window must change nothing.
"""

from __future__ import annotations

import copy
from functools import cache

import pytest
import torch

from engine.official.prior_loader import load_prior
from engine.prior.sampler import SamplingSettings, branch_generators, guide, sample
from tests.reference import arrays, checkpoint_path, resolved_hps

pytestmark = pytest.mark.usefixtures("one_thread")

LABELLED = ("prior_5b", "prior_5b_lyrics", "upsampler_level_1")  # the official upsamplers take labels too


@cache
def prior(kind: str):
    return load_prior(checkpoint_path(kind), kind, resolved_hps(kind), resolved_hps("vqvae"))


def labels_and_prefix(kind: str, rows: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    ref = arrays(f"{kind}_ref")
    labels = torch.from_numpy(ref["y"])[:rows]
    return labels, torch.from_numpy(ref["anc_tokens"][:rows, :length])


def upper_codes(kind: str, rows: int) -> torch.Tensor | None:
    ref = arrays(f"{kind}_ref")
    return torch.from_numpy(ref["z_cond"])[:rows] if "z_cond" in ref else None


def _mean_without_unknown(table: torch.Tensor) -> torch.Tensor:
    return table[1:].float().mean(dim=0).to(table.dtype)


def neutral_copy(model, labels: torch.Tensor):
    """A copy of the prior in which every artist and genre word the labels use is the tables' mean row,
    so its ordinary conditioning on `labels` is the original's neutral conditioning."""
    neutral = copy.deepcopy(model)
    cond = model.y_emb
    n_genre_slots = cond.config.max_bow_genre_size
    artist_mean = _mean_without_unknown(cond.artist_emb.emb.weight)
    genre_mean = _mean_without_unknown(cond.bow_genre_emb.emb.weight)
    with torch.no_grad():
        for artist in labels[:, 3].tolist():
            neutral.y_emb.artist_emb.emb.weight[artist] = artist_mean
        for genre in labels[:, 4 : 4 + n_genre_slots].flatten().tolist():
            if genre >= 0:
                neutral.y_emb.bow_genre_emb.emb.weight[genre] = genre_mean
    return neutral


def everyone_neutral(model):
    """A copy of the prior whose every artist and genre row is its table's mean: every label it is
    given then conditions it exactly as the neutral start token does (the means stay the same)."""
    neutral = copy.deepcopy(model)
    with torch.no_grad():
        for table in (neutral.y_emb.artist_emb.emb.weight, neutral.y_emb.bow_genre_emb.emb.weight):
            table.copy_(_mean_without_unknown(table).expand_as(table))
    return neutral


def next_token_logits(model, labels: torch.Tensor, codes: torch.Tensor, upper=None) -> torch.Tensor:
    """(N, bins) logits for the token after `codes`, by one full forward pass (no cache)."""
    padded = torch.cat([codes, codes.new_zeros(codes.shape[0], 1)], dim=1)
    with torch.no_grad():
        return model.music_logits(model.logits(padded, labels, upper))[:, codes.shape[1]]


@pytest.mark.parametrize("kind", LABELLED)
def test_guided_draws_equal_full_forward_passes_against_a_mean_row_prior(kind):
    model = prior(kind)
    labels, prefix = labels_and_prefix(kind, 2, 5)
    upper = upper_codes(kind, 2)
    neutral = neutral_copy(model, labels)
    strength, seeds, n_new = 1.5, [3, 4], 12
    settings = SamplingSettings(temperature=0.9, guidance=strength)
    result = sample(model, labels, n_new, seeds=seeds, prefix=prefix, upper_tokens=upper, settings=settings)

    # Rebuilt draw by draw on the sampler's own codes (so one float-rounding tie cannot derail the rest):
    # the same uniform number per branch must land on the same token of the full-forward distribution.
    generators, codes = branch_generators(seeds), prefix
    for j in range(n_new):
        guided = guide(
            next_token_logits(model, labels, codes, upper),
            next_token_logits(neutral, labels, codes, upper),
            strength,
        )
        cdf = torch.softmax(guided / 0.9, dim=-1).double().cumsum(dim=-1)
        u = torch.cat([torch.rand(1, dtype=torch.float64, generator=g) for g in generators]) * cdf[:, -1]
        expected = torch.searchsorted(cdf, u.unsqueeze(-1), right=True).squeeze(-1)
        for b in range(len(seeds)):
            near_tie = bool(((cdf[b] - u[b]).abs() < 1e-5).any())  # the two routes round differently
            assert near_tie or int(result.codes[b, j]) == int(expected[b]), (b, j)
        codes = torch.cat([codes, result.codes[:, j : j + 1]], dim=1)
    # The cached contrast stream holds the neutral prior's logits (the last token is still pending).
    contrast = result.resume.contrast
    torch.testing.assert_close(
        contrast.next_logits, next_token_logits(neutral, labels, codes[:, :-1], upper), atol=1e-4, rtol=0
    )


def test_the_guided_distribution_moves_away_from_the_neutral_one():
    own = torch.log_softmax(torch.tensor([[2.0, 1.0, 0.0, -1.0]]), dim=-1)
    neutral = torch.log_softmax(torch.tensor([[0.0, 1.0, 0.0, 1.0]]), dim=-1)
    assert torch.allclose(guide(own, neutral, 0.0), own)
    assert torch.allclose(guide(own, own + 7.0, 3.0), own)  # a contrast equal up to an offset adds nothing
    guided = torch.log_softmax(guide(own, neutral, 2.0), dim=-1)
    assert torch.allclose(guided, torch.log_softmax(3 * own - 2 * neutral, dim=-1))
    # what the label favours over neutral (token 0) gains, what it disfavours (token 3) loses
    assert guided[0, 0] > own[0, 0] and guided[0, 3] < own[0, 3]


def test_a_prior_whose_label_rows_are_the_means_samples_the_same_with_or_without_guidance():
    kind = "prior_5b"
    labels, prefix = labels_and_prefix(kind, 2, 4)
    model = everyone_neutral(prior(kind))
    plain = sample(model, labels, 10, seeds=[8, 9], prefix=prefix)
    guided = sample(model, labels, 10, seeds=[8, 9], prefix=prefix, settings=SamplingSettings(guidance=4.0))
    assert torch.equal(plain.codes, guided.codes)


def test_guided_windows_resume_fork_and_batch_like_one_call():
    kind = "prior_5b"
    model = prior(kind)
    labels, _ = labels_and_prefix(kind, 2, 0)
    settings = SamplingSettings(guidance=2.0)
    once = sample(model, labels, 16, seeds=[5, 6], settings=settings)
    gens = branch_generators([5, 6])
    first = sample(model, labels, 8, seeds=gens, settings=settings)
    second = sample(model, None, 8, seeds=gens, resume=first.resume, settings=settings)
    assert torch.equal(torch.cat([first.codes, second.codes], 1), once.codes)
    # one branch continued into three equals a fresh window primed with its codes
    chosen = first.resume.select([1])
    reused = sample(model, None, 6, seeds=[1, 2, 3], resume=chosen, settings=settings)
    fresh = sample(model, labels[1:2], 6, seeds=[1, 2, 3], prefix=first.codes[1:2], settings=settings)
    assert torch.equal(reused.codes, fresh.codes)
    # and a branch sampled alone draws what it draws as the second row of the batch
    alone = sample(model, labels[1:2], 16, seeds=[6], settings=settings)
    assert torch.equal(alone.codes[0], once.codes[1])
    assert not torch.equal(once.codes, sample(model, labels, 16, seeds=[5, 6]).codes)


def test_guidance_is_refused_where_it_cannot_be_honoured():
    kind = "prior_5b"
    model = prior(kind)
    labels, _ = labels_and_prefix(kind, 1, 0)
    unguided = sample(model, labels, 4, seeds=[1])
    with pytest.raises(ValueError, match="without label guidance"):
        sample(model, None, 4, seeds=[1], resume=unguided.resume, settings=SamplingSettings(guidance=1.0))
    for bad in (-0.5, 11.0, float("nan")):
        with pytest.raises(ValueError, match="guidance must lie in"):
            SamplingSettings(guidance=bad)


def test_label_dropout_scores_the_rows_it_marks_as_the_neutral_stream_and_the_others_as_labelled():
    """Training with label dropout (`label_dropout`) passes a row mask: a marked row's loss is the neutral
    copy's (the independent route above), an unmarked row's the plain prior's, in the same batch."""
    kind = "prior_5b"
    model = prior(kind)
    labels, codes = labels_and_prefix(kind, 2, 24)
    with torch.no_grad():
        mixed = model.loss(codes, labels, neutral=torch.tensor([True, False]))["loss"]
        plain = model.loss(codes, labels)["loss"]
        neutral = neutral_copy(model, labels).loss(codes, labels)["loss"]
    torch.testing.assert_close(mixed[0], neutral[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(mixed[1], plain[1], atol=1e-5, rtol=0)
    assert abs(float(neutral[0] - plain[0])) > 1e-3, "the neutral row was scored with its own labels"
    with pytest.raises(ValueError, match="neutral rows"):
        model.loss(codes, labels, neutral=torch.tensor([True, False, True]))
