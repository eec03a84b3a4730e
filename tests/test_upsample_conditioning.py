"""Upsampling that follows a conditioning change inside the rendered range.

Every upsampler window is sampled with the labels covering most of its new codes (ties: the earlier).
A render across a swap therefore equals its two sides rendered separately, each with its own labels
(the side after the swap resumed from the codes before it), windows on either side being identical; the
service saves such a render window by window and resumes it exactly; and a swap made after some windows
were saved never lets those stale windows into the result.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cocompose.service import ComposeService, GenerateRequest, JobCancelled, UpsampleRequest
from cocompose.service.upsampling import resolve_stretch
from cocompose.song import Codes, Conditioning, ModelInfo
from cocompose.song.records import ArtistBlend
from cocompose.store import Project
from engine.api import ComposeEngine, LabelSpec
from engine.prior.windows import WindowPlan
from engine.sampling.drivers import plan_level
from engine.sampling.upsample import LabelTrack, label_groups, level_lengths, upsample
from tests.compose_model import louden_labels, write_tiny_bundle

pytestmark = pytest.mark.usefixtures("one_thread")

TIMEOUT = 120
ADA, BO = LabelSpec("Ada Tone", "rock"), LabelSpec("Bo Noise", "jazz")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_tiny_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="module")
def loud(bundle) -> ComposeEngine:
    """The tiny engine with its upsamplers' artist and genre rows scaled up, so that a window's labels
    decide its first draw (an untrained table, std 0.02, would hardly move any draw)."""
    engine = ComposeEngine.load(bundle)
    for up in engine.bundle.upsamplers:
        louden_labels(up, 1e4)
    return engine


# -- the rule ----------------------------------------------------------------------------------------------
def _plan(start: int, prefix: int, new: int) -> WindowPlan:
    return WindowPlan(0, start, start + 64, start + prefix, new, prefix + new)


def test_each_window_takes_the_labels_covering_most_of_its_new_codes():
    a, b, c = ["a"], ["b"], ["c"]
    track = LabelTrack(((0, a), (400, b), (800, c)))  # in audio samples; 8 samples per code below
    assert track.labels_for(_plan(0, 0, 64), 8) is a  # codes 0..63 = samples 0..511: 400 of a
    assert track.labels_for(_plan(32, 32, 32), 8) is b  # new codes 64..95 = samples 512..767: all b
    assert track.labels_for(_plan(64, 32, 32), 8) is c  # new samples 768..1023: 32 of b, 224 of c
    assert track.labels_for(_plan(0, 50, 14), 8) is b  # prefix codes never count: the new are all b
    assert LabelTrack(((0, a), (512 + 128, b))).labels_for(_plan(32, 32, 32), 8) is a  # a tie: the earlier
    plans = [_plan(0, 0, 64), _plan(32, 32, 32), _plan(64, 32, 32), _plan(96, 32, 32)]
    groups = label_groups(plans, track, 8)
    assert [(labels, [p.start for p in group]) for labels, group in groups] == [
        (a, [0]),
        (b, [32]),
        (c, [64, 96]),
    ]
    assert label_groups(plans, a, 8) == [(a, plans)]
    for bad in ((), ((5, a),), ((0, a), (0, b)), ((0, a), (9, b), (3, c))):
        with pytest.raises(ValueError, match="start at sample 0 and increase"):
            LabelTrack(bad)


# -- the engine: a render across a swap equals its two sides -----------------------------------------------
def _labels(engine: ComposeEngine, spec: LabelSpec) -> list:
    return [[engine.label(spec, 0, up)] for up in engine.bundle.upsamplers]


def _first_window_of(plans, track, level_labels, raw_to_tokens):
    """tokens_before of the first window the rule gives `level_labels` (None if none)."""
    for plan in plans:
        if track.labels_for(plan, raw_to_tokens) is level_labels:
            return plan.tokens_before
    return None


@pytest.mark.parametrize("hop", [0.5, 1.0])
def test_a_render_across_a_swap_equals_its_two_sides(loud, hop):
    ups = loud.bundle.upsamplers
    top_hop = loud.bundle.vqvae.hop_lengths[-1]
    top = torch.from_numpy(np.random.default_rng(0).integers(0, 64, (1, 32)))
    swap_at = 13  # top-level code: not on any window boundary of either level
    ada, bo = _labels(loud, ADA), _labels(loud, BO)
    tracks = [LabelTrack(((0, ada[lv]), (swap_at * top_hop, bo[lv]))) for lv in range(2)]
    both = upsample(ups, top, tracks, seeds=[3], hop_fraction=hop)
    totals = level_lengths(ups, top.shape[1])

    for level in (1, 0):
        up, r2t = ups[level], ups[level].config.raw_to_tokens
        plans = plan_level(up, totals[level], 0, hop)
        assert len(plans) >= 2
        cut = _first_window_of(plans, tracks[level], bo[level], r2t)
        assert 0 < cut < totals[level]
        # this level alone (the other one given as finished), over the same upper codes:
        # Ada's labels throughout give the windows before Bo's first one...
        given = [both[0], None] if level == 1 else [None, both[1]]
        alone_a = upsample(ups, top, ada, seeds=[3], hop_fraction=hop, codes=given)[level]
        assert torch.equal(alone_a[:, :cut], both[level][:, :cut])
        # ...and Bo's labels, resumed from the codes before his first window, give all the rest
        given[level] = both[level][:, :cut]
        alone_b = upsample(ups, top, bo, seeds=[3], hop_fraction=hop, codes=given)[level]
        assert torch.equal(alone_b, both[level])
        if hop == 1.0:  # windows without a prefix: their labels decide their first draws
            assert not torch.equal(alone_a[:, cut:], both[level][:, cut:])


def stopped_after_bottom_windows(windows: int, *args, **kwargs) -> list[torch.Tensor | None]:
    """The codes per level an `upsample(*args, **kwargs)` run has finished when it is stopped after its
    `windows`-th bottom-level window (each level's finished windows, joined), as a resume receives them."""
    saved: list[list[torch.Tensor]] = [[], []]

    class Stop(Exception):
        pass

    def on_window(plan, codes):
        saved[plan.level].append(codes[:, plan.tokens_before :].clone())
        if plan.level == 0 and len(saved[0]) == windows:
            raise Stop

    with pytest.raises(Stop):
        upsample(*args, **kwargs, on_window=on_window)
    return [torch.cat(w, dim=1) if w else None for w in saved]


def test_an_interrupted_render_across_a_swap_resumes_exactly(loud):
    ups = loud.bundle.upsamplers
    top = torch.from_numpy(np.random.default_rng(1).integers(0, 64, (1, 32)))
    top_hop = loud.bundle.vqvae.hop_lengths[-1]
    ada, bo = _labels(loud, ADA), _labels(loud, BO)
    tracks = [LabelTrack(((0, ada[lv]), (19 * top_hop, bo[lv]))) for lv in range(2)]
    whole = upsample(ups, top, tracks, seeds=[8])
    finished = stopped_after_bottom_windows(4, ups, top, tracks, seeds=[8])
    assert finished[1].shape[1] == whole[1].shape[1] and finished[0].shape[1] < whole[0].shape[1]
    resumed = upsample(ups, top, tracks, seeds=[8], codes=finished)
    for a, b in zip(resumed, whole, strict=True):
        assert torch.equal(a, b)


def test_the_facade_takes_spec_changes(loud):
    top = np.random.default_rng(2).integers(0, 64, 32)
    changes = [(0, ADA), (13, BO)]
    a = loud.upsample(top, changes, 0, 5, [None, None])
    tracks = [
        LabelTrack(((0, [loud.label(ADA, 0, up)]), (13 * 128, [loud.label(BO, 0, up)])))
        for up in loud.bundle.upsamplers
    ]
    from engine.prior.sampler import SamplingSettings

    direct = upsample(loud.bundle.upsamplers, torch.from_numpy(top)[None], tracks, seeds=[5],
                      settings=SamplingSettings(0.99))  # fmt: skip
    for x, y in zip(a, direct, strict=True):
        np.testing.assert_array_equal(x, y[0].numpy())
    one_change = loud.upsample(top, [(0, ADA)], 0, 5, [None, None])
    for x, y in zip(one_change, loud.upsample(top, ADA, 0, 5, [None, None]), strict=True):
        np.testing.assert_array_equal(x, y)
    for bad in ([(2, ADA)], [(0, ADA), (0, BO)], [(0, ADA), (32, BO)], []):
        with pytest.raises(ValueError, match="start at code 0"):
            loud.upsample(top, bad, 0, 5, [None, None])


# -- the service: a song with a swap at a take -------------------------------------------------------------
BLENDED = Conditioning("Ada Tone", "rock", blend=ArtistBlend("Bo Noise", 0.5))
REQUEST = UpsampleRequest(start_s=0.95, end_s=1.15, seed=4)  # the end of the prime and the take's start


def _song_with_a_swap(path, engine) -> tuple[Project, int]:
    """A primed song (Ada Tone) and one take after the prime carrying a swap to a blend."""
    t = np.arange(engine.sample_rate) / engine.sample_rate
    prime = engine.encode_prime(0.3 * np.sin(2 * np.pi * 220 * t), engine.sample_rate)
    info = ModelInfo(engine.name, engine.model_hash, engine.sample_rate, engine.codes_per_second)
    project = Project.create(path, conditioning=Conditioning("Ada Tone", "rock"), planned_seconds=30,
                             model=info, prime_codes=Codes.of(prime))  # fmt: skip
    with ComposeService(project, engine) as service:
        (take,) = service.submit(GenerateRequest(1, 0.3, (9,), previews=False)).wait(TIMEOUT)
        service.read(lambda p: p.pick(take))
        service.read(lambda p: p.set_conditioning(take, BLENDED))
    return project, take


def _render(project: Project, engine, on_event=None):
    with ComposeService(project, engine, on_event=on_event) as service:
        return service.submit(REQUEST).wait(TIMEOUT)


def _cancelled_midway(project: Project, engine) -> None:
    def cancel_midway(event):
        if event.kind == "upsample" and event.fraction > 0.5:
            handle.cancel()

    with ComposeService(project, engine, on_event=cancel_midway) as service:
        handle = service.submit(REQUEST)
        with pytest.raises(JobCancelled):
            handle.wait(TIMEOUT)


def test_the_service_renders_across_a_swap_and_resumes_it_exactly(tmp_path, loud):
    project, take = _song_with_a_swap(tmp_path / "a.cocompose", loud)
    stretch = resolve_stretch(project, loud, REQUEST, loud.min_upsample_codes())
    prime_codes = len(project.tree.node(1).codes)
    assert [at for at, _ in stretch.specs] == [0, prime_codes - stretch.start]
    assert stretch.specs[0][1].blend_artist is None
    assert (stretch.specs[1][1].blend_artist, stretch.specs[1][1].blend_weight) == ("Bo Noise", 0.5)
    project.copy_to(tmp_path / "b.cocompose")

    _cancelled_midway(project, loud)
    assert 0 < len(project.upsample_windows(take, stretch.key, 0)) and project.jobs()[-1].state == "cancelled"
    resumed = _render(project, loud)  # a restart: only the missing windows are sampled
    project.close()
    with Project.open(tmp_path / "b.cocompose") as other:
        whole = _render(other, loud)
    offset = stretch.start * loud.bundle.vqvae.hop_lengths[-1]
    direct = loud.upsample(stretch.codes, stretch.specs, offset, REQUEST.seed, [None, None])
    for a, b, c in zip(resumed, whole, direct, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_a_swap_after_a_partial_render_never_reuses_its_windows(tmp_path, loud):
    project, take = _song_with_a_swap(tmp_path / "a.cocompose", loud)
    project.copy_to(tmp_path / "b.cocompose")
    before = resolve_stretch(project, loud, REQUEST, loud.min_upsample_codes())
    _cancelled_midway(project, loud)
    swapped = Conditioning("Cleo Hum", "folk")
    project.set_conditioning(take, swapped)
    after = resolve_stretch(project, loud, REQUEST, loud.min_upsample_codes())
    assert after.key != before.key and np.array_equal(after.codes, before.codes)
    assert project.upsample_windows(take, after.key, 0) == []
    changed = _render(project, loud)
    project.close()
    with Project.open(tmp_path / "b.cocompose") as other:
        other.set_conditioning(take, swapped)
        fresh = _render(other, loud)
    for a, b in zip(changed, fresh, strict=True):
        np.testing.assert_array_equal(a, b)
