"""A song primed from a riff keeps the riff's pulse: with a beat-clock model and no tempo named, the song
takes the tempo and bar lines heard in the riff (through `cocompose prime`, the app session and one-shot
`generate --prime`), stores them, and counts its bars from the riff's first bar line."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile as sf

from cocompose.app_session import AppSession
from cocompose.cli import main
from cocompose.riff_tempo import primed_conditioning
from cocompose.service.runners import bar_start_seconds
from cocompose.song import Codes, Conditioning, Node, SongTree
from cocompose.song.records import Tempo
from cocompose.store import Project
from engine.api import ComposeEngine
from tests.compose_model import write_tiny_bundle
from tests.test_app_session import TIMEOUT, Recorder

pytestmark = pytest.mark.usefixtures("one_thread")

BPM, FIRST_BAR_S, FILE_RATE = 96.0, 0.25, 44100


def _riff(path, bpm=BPM, first_s=FIRST_BAR_S, seconds=6.0, per_bar=4):
    """Clicks on every beat from `first_s`, each bar's first one a low thump (as a kick marks it)."""
    audio = np.zeros(round(seconds * FILE_RATE))
    t = np.arange(round(0.05 * FILE_RATE)) / FILE_RATE
    for k, at in enumerate(np.arange(first_s, seconds - 0.05, 60.0 / bpm)):
        low = k % per_bar == 0
        start = round(at * FILE_RATE)
        audio[start : start + len(t)] += (
            (0.8 if low else 0.4) * np.sin(2 * np.pi * (80.0 if low else 1200.0) * t) * np.exp(-t / 0.02)
        )
    sf.write(path, audio, FILE_RATE)
    return path


@pytest.fixture(scope="module")
def clock_model(tmp_path_factory):
    tempi = {"rock": [120.0, 4], "jazz": [90.0, 3]}
    return write_tiny_bundle(tmp_path_factory.mktemp("clock"), upsamplers=False, genre_tempi=tempi)


def _said_bpm(out: str) -> float:
    found = re.search(r"the riff's tempo: ([0-9.]+) bpm", out)
    assert found, out
    return float(found.group(1))


def _is_the_riffs(tempo: Tempo | None) -> None:
    assert tempo is not None and tempo.from_riff and tempo.beats_per_bar == 4
    assert tempo.bpm == pytest.approx(BPM, abs=0.5)
    assert tempo.downbeat_seconds == pytest.approx(FIRST_BAR_S, abs=0.015)


def test_cocompose_prime_gives_the_song_the_riffs_tempo_and_bars(tmp_path, clock_model, capsys):
    song = str(tmp_path / "song.cocompose")
    assert main(["new", song, "--artist", "Ada Tone", "--genre", "rock", "--model", str(clock_model)]) == 0
    assert main(["prime", song, str(_riff(tmp_path / "riff.wav"))]) == 0
    out = capsys.readouterr().out
    assert _said_bpm(out) == pytest.approx(BPM, abs=0.5)
    assert "4 beats a bar" in out and f"swap {song} 1 --artist 'Ada Tone' --tempo BPM" in out
    with Project.open(song) as project:
        root = project.tree.root
        _is_the_riffs(root.conditioning.tempo)
        assert (root.conditioning.artist, root.conditioning.genre) == ("Ada Tone", "rock")
        engine = ComposeEngine.load(clock_model, threads=0)
        # New takes count bars from the riff's first bar line, not from its first sample.
        start = bar_start_seconds(project.tree, root.id, root.conditioning, engine)
        assert start == root.conditioning.tempo.downbeat_seconds
    assert main(["generate", song, "--branches", "1", "--seconds", "0.3", "--seed", "1"]) == 0
    with Project.open(song) as project:
        take = project.tree.children(1)[0]
        _is_the_riffs(project.tree.conditioning_at(take.id).tempo)
    assert main(["undo", song]) == 0  # the take goes; the riff and its tempo stay
    with Project.open(song) as project:
        assert not project.tree.children(1) and len(project.tree.root.codes) > 0
        _is_the_riffs(project.tree.root.conditioning.tempo)


