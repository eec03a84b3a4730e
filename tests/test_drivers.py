"""Window drivers against the reference's windowed runs A (3 levels) and B (co-composition), plus the
per-branch contracts: resumption from any finished window, batch-split invariance, cancellation."""

from __future__ import annotations

import itertools
import json
import math
from functools import cache

import numpy as np
import pytest
import torch

from engine.prior.labels import Label, LabelConfig, label_from_ids
from engine.prior.sampler import REFERENCE_RNG, Cancelled, SamplingSettings, push
from engine.prior.windows import partial_window
from engine.sampling.drivers import ancestral, continue_codes, plan_level, window_job, windowed
from engine.sampling.upsample import level_lengths, upsample
from tests.reference import arrays, hparams, require_fixture, resolved_hps
from tests.test_sampler import prior

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on shared cores


@cache
def run_meta(run: str) -> dict:
    return json.loads((require_fixture() / "meta.json").read_text())["windowed"][run]


def run_labels(kind: str, run: str) -> list:
    """One base Label per sample, as the run's labeller made them (offset 0, whole lyrics)."""
    meta, hps, d = run_meta(run), resolved_hps(kind), hparams()["derived"][kind]
    config = LabelConfig(hps["labels_v3"], hps["max_bow_genre_size"], d["n_tokens"], d["sample_length"])
    full = arrays("windowed_sampling_ref")[f"{run}_lyrics_full_tokens"].tolist()
    label = label_from_ids(config, meta["artist_id"], meta["genre_ids"], full, meta["total_length_label"], 0)
    return [label] * meta["n_samples"]


def run_a_settings(level: int) -> tuple[SamplingSettings, int]:
    kwargs = run_meta("A")["sampling_kwargs"][level]
    settings = SamplingSettings(kwargs["temp"], chunk_size=kwargs["chunk_size"], reference_quirks=True)
    return settings, kwargs["max_batch_size"]


def run_a_top_level():
    """Seed once, then the top level with the run's batch split, as `_sample` ran it."""
    meta = run_meta("A")
    top = prior(meta["models"][-1])
    settings, max_batch = run_a_settings(top.config.level)
    torch.manual_seed(meta["seed"])
    return ancestral(
        top,
        meta["sample_length"] // top.config.raw_to_tokens,
        seeds=REFERENCE_RNG,
        n_samples=meta["n_samples"],
        labels=run_labels(meta["models"][-1], "A"),
        hop_fraction=meta["hop_fraction"][-1],
        settings=settings,
        max_batch_size=max_batch,
    )


def test_run_a_top_and_next_level_reproduced_exactly_in_reference_rng_order():
    meta, ref = run_meta("A"), arrays("windowed_sampling_ref")
    top_codes = run_a_top_level()
    top_level = len(meta["models"]) - 1
    np.testing.assert_array_equal(top_codes.numpy(), ref[f"A_zs_l{top_level}"])
    # The global RNG runs on into the first upsampler, so its codes are reproducible too.
    level = top_level - 1
    model = prior(meta["models"][level])
    settings, max_batch = run_a_settings(level)
    codes = windowed(
        model,
        meta["sample_length"] // model.config.raw_to_tokens,
        seeds=REFERENCE_RNG,
        n_samples=meta["n_samples"],
        labels=run_labels(meta["models"][level], "A"),
        upper_codes=top_codes,
        hop_fraction=meta["hop_fraction"][level],
        settings=settings,
        max_batch_size=max_batch,
    )
    np.testing.assert_array_equal(codes.numpy(), ref[f"A_zs_l{level}"])


@pytest.mark.slow
def test_run_a_all_levels_reproduced_exactly_through_upsample():
    """The whole run through `upsample` (about 40 upsampler windows: slow on shared cores)."""
    meta, ref = run_meta("A"), arrays("windowed_sampling_ref")
    top_codes = run_a_top_level()
    lower = range(len(meta["models"]) - 1)
    codes = upsample(
        [prior(meta["models"][lv]) for lv in lower],
        top_codes,
        [run_labels(meta["models"][lv], "A") for lv in lower],
        seeds=REFERENCE_RNG,
        hop_fraction=meta["hop_fraction"],
        settings=[run_a_settings(lv)[0] for lv in lower],
        max_batch_size=run_a_settings(0)[1],
    )
    for level in lower:
        np.testing.assert_array_equal(codes[level].numpy(), ref[f"A_zs_l{level}"], err_msg=f"level {level}")


