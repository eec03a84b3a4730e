"""Artist blends: the artist embedding (1 - w) * e(A) + w * e(B).

Both ends are exactly the plain artists (logits and sampled codes bit-exact), a blend in between equals a
prior whose table row for A was replaced by the mixed vector, and the cached (sampling) path uses the
blend too. Checked on the official-format fixture priors and on our own tiny bundle.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch

from engine.api import ComposeEngine, LabelSpec
from engine.official.prior_loader import load_prior
from engine.prior.conditioning import mix_artists
from engine.prior.labels import blend_rows, with_blend
from engine.prior.sampler import SamplingSettings, sample
from tests.compose_model import write_tiny_bundle
from tests.reference import DOCUMENTED_SAMPLING_BASE, arrays, checkpoint_path, resolved_hps

pytestmark = pytest.mark.usefixtures("one_thread")

OFFICIAL = tuple(DOCUMENTED_SAMPLING_BASE)
WEIGHTS = (0.3, 0.75)


def _official(kind: str):
    """The fixture prior, its labels (two rows, distinct artists), upper codes, codes, and two other
    artists to blend into the rows (ids from the prior's own table size, so any fixture works)."""
    ref = arrays(f"{kind}_ref")
    model = load_prior(checkpoint_path(kind), kind, resolved_hps(kind), resolved_hps("vqvae"))
    upper = torch.from_numpy(ref["z_cond"]) if "z_cond" in ref else None
    labels = torch.from_numpy(ref["y"])[:2]
    spare = [i for i in range(model.config.labels.n_artists) if i not in labels[:, 3].tolist()]
    if labels[0, 3] == labels[1, 3]:
        labels = _with_artists(labels, (int(labels[0, 3]), spare.pop()))
    codes = torch.from_numpy(ref["anc_tokens"][:2, :40])
    return model, labels, None if upper is None else upper[:2], codes, (spare[0], spare[1])


def _blend(others, weights) -> torch.Tensor:
    return torch.tensor([[float(b), float(w)] for b, w in zip(others, weights, strict=True)])


def _with_artists(labels: torch.Tensor, artists) -> torch.Tensor:
    out = labels.clone()
    out[:, 3] = torch.tensor(artists)
    return out


def _mixed_table_copy(model, artists, others, weights):
    """A copy of the prior whose row of each row's artist holds that row's blend."""
    mixed = copy.deepcopy(model)
    table = model.y_emb.artist_emb.emb.weight
    with torch.no_grad():
        for a, b, w in zip(artists, others, weights, strict=True):
            mixed.y_emb.artist_emb.emb.weight[a] = mix_artists(table[a], table[b], w)
    return mixed


@pytest.mark.parametrize("kind", OFFICIAL)
def test_official_blend_ends_are_the_plain_artists_and_the_middle_a_mixed_row(kind):
    model, labels, upper, codes, others = _official(kind)
    artists = labels[:, 3].tolist()
    with torch.no_grad():
        plain = model.logits(codes, labels, upper)
        at_zero = model.logits(codes, labels, upper, blend=_blend(others, (0.0, 0.0)))
        at_one = model.logits(codes, labels, upper, blend=_blend(others, (1.0, 1.0)))
        plain_others = model.logits(codes, _with_artists(labels, others), upper)
        between = model.logits(codes, labels, upper, blend=_blend(others, WEIGHTS))
        mixed_prior = _mixed_table_copy(model, artists, others, WEIGHTS)
        replaced = mixed_prior.logits(codes, labels, upper)
        # a mixed batch: the unblended row stays exactly plain
        half = model.logits(codes, labels, upper, blend=_blend((others[0], artists[1]), (WEIGHTS[0], 0.0)))
    assert torch.equal(at_zero, plain)
    assert torch.equal(at_one, plain_others)
    assert torch.equal(between, replaced)
    assert torch.equal(half[1], plain[1]) and torch.equal(half[0], between[0])
    # the blend is really in between: it moves the logits away from both ends
    assert (between - plain).abs().max() > 1e-4 and (between - plain_others).abs().max() > 1e-4


@pytest.mark.parametrize("kind", OFFICIAL)
def test_official_cached_decoding_uses_the_blend(kind):
    model, labels, upper, codes, others = _official(kind)
    blend = _blend(others, WEIGHTS)
    state = model.start(labels, upper, blend=blend)
    rows = [state.next_logits.clone()]
    ids = codes + model.config.vocab_shift
    for j in range(ids.shape[1] - 1):
        rows.append(model.extend_raw(state, ids[:, j : j + 1])[:, 0])
    cached = torch.stack(rows, dim=1)
    with torch.no_grad():
        full = model.logits(codes, labels, upper, blend=blend)
    full = full[:, full.shape[1] - codes.shape[1] :]
    np.testing.assert_allclose(cached.numpy(), full.numpy(), atol=1e-5, rtol=0)

    # the sampler (prefix prefill, KV cache) with a blend draws what the mixed-row prior draws
    mixed_prior = _mixed_table_copy(model, labels[:, 3].tolist(), others, WEIGHTS)
    settings = SamplingSettings(temperature=1.0)
    kwargs = {"seeds": [5, 6], "upper_tokens": upper, "prefix": codes[:, :9], "settings": settings}
    blended = sample(model, labels, 12, blend=blend, **kwargs).codes
    assert torch.equal(blended, sample(mixed_prior, labels, 12, **kwargs).codes)


def test_blend_rows_and_the_label_ends():
    from engine.prior.labels import Label

    label = Label(y=[100, 0, 64, 2, 1], full_tokens=[], lyric_indices=[])
    assert with_blend(label, 3, 0.0) == label
    assert with_blend(label, 3, 1.0) == Label(y=[100, 0, 64, 3, 1], full_tokens=[], lyric_indices=[])
    half = with_blend(label, 3, 0.25)
    assert half.y == label.y and half.blend == (3, 0.25)
    assert blend_rows([label, label]) is None
    assert blend_rows([half, label]).tolist() == [[3.0, 0.25], [2.0, 0.0]]
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="between 0 and 1"):
            with_blend(label, 3, bad)


