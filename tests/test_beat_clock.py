"""The beat clock (`engine.prior.beat_clock`): each position's phase and beat equal exact arithmetic's, a
window sees what the whole song has there, a clock added to a trained prior starts silent, labels and
metadata carry it, the engine plays a genre at its usual tempo unless one is named, and a tempo change
starts a new bar where it happens."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import torch

from cocompose.models import DEFAULT_MODEL_DIR
from cocompose.oneshot import parse_change
from cocompose.service.runners import bar_start_seconds
from cocompose.song import Codes, Conditioning, Node, SongTree
from cocompose.song.records import Tempo
from engine import checkpoint
from engine.api import ComposeEngine, LabelSpec
from engine.data.genre_tempi import genre_tempi
from engine.data.metadata import read_metadata
from engine.prior.add_clock import CLOCK_TABLES, with_beat_clock
from engine.prior.beat_clock import clock_bins
from engine.prior.builders import build_prior
from engine.prior.labels import LabelConfig, label_from_ids
from engine.prior.sampler import SamplingSettings
from engine.prior.tempo import BeatClock
from engine.prior.windows import window_label
from tests.compose_model import write_tiny_bundle

pytestmark = pytest.mark.usefixtures("one_thread")

SR = 16000


def _bins(offset: int, length: int, clock: BeatClock | None, n_time: int, beat_bins=32, bar_beats=4):
    slots = torch.tensor([clock.slots() if clock else (0, 0, 0)])
    at, span = torch.tensor([offset]), torch.tensor([length])
    phase, beat = clock_bins(
        at, span, slots, n_time=n_time, sr=float(SR), beat_bins=beat_bins, bar_beats=bar_beats
    )
    return phase[0].tolist(), beat[0].tolist()


def _exact(position: int, clock: BeatClock, beat_bins: int, bar_beats: int) -> tuple[int, int]:
    """Phase and beat bins by rational arithmetic: beats = (position - anchor) * bpm / (60 * sr)."""
    beats = Fraction(position - clock.anchor) * Fraction(clock.slots()[0], 100) / (60 * SR)
    whole = math.floor(beats)
    return 1 + math.floor((beats - whole) * beat_bins), 1 + min(whole % clock.beats_per_bar, bar_beats - 1)


@pytest.mark.parametrize(
    ("clock", "offset"),
    [
        (BeatClock(120, 4), 0),
        (BeatClock(97.5, 3, anchor=1234), 40_000),
        (BeatClock(73.25, 7, anchor=-500), 1_000_000),  # bars longer than the table: beats 4..7 share a row
        (BeatClock(150, 3, anchor=900_000), 16_000),  # before its anchor: counts backwards from a bar line
    ],
)
def test_every_position_gets_the_phase_and_beat_of_exact_arithmetic(clock, offset):
    length, n_time = 64 * 128, 64
    phase, beat = _bins(offset, length, clock, n_time)
    expected = [_exact(offset + i * length // n_time, clock, 32, 4) for i in range(n_time)]
    assert list(zip(phase, beat, strict=True)) == expected
    assert len(set(phase)) > 8, "the window spans much of a beat"


def test_a_window_sees_the_bins_the_whole_song_has_there_and_a_song_without_tempo_sees_none():
    clock = BeatClock(104, 4, anchor=300)
    whole = _bins(0, 512 * 128, clock, 512)
    for start in (0, 37, 256):
        window = _bins(start * 128, 128 * 128, clock, 128)
        assert window == tuple(values[start : start + 128] for values in whole)
    # One beat at 120 bpm is 8000 samples: the phase comes round and the beat moves on by one.
    phase, beat = _bins(0, 16000, BeatClock(120, 3), 16000)
    assert phase[8000] == phase[0] == 1 and beat[:8001:8000] == [1, 2] and beat[16000 - 1] == 2
    assert _bins(5000, 1000, None, 10) == ([0] * 10, [0] * 10)


def _default_prior():
    return checkpoint.load_model(DEFAULT_MODEL_DIR / "prior_default", "prior").eval()


def _clocked_labels(prior, clocks):
    cfg = prior.config
    rows = []
    for artist, clock in enumerate(clocks, start=1):
        slots = clock.slots() if clock else (0, 0, 0)
        rows.append([30 * SR, 5 * SR, cfg.sample_length, artist, 2, *slots])
    return torch.tensor(rows)


def _without_clock(prior):
    """The prior with its beat clock's tables taken out: the prior it was before the clock stage's
    fine-tune would have these very weights, less what the fine-tune taught them."""
    cfg = prior.config
    bare = build_prior(replace(cfg, labels=replace(cfg.labels, beat_bins=0, bar_beats=0)))
    bare.load_state_dict({k: v for k, v in prior.state_dict().items() if k not in CLOCK_TABLES})
    return bare.eval()


def test_a_clock_added_to_a_trained_prior_starts_silent_and_once_trained_is_heard():
    shipped = _default_prior()
    assert shipped.config.labels.beat_bins == 32, "the default model's top prior has a clock"
    bare = _without_clock(shipped)
    clocked = with_beat_clock(bare, beat_bins=32, bar_beats=8)
    assert clocked.config == shipped.config and with_beat_clock(clocked, 32, 8) is clocked
    with pytest.raises(ValueError, match="cannot be resized"):
        with_beat_clock(clocked, 16, 8)
    codes = torch.randint(0, bare.config.l_bins, (3, 200), generator=torch.Generator().manual_seed(1))
    clocks = [BeatClock(120, 4), BeatClock(75, 3, anchor=4000), None]
    labels = _clocked_labels(clocked, clocks)
    with torch.no_grad():
        before = bare.logits(codes, labels[:, : bare.config.label_len])
        assert torch.equal(clocked.logits(codes, labels), before)
        trained = shipped.logits(codes, labels)
    assert not torch.allclose(trained[0], before[0], atol=1e-3)
    assert not torch.allclose(trained[1], before[1], atol=1e-3)
    # Every training song had a tempo, so row 0 ("no clock") kept its zeros: a song of unknown tempo is
    # sampled by the weights the fine-tune left, as by a prior without a clock.
    assert torch.equal(trained[2], before[2])


def test_labels_carry_the_clock_before_the_lyrics_and_a_window_moves_only_the_offset():
    config = LabelConfig(v3=False, max_bow=2, n_tokens=4, sample_length=1000, beat_clock=True)
    lyrics = [5, 6, 7, 8, 9, 10, 11, 12]
    label = label_from_ids(config, 2, [1], lyrics, 100_000, 0, BeatClock(120, 3, anchor=10))
    assert len(label.y) == config.label_len == 4 + 2 + 3 + 4
    assert label.y[:9] == [100_000, 0, 1000, 2, 1, -1, 12_000, 3, 10]
    y, _ = window_label(label.y, lyrics, start=50, raw_to_tokens=8, sample_length=1000, n_tokens=4)
    assert y[1] == 400 and y[6:9] == [12_000, 3, 10]
    assert label_from_ids(config, 2, [1], lyrics, 100_000, 0).y[6:9] == [0, 0, 0]
    plain = LabelConfig(v3=False, max_bow=2, n_tokens=4, sample_length=1000)
    assert (
        label_from_ids(plain, 2, [1], lyrics, 100_000, 0, BeatClock(120)).y
        == label_from_ids(plain, 2, [1], lyrics, 100_000, 0).y
    )


def test_metadata_gives_each_song_its_tempo_and_each_genre_its_usual_one(tmp_path):
    rows = [
        {"path": "a.wav", "genre": "Waltz", "tempo_bpm": 150, "beats_per_bar": 3},
        {"path": "b.wav", "genre": "waltz", "tempo_bpm": 142, "beats_per_bar": 3},
        {"path": "c.wav", "genre": "waltz", "tempo_bpm": 160, "beats_per_bar": 6},
        {"path": "d.wav", "genre": "blues", "tempo_bpm": "96"},
        {"path": "e.wav", "genre": "drone"},
    ]
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    records = read_metadata(tmp_path)
    assert [(r.tempo_bpm, r.beats_per_bar) for r in records] == [
        (150, 3),
        (142, 3),
        (160, 6),
        (96, 4),
        (None, None),
    ]
    assert genre_tempi(records) == {"blues": [96.0, 4], "waltz": [150.0, 3]}
    rows[1]["tempo_bpm"] = 900
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match=r"metadata.jsonl:2: a tempo must lie between 20 and 400"):
        read_metadata(tmp_path)


@pytest.fixture(scope="module")
def clock_engine(tmp_path_factory):
    tempi = {"rock": [120.0, 4], "jazz": [90.0, 3]}
    folder = write_tiny_bundle(
        tmp_path_factory.mktemp("clock"), upsamplers=False, audible=True, genre_tempi=tempi
    )
    return ComposeEngine.load(folder, threads=0)


def _codes(engine, spec, seed=3, n_new=24) -> np.ndarray:
    pieces = engine.generate(np.zeros(0, np.int64), n_new, [seed], spec, SamplingSettings(1.0))
    return np.concatenate([piece.codes[0] for piece in pieces])


def test_the_engine_plays_a_genre_at_its_usual_tempo_unless_one_is_named(clock_engine, tmp_path):
    engine = clock_engine
    assert engine.has_beat_clock and engine.genre_tempo("Rock") == (120.0, 4)
    assert engine.beat_clock(LabelSpec("Ada Tone", "rock")) == BeatClock(120.0, 4)
    named = LabelSpec("Ada Tone", "rock", tempo_bpm=100, beats_per_bar=3, bar_start_seconds=0.5)
    assert engine.beat_clock(named) == BeatClock(100, 3, anchor=round(0.5 * engine.sample_rate))
    assert engine.beat_clock(LabelSpec("Ada Tone", "jazz", tempo_bpm=70)) == BeatClock(70, 3)
    assert engine.beat_clock(LabelSpec("Ada Tone", "folk")) is None  # no folk song gave a tempo
    first = 4 + engine.bundle.top.config.labels.max_bow_genre_size  # the slots come before the lyrics
    assert engine.label(named).y[first : first + 3] == [10_000, 3, round(0.5 * engine.sample_rate)]
    with pytest.raises(ValueError, match="bars of at most 4 beats, not 5"):
        engine.check_names(LabelSpec("Ada Tone", "rock", beats_per_bar=5))
    with pytest.raises(ValueError, match="between 20 and 400"):
        engine.check_names(LabelSpec("Ada Tone", "rock", tempo_bpm=1000))

    usual = _codes(engine, LabelSpec("Ada Tone", "rock"))
    assert np.array_equal(_codes(engine, LabelSpec("Ada Tone", "rock", tempo_bpm=120)), usual)
    assert not np.array_equal(_codes(engine, LabelSpec("Ada Tone", "rock", tempo_bpm=61)), usual)

    plain = ComposeEngine.load(write_tiny_bundle(tmp_path / "plain", upsamplers=False), threads=0)
    assert not plain.has_beat_clock and plain.beat_clock(named) is None
    assert plain.label(named).y == plain.label(LabelSpec("Ada Tone", "rock")).y


def test_a_tempo_change_starts_a_bar_where_it_happens_and_a_change_of_voice_keeps_the_pulse(clock_engine):
    rock = Conditioning("Ada Tone", "rock")
    tree = SongTree()
    tree.attach([Node(id=1, parent_id=None, codes=Codes.of([1] * 10), conditioning=rock)])
    tree.attach(
        [Node(id=2, parent_id=1, codes=Codes.of([2] * 5), conditioning=Conditioning("Bo Noise", "rock"))]
    )
    slower = Conditioning("Bo Noise", "rock", tempo=Tempo(100, 4))
    tree.attach([Node(id=3, parent_id=2, codes=Codes.of([3] * 6), conditioning=slower)])
    cps = clock_engine.codes_per_second
    assert bar_start_seconds(tree, 1, rock, clock_engine) == 0.0
    assert bar_start_seconds(tree, 2, tree.conditioning_at(2), clock_engine) == 0.0
    assert bar_start_seconds(tree, 2, slower, clock_engine) == 15 / cps  # the new takes' first code
    assert bar_start_seconds(tree, 3, slower, clock_engine) == 15 / cps
    back_to_usual = Conditioning("Bo Noise", "rock", tempo=Tempo(120, 4))
    assert bar_start_seconds(tree, 3, back_to_usual, clock_engine) == 21 / cps
    assert bar_start_seconds(tree, 3, Conditioning("Ada Tone", "jazz"), clock_engine) == 21 / cps


def test_a_tempo_is_written_and_read_in_a_song_and_in_a_change():
    waltz = Conditioning("Ada Tone", "waltz", tempo=Tempo(150, 3))
    assert Conditioning.from_json(waltz.to_json()) == waltz
    assert "tempo" not in json.loads(Conditioning("Ada Tone", "rock").to_json()), "older files read the same"
    assert Tempo.parse(" 96 ") == Tempo(96, 4) and Tempo.parse("150/3") == Tempo(150, 3)
    assert parse_change("12.5:genre=waltz,tempo=150/3").tempo == Tempo(150, 3)
    for bad, message in (
        ("fast", "both must be numbers"),
        ("500", "between 20 and 400"),
        ("90/0", "1 to 16"),
    ):
        with pytest.raises(ValueError, match=message):
            Tempo.parse(bad)
    with pytest.raises(ValueError, match="tempo=BPM"):
        parse_change("3:speed=90")


def test_a_one_shot_song_changes_tempo_mid_song_and_its_manifest_says_at_what(tmp_path, capsys):
    """Through the real CLI: the change's tempo reaches the service's job record (a blend with it) and the
    manifest names each section's tempo, the genre's usual one where none is named."""
    from cocompose.cli import main
    from cocompose.service.requests import GenerateRequest
    from cocompose.service.worker import _plain
    from cocompose.song import ArtistBlend

    folder = write_tiny_bundle(tmp_path / "clock", upsamplers=False, genre_tempi={"rock": [120.0, 4]})
    out = tmp_path / "songs"
    args = ["generate", "--model", str(folder), "--artist", "Ada Tone", "--genre", "rock", "--seconds", "1",
            "--branches", "1", "--seed", "3", "--out", str(out)]  # fmt: skip
    args += ["--change", "0.5:artist=Bo Noise,tempo=100/3"]
    assert main(args) == 0, capsys.readouterr().err
    sections = json.loads((out / "manifest.json").read_text())["branches"][0]["sections"]
    beats = [(s["artist"], s["tempo_bpm"], s["beats_per_bar"], s["tempo_named"]) for s in sections]
    assert beats == [("Ada Tone", 120.0, 4, False), ("Bo Noise", 100.0, 3, True)]

    duet = Conditioning("Ada Tone", "rock", blend=ArtistBlend("Bo Noise", 0.3), tempo=Tempo(96, 3))
    detail = _plain(GenerateRequest.branches(1, 1, 1.0, 0, conditioning=duet))
    tempo = {"bpm": 96, "beats_per_bar": 3, "downbeat_seconds": 0.0, "from_riff": False}
    assert json.loads(json.dumps(detail))["conditioning"]["tempo"] == tempo


def test_a_project_takes_a_tempo_from_generate_and_swap_and_info_shows_it(tmp_path, capsys):
    from cocompose.cli import main
    from cocompose.store import Project

    folder = write_tiny_bundle(tmp_path / "clock", upsamplers=False, genre_tempi={"rock": [120.0, 4]})
    song = str(tmp_path / "song.cocompose")
    assert main(["new", song, "--artist", "Ada Tone", "--genre", "rock", "--model", str(folder)]) == 0
    assert (
        main(["generate", song, "--branches", "1", "--seconds", "0.3", "--seed", "1", "--tempo", "90/3"]) == 0
    )
    assert main(["swap", song, "2", "--artist", "Bo Noise"]) == 0, "a swap keeps the tempo set before"
    with Project.open(song) as project:
        assert project.tree.conditioning_at(2) == Conditioning("Bo Noise", "rock", tempo=Tempo(90, 3))
    capsys.readouterr()
    assert main(["info", song]) == 0
    assert "[from here: Bo Noise, rock, 90 bpm, 3/4]" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        main(["generate", song, "--seconds", "0.3", "--tempo", "fast"])
    assert refused.value.code == 2
    assert "a tempo is BPM or BPM/BEATS_PER_BAR" in capsys.readouterr().err