def test_the_app_session_primes_with_the_riffs_tempo(tmp_path, clock_model):
    session = AppSession(Recorder(), state_dir=tmp_path)
    try:
        session.load_model(clock_model).result(TIMEOUT)
        session.new_project(tmp_path / "p.cocompose", Conditioning("Ada Tone", "rock"), 10).result(TIMEOUT)
        primed = session.prime(_riff(tmp_path / "riff.wav")).result(TIMEOUT)
        notice = primed.notice("riff.wav")
        assert notice.startswith("Primed with riff.wav (6.0 s); the riff's tempo: ") and _said_bpm(notice)
        with session.lock:
            _is_the_riffs(session.project.tree.root.conditioning.tempo)
    finally:
        session.shutdown()


def test_a_riff_recorded_to_a_count_in_takes_the_count_ins_tempo(tmp_path, clock_model):
    """The count-in says the tempo the musician played to; its last beat opens a bar. Trimmed 0.3 s from
    the start, the riff's first bar line is 0.3 s before its first sample, so the next is a bar later."""
    from cocompose.recording import Take

    audio, rate = sf.read(_riff(tmp_path / "riff.wav"), dtype="float32")  # clicks at 96 bpm: ignored
    take = Take(audio, rate, click_bpm=90.0).trimmed(0.3)
    session = AppSession(Recorder(), state_dir=tmp_path)
    try:
        session.load_model(clock_model).result(TIMEOUT)
        session.new_project(tmp_path / "p.cocompose", Conditioning("Ada Tone", "rock"), 10).result(TIMEOUT)
        primed = session.prime_recording(take).result(TIMEOUT)
        bar = 4 * 60.0 / 90.0
        said = f"the count-in's tempo: 90 bpm, 4 beats a bar, first bar line at {bar - 0.3:.2f} s"
        assert primed.heard == said
        with session.lock:
            tempo = session.project.tree.root.conditioning.tempo
        assert tempo == Tempo(90.0, 4, round(bar - 0.3, 3), from_riff=True)
        assert len(list((tmp_path / "recordings").iterdir())) == 1  # the riff is kept as recorded
    finally:
        session.shutdown()


def test_a_riff_played_in_threes_to_a_count_in_is_counted_in_threes(tmp_path, clock_model):
    """The count-in gives the tempo and the bar line; how many beats a bar holds is heard in the riff,
    on the count-in's grid: a waltz figure under a rock song is counted in threes, a riff whose beats all
    sound alike in the genre's fours."""
    engine = ComposeEngine.load(clock_model, threads=0)
    rock = Conditioning("Ada Tone", "rock")
    waltz, rate = sf.read(_riff(tmp_path / "waltz.wav", bpm=90.0, first_s=0.5, per_bar=3))
    counted, said = primed_conditioning(engine, waltz, rate, rock, counted=(90.0, 0.5))
    assert counted.tempo == Tempo(90.0, 3, 0.5, from_riff=True)
    assert said == "the count-in's tempo: 90 bpm, 3 beats a bar, first bar line at 0.50 s"
    even, rate = sf.read(_riff(tmp_path / "even.wav", bpm=90.0, first_s=0.5, per_bar=1))
    counted, _ = primed_conditioning(engine, even, rate, rock, counted=(90.0, 0.5))
    assert counted.tempo == Tempo(90.0, 4, 0.5, from_riff=True)
    silent, _ = primed_conditioning(engine, np.zeros(3 * rate), rate, rock, counted=(90.0, 0.5))
    assert silent.tempo == Tempo(90.0, 4, 0.5, from_riff=True)  # a count-in's tempo needs no sound