def test_run_a_windows_replayed_with_recorded_prefixes():
    """Each window's plan, prefix, labels and upper codes, and teacher-forced logits on the recorded codes."""
    meta, ref = run_meta("A"), arrays("windowed_sampling_ref")
    windows = meta["windows"]
    for i, window in enumerate(windows):
        level = window["level"]
        kind = meta["models"][level]
        model = prior(kind)
        codes = torch.from_numpy(ref[f"A_zs_l{level}"])
        total = codes.shape[1]
        have = window["tokens_before"]
        plan = plan_level(model, total, have, meta["hop_fraction"][level])[0]
        assert (plan.level, plan.start) == (level, window["start"]), f"window {i}"
        upper = torch.from_numpy(ref[f"A_zs_l{level + 1}"]) if f"A_zs_l{level + 1}" in ref else None
        job = window_job(model, plan, codes[:, :have], run_labels(kind, "A"), upper)
        assert all(call["z_prefix_len"] == job.prefix.shape[1] for call in window["batch_calls"])
        np.testing.assert_array_equal(job.labels.numpy(), ref[f"A_win{i:03d}_y"], err_msg=f"window {i}")
        if job.upper is not None:
            np.testing.assert_array_equal(job.upper.numpy(), ref[f"A_win{i:03d}_z_cond"])
        if i in (0, 1, len(windows) - 1) or plan.start == 0:
            temperature = run_a_settings(level)[0].temperature
            check_teacher_forced(model, job, codes[:, plan.start : plan.end], temperature)


def check_teacher_forced(model, job, window_codes: torch.Tensor, temperature: float) -> None:
    """Our window computation, fed the recorded codes, must agree with a full forward and find them likely."""
    state = model.start(job.labels, job.upper)
    push(model, state, job.prefix, chunk_size=7)
    rows = [state.next_logits.unsqueeze(1)]
    new = window_codes[:, job.prefix.shape[1] :]
    if new.shape[1] > 1:
        rows.append(model.extend(state, new[:, :-1]))
    steps = model.music_logits(torch.cat(rows, 1))
    with torch.no_grad():
        full = model.music_logits(model.logits(window_codes, job.labels, job.upper))
    torch.testing.assert_close(steps, full[:, job.prefix.shape[1] :], atol=1e-4, rtol=0)
    # The recorded new codes were drawn from these logits at this temperature: their total log-prob
    # must sit within a few standard deviations of its expectation (-sum of entropies). A shifted,
    # misconditioned or wrongly tempered distribution lands far outside (|z| of 4 to 40 here).
    logp = torch.log_softmax(full[:, job.prefix.shape[1] :] / temperature, -1)
    p = logp.exp()
    drawn = logp.gather(-1, new.unsqueeze(-1)).squeeze(-1).sum()
    mean = (p * logp).sum()
    var = ((p * logp**2).sum(-1) - (p * logp).sum(-1) ** 2).sum()
    z = float((drawn - mean) / var.sqrt())
    assert abs(z) < 5, f"recorded codes are implausible under our logits (z = {z:.1f})"


def test_run_b_co_composition_reproduced_and_windows_match():
    meta, ref = run_meta("B"), arrays("windowed_sampling_ref")
    model = prior(meta["model"])
    labels = run_labels(meta["model"], "B")
    kwargs = meta["sampling_kwargs_after_run"]
    settings = SamplingSettings(kwargs["temp"], chunk_size=kwargs["chunk_size"], reference_quirks=True)
    torch.manual_seed(meta["seed"])
    codes = torch.zeros(meta["n_samples"], 0, dtype=torch.long)
    for i, (n_new, window) in enumerate(zip(meta["tokens_to_sample_steps"], meta["windows"], strict=True)):
        plan = partial_window(model.config.level, codes.shape[1], n_new, model.config.n_ctx)
        job = window_job(model, plan, codes, labels, None)
        assert (plan.start, plan.sample_tokens) == (window["start"], window["sample_tokens"])
        assert job.prefix.shape[1] == window["batch_calls"][0]["z_prefix_len"]
        np.testing.assert_array_equal(job.labels.numpy(), ref[f"B_win{i:03d}_y"])
        result = continue_codes(model, codes, n_new, seeds=REFERENCE_RNG, labels=labels, settings=settings)
        assert result.start == plan.start
        codes = torch.cat([codes, result.codes], 1)
    np.testing.assert_array_equal(codes.numpy(), ref["B_zs_l2"])


