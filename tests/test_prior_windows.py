"""Window schedule, per-window labels and upper-code slices against the reference's windowed runs A and B."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest

from engine.prior.labels import LabelConfig, label_from_ids
from engine.prior.windows import (
    WindowPlan,
    get_starts,
    partial_window,
    plan_levels,
    sample_partial_window,
    seconds_to_tokens,
    single_window,
    split_batch_sizes,
    split_chunks,
    upper_code_slice,
    window_label,
)
from tests.reference import arrays, hparams, require_fixture, resolved_hps


@cache
def windowed_meta() -> dict:
    return json.loads((require_fixture() / "meta.json").read_text())["windowed"]


def derived(name: str) -> dict:
    return hparams()["derived"][name]


def label_config(name: str) -> LabelConfig:
    hps, d = resolved_hps(name), derived(name)
    return LabelConfig(
        v3=hps["labels_v3"],
        max_bow=hps["max_bow_genre_size"],
        n_tokens=d["n_tokens"],
        sample_length=d["sample_length"],
    )


def base_label(name: str, run: dict, full_tokens) -> list[int]:
    """The run's labels before any window: offset 0, the whole song's lyric list."""
    config = label_config(name)
    label = label_from_ids(
        config, run["artist_id"], run["genre_ids"], full_tokens, run["total_length_label"], 0
    )
    return label.y


def expected_from_misc(values: list) -> tuple[list[int], bool]:
    """A misc_pure example: the listed values and whether the list was cut short with '...'."""
    truncated = bool(values) and values[-1] == "..."
    return [int(v) for v in values if v != "..."], truncated


def test_misc_pure_examples():
    examples = hparams()["misc_pure"]
    assert examples
    for key, values in examples.items():
        want, truncated = expected_from_misc(values)
        if key.startswith("get_starts_"):
            total, n_ctx, hop = (int(v) for v in key.removeprefix("get_starts_").split("_"))
            got = get_starts(total, n_ctx, hop)
        elif key.startswith("split_chunks_"):
            length, chunk = (int(v) for v in key.removeprefix("split_chunks_").split("_"))
            got = split_chunks(length, chunk)
            assert sum(got) == length
        else:
            pytest.fail(f"unknown misc_pure example {key}")
        assert (got[: len(want)] if truncated else got) == want, key


def test_get_starts_rules():
    assert get_starts(100, 100, 50) == [0]
    assert get_starts(101, 100, 50) == [0, 1]
    with pytest.raises(ValueError):
        get_starts(99, 100, 50)
    with pytest.raises(ValueError):
        split_chunks(0, 8)


def run_a_models() -> list[str]:
    return windowed_meta()["A"]["models"]


def run_a_plans() -> list[WindowPlan]:
    run = windowed_meta()["A"]
    models = run_a_models()
    return list(
        plan_levels(
            run["sample_length"],
            n_ctx=[derived(m)["n_ctx"] for m in models],
            raw_to_tokens=[derived(m)["raw_to_tokens"] for m in models],
            hop_fraction=run["hop_fraction"],
        )
    )


def test_run_a_schedule_replays_exactly():
    run = windowed_meta()["A"]
    plans = run_a_plans()
    assert len(plans) == len(run["windows"])
    for plan, window in zip(plans, run["windows"], strict=True):
        assert (plan.level, plan.start, plan.tokens_before) == (
            window["level"],
            window["start"],
            window["tokens_before"],
        )
        kwargs = run["sampling_kwargs"][plan.level]
        assert window["sample_tokens"] is None  # run A never sets it: every window samples to its end
        calls = window["batch_calls"]
        assert [c["n_samples"] for c in calls] == split_batch_sizes(
            run["n_samples"], kwargs["max_batch_size"]
        )
        for call in calls:
            assert call["z_prefix_len"] == plan.prefix_tokens
            assert call["n_out"] == plan.sample_tokens == plan.end - plan.start
    # The schedule fills every level exactly.
    for level, model in enumerate(run_a_models()):
        produced = sum(p.new_tokens for p in plans if p.level == level)
        assert produced == run["sample_length"] // derived(model)["raw_to_tokens"]
        assert produced == arrays("windowed_sampling_ref")[f"A_zs_l{level}"].shape[1]


def test_run_a_window_labels_and_upper_codes():
    run = windowed_meta()["A"]
    ref = arrays("windowed_sampling_ref")
    models = run_a_models()
    full_tokens = ref["A_lyrics_full_tokens"].tolist()
    n_upper_checked = 0
    for i, plan in enumerate(run_a_plans()):
        name = models[plan.level]
        d = derived(name)
        y, indices = window_label(
            base_label(name, run, full_tokens),
            full_tokens,
            plan.start,
            d["raw_to_tokens"],
            d["sample_length"],
            d["n_tokens"],
        )
        want = ref[f"A_win{i:03d}_y"]
        assert want.shape[1] == len(y) == d["label_len"]
        for row in want:
            np.testing.assert_array_equal(row, np.asarray(y, dtype=np.int64), err_msg=f"window {i}")
        if d["n_tokens"]:
            assert [full_tokens[j] for j in indices] == y[-d["n_tokens"] :]
        if plan.level + 1 < len(models):
            cut = upper_code_slice(plan.start, plan.end, d["cond_downsample"])
            np.testing.assert_array_equal(
                ref[f"A_zs_l{plan.level + 1}"][:, cut], ref[f"A_win{i:03d}_z_cond"], err_msg=f"window {i}"
            )
            assert cut.stop - cut.start == d["n_ctx"] // d["cond_downsample"]
            n_upper_checked += 1
        else:
            assert f"A_win{i:03d}_z_cond" not in ref
    assert n_upper_checked == sum(1 for key in ref if key.startswith("A_win") and key.endswith("_z_cond"))


def run_b_plans() -> list[WindowPlan]:
    run = windowed_meta()["B"]
    d = derived(run["model"])
    plans, have = [], 0
    for k in run["tokens_to_sample_steps"]:
        plan = partial_window(d["level"], have, k, d["n_ctx"])
        have += plan.new_tokens
        plans.append(plan)
    return plans


def test_run_b_co_composition_schedule_and_labels():
    run = windowed_meta()["B"]
    ref = arrays("windowed_sampling_ref")
    name = run["model"]
    d = derived(name)
    plans = run_b_plans()
    assert len(plans) == len(run["windows"])
    full_tokens = ref["B_lyrics_full_tokens"].tolist()
    base = base_label(name, run, full_tokens)
    for i, (plan, window) in enumerate(zip(plans, run["windows"], strict=True)):
        assert (plan.level, plan.start, plan.tokens_before, plan.sample_tokens) == (
            window["level"],
            window["start"],
            window["tokens_before"],
            window["sample_tokens"],
        )
        for call in window["batch_calls"]:
            assert call["z_prefix_len"] == plan.prefix_tokens
            assert call["n_out"] == call["sample_tokens"] == plan.sample_tokens
        y, _ = window_label(
            base, full_tokens, plan.start, d["raw_to_tokens"], d["sample_length"], d["n_tokens"]
        )
        for row in ref[f"B_win{i:03d}_y"]:
            np.testing.assert_array_equal(row, np.asarray(y, dtype=np.int64), err_msg=f"window {i}")
    assert sum(p.new_tokens for p in plans) == ref["B_zs_l2"].shape[1]
    # The quirk the fixture records: the last window's sample_tokens stays in the caller's kwargs.
    assert run["sampling_kwargs_after_run"]["sample_tokens"] == plans[-1].sample_tokens


def test_partial_window_rules():
    assert sample_partial_window(0, 24, 80) == (0, 24)
    assert sample_partial_window(55, 24, 80) == (0, 79)
    assert sample_partial_window(56, 24, 80) == (0, 80) == (56 - 80 + 24, 80)
    assert sample_partial_window(100, 24, 80) == (44, 80)
    with pytest.raises(ValueError):
        sample_partial_window(10, 81, 80)


def test_stale_sample_tokens_quirk_is_reproducible():
    # After a partial window left sample_tokens=48 in the kwargs, a later full window at start 0 over 48
    # tokens samples nothing (the reference returns early), and one at start 8 samples only 8 tokens.
    assert single_window(2, 48, 0, 80, sample_tokens=48) is None
    stale = single_window(2, 48, 8, 80, sample_tokens=48)
    assert stale is not None and (stale.prefix_tokens, stale.new_tokens) == (40, 8)
    fresh = single_window(2, 48, 8, 80)
    assert fresh is not None and fresh.new_tokens == 40


def test_upper_code_slice_alignment():
    assert upper_code_slice(40, 120, 4) == slice(10, 30)
    with pytest.raises(ValueError, match="aligned"):
        upper_code_slice(2, 82, 4)


def test_planner_refuses_too_short_upsampling():
    # 1280 samples are only 40 level-1 tokens, half an upsampler context.
    with pytest.raises(ValueError, match="needs at least"):
        list(plan_levels(1280, n_ctx=[80, 80, 80], raw_to_tokens=[8, 32, 128], hop_fraction=[0.5, 0.5, 0.1]))


def test_planner_upsample_only_and_short_top_level():
    plans = list(
        plan_levels(128 * 40, n_ctx=[8, 8, 80], raw_to_tokens=[8, 32, 128], hop_fraction=[0.5, 0.5, 0.125])
    )
    assert plans[0] == WindowPlan(level=2, start=0, end=80, tokens_before=0, new_tokens=40, sample_tokens=40)
    lower = list(
        plan_levels(
            128 * 40, [8, 8, 80], [8, 32, 128], [0.5, 0.5, 0.125], levels=[0, 1], tokens_before=[0, 0, 40]
        )
    )
    assert lower == plans[1:]
    assert {p.level for p in lower} == {0, 1}


def test_seconds_to_tokens_rounds_like_the_notebook():
    assert seconds_to_tokens(12, 44100, 128, 16) == ((12 * 44100 // 128) // 16 + 1) * 16
    assert seconds_to_tokens(128 * 16 / 44100, 44100, 128, 16) == 32  # exact multiple still adds a chunk
    with pytest.raises(ValueError, match="context"):
        seconds_to_tokens(30, 44100, 128, 16, n_ctx=8192)