def test_a_named_tempo_a_clockless_model_or_a_riff_without_pulse_leave_the_song_as_it_is(
    tmp_path, clock_model
):
    engine = ComposeEngine.load(clock_model, threads=0)
    audio, rate = sf.read(_riff(tmp_path / "riff.wav"))
    rock = Conditioning("Ada Tone", "rock")
    named = Conditioning("Ada Tone", "rock", tempo=Tempo(100, 4))
    assert primed_conditioning(engine, audio, rate, named) == (None, None)
    plain = ComposeEngine.load(write_tiny_bundle(tmp_path / "plain", upsamplers=False), threads=0)
    assert primed_conditioning(plain, audio, rate, rock) == (None, None)
    noise = np.random.default_rng(0).normal(0.0, 0.1, 6 * rate)
    assert primed_conditioning(engine, noise, rate, rock) == (
        None,
        "no steady beat heard in the riff: the song keeps its genre's usual tempo",
    )
    # The riff read as `encode_prime` reads it: only its first max_seconds (here, before any click).
    assert engine.riff_beat(audio, rate, "rock", max_seconds=0.2) is None
    # The riff's bars repeat every four beats, so a jazz song (usually in threes) counts them in fours;
    # a riff in threes makes a rock song count in threes; a riff whose beats all sound alike says
    # nothing of its bars, and the genre's usual metre stands.
    jazz, _ = primed_conditioning(engine, audio, rate, Conditioning("Ada Tone", "jazz"))
    assert jazz.tempo.beats_per_bar == 4 and jazz.tempo.bpm == pytest.approx(BPM, abs=0.5)
    waltz, rate = sf.read(_riff(tmp_path / "waltz.wav", per_bar=3))
    in_threes, _ = primed_conditioning(engine, waltz, rate, rock)
    assert in_threes.tempo.beats_per_bar == 3 and in_threes.tempo.bpm == pytest.approx(BPM, abs=0.5)
    assert in_threes.tempo.downbeat_seconds == pytest.approx(FIRST_BAR_S, abs=0.015)
    even, rate = sf.read(_riff(tmp_path / "even.wav", per_bar=1))
    for genre, per_bar in (("rock", 4), ("jazz", 3)):
        kept, _ = primed_conditioning(engine, even, rate, Conditioning("Ada Tone", genre))
        assert kept.tempo.beats_per_bar == per_bar


def test_a_one_shot_song_primed_from_a_riff_says_so_in_its_manifest(tmp_path, clock_model, capsys):
    riff = str(_riff(tmp_path / "riff.wav"))
    base = ["generate", "--model", str(clock_model), "--artist", "Ada Tone", "--genre", "rock", "--seconds",
            "0.5", "--branches", "1", "--seed", "3", "--prime", riff]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "a"), "--change", "0.25:artist=Bo Noise"]) == 0
    assert _said_bpm(capsys.readouterr().out) == pytest.approx(BPM, abs=0.5)
    sections = json.loads((tmp_path / "a" / "manifest.json").read_text())["branches"][0]["sections"]
    assert [s["artist"] for s in sections] == ["Ada Tone", "Bo Noise"]
    for section in sections:  # the riff's tempo holds through a change of voice
        assert section["tempo_from_riff"] and not section["tempo_named"]
        assert section["tempo_bpm"] == pytest.approx(BPM, abs=0.5)
        assert section["first_bar_line_s"] == pytest.approx(FIRST_BAR_S, abs=0.015)
    assert main([*base, "--out", str(tmp_path / "b"), "--tempo", "100"]) == 0
    assert "the riff's tempo" not in capsys.readouterr().out
    (section,) = json.loads((tmp_path / "b" / "manifest.json").read_text())["branches"][0]["sections"]
    assert section["tempo_named"] and section["tempo_bpm"] == 100 and "tempo_from_riff" not in section


def test_a_riffs_tempo_is_stored_whole_and_a_later_tempo_starts_its_own_bars(clock_model):
    riff = Tempo(96.0, 4, 0.25, from_riff=True)
    start = Conditioning("Ada Tone", "rock", tempo=riff)
    assert Conditioning.from_json(start.to_json()) == start
    named = json.loads(Conditioning("Ada Tone", "rock", tempo=Tempo(96.0, 4)).to_json())["tempo"]
    assert named == {"bpm": 96.0, "beats_per_bar": 4}, "a named tempo is written as before"
    assert str(riff) == "96 bpm, 4/4 (from the riff)"
    with pytest.raises(ValueError, match="first bar line"):
        Tempo(96.0, 4, -0.1)

    engine = ComposeEngine.load(clock_model, threads=0)
    cps = engine.codes_per_second
    tree = SongTree()
    tree.attach([Node(id=1, parent_id=None, codes=Codes.of([1] * 10), conditioning=start)])
    duet = Conditioning("Bo Noise", "rock", tempo=riff)
    tree.attach([Node(id=2, parent_id=1, codes=Codes.of([2] * 5), conditioning=duet)])
    assert bar_start_seconds(tree, 2, duet, engine) == 0.25, "a change of voice keeps the riff's bars"
    slower = Conditioning("Bo Noise", "rock", tempo=Tempo(80, 4))
    assert bar_start_seconds(tree, 2, slower, engine) == 15 / cps, "a new tempo's bar starts where it does"