# -- our own prior, through the façade ---------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_bundle(tmp_path_factory.mktemp("tiny"))


SEEDS = tuple(range(11, 19))


def _generate(engine: ComposeEngine, spec: LabelSpec) -> np.ndarray:
    # 80 codes from nothing: two top windows, each continued in pieces through the sampler's resume
    pieces = engine.generate(np.zeros(0, np.int64), 80, SEEDS, spec, SamplingSettings(1.0), stream_tokens=16)
    rows: list[list[np.ndarray]] = [[] for _ in SEEDS]
    for piece in pieces:
        for row, branch in enumerate(piece.branches):
            rows[branch].append(piece.codes[row])
    return np.stack([np.concatenate(r) for r in rows])


def _loud_artists(tiny) -> ComposeEngine:
    """The tiny engine with its top prior's artist rows scaled up. In an untrained prior the start
    embedding reaches the later positions only faintly, so the artist shows in the first draw of each
    branch, and there only when the table is far from its std-0.02 start."""
    engine = ComposeEngine.load(tiny)
    with torch.no_grad():
        engine.bundle.top.y_emb.artist_emb.emb.weight.mul_(1000.0)
    return engine


def test_own_prior_generation_follows_the_blend(tiny):
    engine = _loud_artists(tiny)
    a, b = LabelSpec("Ada Tone", "rock"), LabelSpec("Bo Noise", "rock")
    plain_a, plain_b = _generate(engine, a), _generate(engine, b)
    blended = LabelSpec("Ada Tone", "rock", blend_artist="Bo Noise", blend_weight=0.4)
    assert np.array_equal(_generate(engine, replace(blended, blend_weight=0.0)), plain_a)
    assert np.array_equal(_generate(engine, replace(blended, blend_weight=1.0)), plain_b)
    mid = _generate(engine, blended)
    assert not np.array_equal(mid, plain_a) and not np.array_equal(mid, plain_b)

    names = engine.bundle.names[engine.bundle.top.config.level]
    ada, bo = names.artist_id("Ada Tone"), names.artist_id("Bo Noise")
    mixed = _loud_artists(tiny)
    table = mixed.bundle.top.y_emb.artist_emb.emb.weight
    with torch.no_grad():
        table[ada] = mix_artists(table[ada].clone(), table[bo].clone(), 0.4)
    assert np.array_equal(_generate(mixed, a), mid)


def test_own_prior_labels_carry_the_blend_to_every_level(tiny):
    engine = ComposeEngine.load(tiny)
    spec = LabelSpec("Ada Tone", "rock", blend_artist="Cleo Hum", blend_weight=0.5)
    for prior in (engine.bundle.top, *engine.bundle.upsamplers):
        label = engine.label(spec, 0, prior)
        names = engine.bundle.names[prior.config.level]
        assert label.blend == (names.artist_id("Cleo Hum"), 0.5)
        assert label.y[3] == names.artist_id("Ada Tone")


def test_bad_blends_are_named(tiny):
    engine = ComposeEngine.load(tiny)
    with pytest.raises(ValueError, match=r"unknown artist 'Bo Nosie'.*bo_noise"):
        engine.check_names(LabelSpec("Ada Tone", "rock", blend_artist="Bo Nosie", blend_weight=0.3))
    with pytest.raises(ValueError, match="between 0 and 1"):
        engine.check_names(LabelSpec("Ada Tone", "rock", blend_artist="Bo Noise", blend_weight=1.2))


# -- the swap verb ---------------------------------------------------------------------------------------
def _cli(capsys, *argv) -> tuple[int, str]:
    from cocompose.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out + err


def _conditioning(song, node: int):
    from cocompose.store import Project

    with Project.open(song) as project:
        return project.tree.node(node).conditioning


def test_swap_blend_is_recorded_checked_and_cleared(tmp_path, tiny, capsys):
    from cocompose.song.records import ArtistBlend

    song = tmp_path / "song.cocompose"
    assert _cli(capsys, "new", song, "--artist", "Ada Tone", "--genre", "rock", "--seconds", 10)[0] == 0
    swap = ("swap", song, 1, "--model", tiny, "--artist", "Ada Tone")
    code, out = _cli(capsys, *swap, "--blend", "Bo Noise:0.3")
    assert code == 0 and "Ada Tone + Bo Noise at 0.3" in out
    assert _conditioning(song, 1).blend == ArtistBlend("Bo Noise", 0.3)

    for blend, message in (
        ("Bo Nosie:0.3", "nearest: bo_noise"),
        ("Bo Noise:1.5", "between 0 and 1"),
        ("Bo Noise", "ARTIST:WEIGHT"),
        ("Bo Noise:much", "ARTIST:WEIGHT"),
    ):
        code, out = _cli(capsys, *swap, "--blend", blend)
        assert code == 2 and message in out, (blend, out)
    assert _conditioning(song, 1).blend == ArtistBlend("Bo Noise", 0.3)  # a refused swap changes nothing

    assert _cli(capsys, *swap[:-1], "Cleo Hum")[0] == 0
    assert _conditioning(song, 1).blend is None and _conditioning(song, 1).artist == "Cleo Hum"