def plain_top_labels() -> list[Label]:
    """The 5b-like prior's fixture label (no lyrics; a total length its timing range accepts)."""
    return [Label(y=arrays("prior_5b_ref")["y"][0].tolist(), full_tokens=[], lyric_indices=[])]


def small_top_run(**overrides):
    """A top-level run of about two windows on the plain 5b-like prior, sizes from its config."""
    model = prior("prior_5b")
    ctx = model.config.n_ctx
    kwargs = {
        "seeds": [3, 4],
        "labels": plain_top_labels(),
        "hop_fraction": 0.5,
        "settings": SamplingSettings(temperature=0.99, chunk_size=8),
    }
    kwargs.update(overrides)
    return model, ctx + ctx // 4, kwargs


def test_resuming_from_any_finished_window_equals_the_uninterrupted_run():
    model, total, kwargs = small_top_run()
    snapshots = []
    full = windowed(model, total, on_window=lambda plan, codes: snapshots.append(codes.clone()), **kwargs)
    assert full.shape == (2, total) and len(snapshots) >= 2
    for finished in snapshots[:-1]:
        assert torch.equal(windowed(model, total, codes=finished, **kwargs), full)
    # Splitting the batch changes nothing either: each branch has its own generators.
    assert torch.equal(windowed(model, total, max_batch_size=1, **kwargs), full)


def test_cancelled_driver_hands_back_finished_windows_and_resumes():
    model, total, kwargs = small_top_run()
    full = windowed(model, total, **kwargs)
    seen = []

    def stop_in_second_window(done, all_steps):
        seen.append((done, all_steps))
        return done <= model.config.n_ctx + 2

    with pytest.raises(Cancelled) as stop:
        windowed(model, total, progress=stop_in_second_window, **kwargs)
    assert stop.value.codes.shape == (2, model.config.n_ctx)  # the first window only
    assert all(b[0] >= a[0] and b[1] == total for a, b in itertools.pairwise(seen))
    assert torch.equal(windowed(model, total, codes=stop.value.codes, **kwargs), full)


def test_continue_codes_reuses_the_window_state_while_it_fits(monkeypatch):
    model = prior("prior_5b")
    labels = plain_top_labels()
    step = model.config.n_ctx // 4
    starts = []
    original = model.start
    monkeypatch.setattr(model, "start", lambda *a, **k: starts.append(1) or original(*a, **k))
    first = continue_codes(model, torch.zeros(1, 0, dtype=torch.long), step, seeds=[1, 2, 3], labels=labels)
    history = first.codes[1:2]  # the user keeps branch 1
    reused = continue_codes(model, history, step, seeds=[4, 5], labels=labels, previous=first.select([1]))
    assert len(starts) == 1, "the second step should extend the cached window, not restart it"
    fresh = continue_codes(model, history, step, seeds=[4, 5], labels=labels)
    assert torch.equal(reused.codes, fresh.codes)
    # Past the context the window slides: its start moves and its labels follow.
    long = torch.cat([history.expand(2, -1), reused.codes, fresh.codes, fresh.codes, fresh.codes], 1)
    slid = continue_codes(model, long, step, seeds=[6, 7], labels=labels, previous=reused)
    assert slid.start == long.shape[1] + step - model.config.n_ctx > 0
    assert slid.codes.shape == (2, step)


def test_upsample_resumes_mid_level_like_the_uninterrupted_run():
    meta = run_meta("A")
    ups = [prior(kind) for kind in meta["models"][:-1]]
    # The shortest top length that gives every upsampler at least one full window.
    per_top = level_lengths(ups, 1)
    top_len = max(math.ceil(up.config.n_ctx / n) for up, n in zip(ups, per_top, strict=True))
    top_codes = torch.from_numpy(arrays("windowed_sampling_ref")["A_zs_l2"][:1, :top_len])
    labels = [run_labels(kind, "A")[:1] for kind in meta["models"][:-1]]
    kwargs = {"seeds": [9], "hop_fraction": meta["hop_fraction"], "settings": SamplingSettings(chunk_size=16)}
    saved = []
    full = upsample(
        ups, top_codes, labels, on_window=lambda p, c: saved.append((p.level, c.clone())), **kwargs
    )
    assert [c.shape[1] for c in full] == level_lengths(ups, top_len)
    level0 = [c for level, c in saved if level == 0]
    resumed = upsample(ups, top_codes, labels, codes=[level0[len(level0) // 2], full[1]], **kwargs)
    for a, b in zip(resumed, full, strict=True):
        assert torch.equal(a, b)
