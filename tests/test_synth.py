"""`cocompose synth`: a deterministic synthetic corpus whose artist, genre, form and lyrics are audible.

The corpus is what the default model learns conditioning from, so these tests listen to it: simple
nearest-centroid classifiers must tell artists and genres apart, the voice must sing where the form says
and with the vowels the lyrics say, and songs must actually end.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter

import numpy as np
import pytest
import soundfile as sf
import soxr

from cocompose.cli import main
from engine.data.synth import (
    ARTISTS,
    GENRES,
    MIN_DUET_SECONDS,
    MIN_SONG_SECONDS,
    compose_song,
    corpus,
    render_song,
    render_stems,
    write_corpus,
)
from engine.data.synth.instruments import render_part
from engine.data.synth.song import HANDOFF_MARGIN_BARS

SR = 22050
SECONDS = 12.0  # shortest round length that fits every genre's form, to keep the suite fast
N_SONGS = 60  # two full artist x genre cycles


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    rows = write_corpus(out, songs=N_SONGS, seconds=SECONDS, seed=7, sample_rate=SR, fmt="wav")
    audio = [sf.read(out / row["path"], dtype="float64")[0] for row in rows]
    return out, rows, audio


# ---------------------------------------------------------------------------- features for the classifiers


def _stft_mag(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft)
    return np.abs(np.fft.rfft(frames, axis=1))  # (frames, bins)


def _mel_filters(n_fft: int, n_mels: int = 40) -> np.ndarray:
    def to_mel(f):
        return 2595 * np.log10(1 + f / 700)

    edges = 700 * (10 ** (np.linspace(to_mel(30), to_mel(SR / 2), n_mels + 2) / 2595) - 1)
    bins = np.fft.rfftfreq(n_fft, 1 / SR)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.clip(np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)), 0, None)  # (mels, bins)


def _log_mel(x: np.ndarray, hop: int) -> np.ndarray:
    return np.log(_stft_mag(x, 1024, hop) @ _mel_filters(1024).T + 1e-6)  # (frames, mels)


def timbre_features(x: np.ndarray) -> np.ndarray:
    """Quartiles over time of each log-mel band: the spectral envelope, robust to drums and rests."""
    return np.percentile(_log_mel(x, 512), [25, 50, 75], axis=0).ravel()


def tempo_features(x: np.ndarray) -> np.ndarray:
    """Log2 of the beat tempo: the strongest autocorrelation lag (0.35..0.9 s) of the onset strength in
    the top mel bands, where hats and snares speak louder than any instrument."""
    hop = 256
    fps = SR / hop
    high = _log_mel(x, hop)[:, 30:]
    flux = np.maximum(np.diff(high, axis=0), 0).sum(axis=1)
    flux -= flux.mean()
    ac = np.correlate(flux, flux, "full")[len(flux) - 1 :]
    lo, hi = int(0.35 * fps), int(0.9 * fps)
    lag = lo + int(np.argmax(ac[lo:hi]))
    return np.array([np.log2(60 * fps / lag)])


def nearest_centroid_accuracy(features: np.ndarray, labels: np.ndarray, train: np.ndarray) -> float:
    mean, std = features[train].mean(0), features[train].std(0) + 1e-9
    z = (features - mean) / std
    names = sorted(set(labels[train]))
    centroids = np.stack([z[train & (labels == name)].mean(0) for name in names])
    distances = ((z[~train, None, :] - centroids[None]) ** 2).sum(-1)
    predicted = np.array(names)[np.argmin(distances, axis=1)]
    return float(np.mean(predicted == labels[~train]))


def _halves(n: int) -> np.ndarray:
    """Train on alternate runs of len(ARTISTS) songs: each run holds every artist once, and the runs used
    for training cover every genre, so both halves are balanced."""
    return (np.arange(n) // len(ARTISTS)) % 2 == 0


# ------------------------------------------------------------------------------------------------ tests


def test_same_seed_gives_byte_identical_corpus_and_another_seed_does_not(tmp_path):
    def files(out, seed):
        write_corpus(out, songs=2, seconds=SECONDS, seed=seed, sample_rate=SR, fmt="flac")
        return {p.name: p.read_bytes() for p in sorted(out.iterdir())}

    first, again, other = files(tmp_path / "a", 1), files(tmp_path / "b", 1), files(tmp_path / "c", 2)
    assert sorted(first) == ["metadata.jsonl", "song_00000.flac", "song_00001.flac"]
    assert first == again
    assert all(first[name] != other[name] for name in first)


def test_metadata_describes_readable_audio_of_the_requested_length(small_corpus):
    out, rows, _ = small_corpus
    lines = (out / "metadata.jsonl").read_text(encoding="ascii").splitlines()
    assert [json.loads(line) for line in lines] == rows
    for row in rows:
        assert row["seconds"] == SECONDS and row["sample_rate"] == SR and row["seed"] == 7
        assert row["lyrics"].strip() and row["lyrics"].isascii()
        assert row["key"].split()[0] and row["tempo_bpm"] > 0
        info = sf.info(out / row["path"])
        assert info.samplerate == SR and info.channels == 1
        assert abs(info.frames - SECONDS * SR) <= 1
    names = {p.name for p in out.iterdir()}
    assert names == {"metadata.jsonl"} | {row["path"] for row in rows}, "no staging leftovers"


def test_audio_is_peak_normalised_without_clipping(small_corpus):
    _, _, audio = small_corpus
    peaks = np.array([np.max(np.abs(x)) for x in audio])
    assert np.all(peaks < 0.95) and np.all(peaks > 0.8)


def _share_above(x: np.ndarray, sr: int, hz: float) -> float:
    power = np.abs(np.fft.rfft(x)) ** 2
    return float(power[np.fft.rfftfreq(len(x), 1 / sr) >= hz].sum() / power.sum())


@pytest.mark.parametrize("index", [0, 1, 3])
def test_a_song_at_a_lower_rate_is_the_same_song_less_its_highest_frequencies(index):
    """The default model's corpus is synthesised at 16 kHz and `cocompose evaluate` reads 22.05 kHz songs
    resampled: both must be the same music. Drawn at 16 kHz directly, the drums once put twice the share
    of the song's energy above 4 kHz."""
    plan = compose_song(3, index, SECONDS)
    low = render_song(plan, 16000)
    voiced = soxr.resample(render_song(plan, SR), SR, 16000)
    assert low.dtype == np.float32 and len(low) == round(SECONDS * 16000)
    assert 0.85 < np.max(np.abs(low)) <= 0.89 + 1e-6
    for hz in (1000, 4000, 6000):
        assert _share_above(low, 16000, hz) == pytest.approx(_share_above(voiced, 16000, hz), rel=0.05)


def test_artists_and_genres_are_balanced(small_corpus):
    _, rows, _ = small_corpus
    artists = Counter(row["artist"] for row in rows)
    genres = Counter(row["genre"] for row in rows)
    assert set(artists) == {a.name for a in ARTISTS} and len(set(artists.values())) == 1
    assert set(genres) == {g.name for g in GENRES} and len(set(genres.values())) == 1
    assert len({(row["artist"], row["genre"]) for row in rows}) == len(ARTISTS) * len(GENRES)


@pytest.mark.parametrize("seconds", [SECONDS, 30.0, 95.5])
def test_sections_cover_the_song_from_intro_to_ending(seconds):
    for index in range(len(GENRES) * len(ARTISTS)):
        sections = compose_song(3, index, seconds).sections
        assert sections[0].name == "intro" and sections[0].start_s == 0.0
        assert sections[-1].name == "ending" and sections[-1].end_s == seconds
        assert all(a.end_s == b.start_s for a, b in itertools.pairwise(sections))
        assert all(s.end_s > s.start_s for s in sections)
        middle = {s.name for s in sections[1:-1]}
        assert middle == {"verse", "chorus"}
    assert sum(s.name == "chorus" for s in compose_song(3, 0, 95.5).sections) >= 2


def test_a_nearest_centroid_classifier_names_the_artist(small_corpus):
    _, rows, audio = small_corpus
    features = np.stack([timbre_features(x) for x in audio])
    labels = np.array([row["artist"] for row in rows])
    accuracy = nearest_centroid_accuracy(features, labels, _halves(len(rows)))
    assert accuracy >= 0.9, accuracy


def test_a_nearest_centroid_classifier_names_the_genre_from_tempo(small_corpus):
    _, rows, audio = small_corpus
    features = np.stack([tempo_features(x) for x in audio])
    labels = np.array([row["genre"] for row in rows])
    accuracy = nearest_centroid_accuracy(features, labels, _halves(len(rows)))
    assert accuracy >= 0.8, accuracy


def test_the_voice_sings_the_lyrics_in_verses_and_choruses_only():
    plan = compose_song(11, 3, 30.0)
    voice = render_stems(plan, SR)["voice"]

    # The sung words are the lyric text, in order.
    lyric_words = plan.lyrics.lower().split()
    assert [note.word for note in plan.sung] == lyric_words

    # Voice energy lives in verses and choruses; intro and ending are instrumental.
    def rms(section):
        part = voice[int(section.start_s * SR) : int(section.end_s * SR)]
        return float(np.sqrt(np.mean(part**2)))

    sung = [rms(s) for s in plan.sections if s.name in ("verse", "chorus")]
    assert min(sung) > 0.1
    assert rms(plan.sections[0]) < 0.01 * min(sung)
    assert rms(plan.sections[-1]) < 0.05 * min(sung)

    # The vowel follows the word: /i/ has its second formant high (~2.3 kHz), /o/ and /u/ low (~0.8 kHz).
    def f2_tilt(note):
        start = int((note.start_s + 0.05) * SR)
        segment = voice[start : start + 2048] * np.hanning(2048)
        spectrum = np.abs(np.fft.rfft(segment)) ** 2
        freqs = np.fft.rfftfreq(2048, 1 / SR)
        high = spectrum[(freqs > 1800) & (freqs < 2800)].sum()
        low = spectrum[(freqs > 600) & (freqs < 1000)].sum()
        return np.log(high / low)

    front = [f2_tilt(n) for n in plan.sung if n.vowel == "i" and n.dur_s > 0.15]
    back = [f2_tilt(n) for n in plan.sung if n.vowel in ("o", "u") and n.dur_s > 0.15]
    assert front and back
    assert np.mean(front) > np.mean(back) + 1.0, (front, back)


def test_songs_end_quieter_than_their_body(small_corpus):
    _, rows, audio = small_corpus
    for row, x in zip(rows, audio, strict=True):
        body = x[int(row["sections"][1]["start_s"] * SR) : int(row["sections"][-1]["start_s"] * SR)]
        last_second = x[-SR:]
        assert np.sqrt(np.mean(last_second**2)) < 0.5 * np.sqrt(np.mean(body**2)), row["path"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--songs", "0"], "--songs must be at least 1"),
        (["--songs", "-3"], "--songs must be at least 1"),
        (["--seconds", "0"], "--seconds must be positive"),
        (["--seconds", "-2"], "--seconds must be positive"),
        (["--seconds", "5"], f"use at least {MIN_SONG_SECONDS} s"),
        (["--seed", "-1"], "--seed must be 0 or more"),
        (["--sample-rate", "100"], "--sample-rate must be within"),
        (["--duets", "1.5"], "--duets is a share of the songs and must be within 0..1, got 1.5"),
        (["--duets", "-0.1"], "--duets is a share of the songs and must be within 0..1, got -0.1"),
        (["--duets", "nan"], "--duets is a share of the songs and must be within 0..1, got nan"),
        (["--duets", "0.5"], f"use at least {MIN_DUET_SECONDS} s with --duets"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(tmp_path, capsys, extra, message):
    out = tmp_path / "corpus"
    assert main(["synth", str(out), "--songs", "1", "--seconds", "12", *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_unusable_output_folders_exit_2(tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a folder")
    assert main(["synth", str(a_file / "corpus"), "--songs", "1", "--seconds", "12"]) == 2
    assert "cannot create output folder" in capsys.readouterr().err

    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    assert main(["synth", str(full), "--songs", "1", "--seconds", "12"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert [p.name for p in full.iterdir()] == ["keep.txt"]


def test_cli_writes_a_corpus_and_overwrite_replaces_it(tmp_path, capsys):
    out = tmp_path / "corpus"
    assert main(["synth", str(out), "--songs", "3", "--seconds", "12", "--format", "wav"]) == 0
    assert "wrote 3 songs" in capsys.readouterr().out
    assert main(["synth", str(out), "--songs", "2", "--seconds", "12", "--format", "wav", "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["metadata.jsonl", "song_00000.wav", "song_00001.wav"]
    assert len((out / "metadata.jsonl").read_text().splitlines()) == 2


def test_a_failing_run_leaves_no_files(tmp_path, monkeypatch):
    real_render = corpus.render_song
    calls = []

    def render_then_fail(plan, sr):
        calls.append(plan.index)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return real_render(plan, sr)

    monkeypatch.setattr(corpus, "render_song", render_then_fail)
    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_corpus(fresh, songs=3, seconds=SECONDS, seed=0)
    assert not fresh.exists()

    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "metadata.jsonl").write_text('{"path": "old.flac"}\n')
    (kept / "old.flac").write_bytes(b"old")
    calls.clear()
    with pytest.raises(RuntimeError):
        write_corpus(kept, songs=3, seconds=SECONDS, seed=0, overwrite=True)
    assert sorted(p.name for p in kept.iterdir()) == ["metadata.jsonl", "old.flac"]
    assert (kept / "old.flac").read_bytes() == b"old"


# ------------------------------------------------------------------------------------------------ duets

DUET_SECONDS = 20.0  # a little over MIN_DUET_SECONDS
STEM_SR = 11025  # stems are rendered directly at any rate; this one keeps the duet tests quick


def _bar_s(plan) -> float:
    return plan.genre.beats_per_bar * 60.0 / plan.tempo_bpm


def _files(out) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_duets_zero_is_the_corpus_without_duets_and_duets_leave_the_solo_songs_alone(tmp_path):
    def corpus_at(name, **duets):
        rows = write_corpus(tmp_path / name, songs=4, seconds=DUET_SECONDS, seed=2, fmt="wav", **duets)
        return rows, _files(tmp_path / name)

    default, zero, half = corpus_at("default"), corpus_at("zero", duets=0.0), corpus_at("half", duets=0.5)
    assert zero == default
    rows, files = half
    duets = [row["index"] for row in rows if "artist_changes" in row]
    assert 0 < len(duets) < len(rows), "seed 2 should mix solos and duets"
    for row, solo in zip(rows, default[0], strict=True):
        name = row["path"]
        if row["index"] in duets:
            assert {**row, "artist_changes": None} == {**solo, "artist_changes": None}
            assert files[name] != default[1][name]
        else:
            assert row == solo and files[name] == default[1][name]


@pytest.mark.parametrize("index", range(6))
def test_a_duet_is_the_solo_song_up_to_its_hand_off(index):
    solo, duet = compose_song(5, index, DUET_SECONDS), compose_song(5, index, DUET_SECONDS, duet=True)
    (change,) = duet.changes
    assert duet.notes == [note for note in solo.notes if note.start_s < change.start_s]
    assert all(note.start_s >= change.start_s for note in change.notes)
    # Voice, drums, words and form are the solo song's all the way through.
    kept = ("sung", "hits", "lyrics", "sections", "artist", "genre", "tempo_bpm", "key", "fade_start_s")
    for field in kept:
        assert getattr(duet, field) == getattr(solo, field), field

    solo_stems, duet_stems = render_stems(solo, STEM_SR), render_stems(duet, STEM_SR)
    assert np.array_equal(duet_stems["voice"], solo_stems["voice"])
    assert np.array_equal(duet_stems["drums"], solo_stems["drums"])
    # Before the hand-off the artist stem is the solo one, at the level of the span the first artist plays
    # rather than of the whole song.
    before = round(change.start_s * STEM_SR)
    ours, theirs = duet_stems["artist"][:before], solo_stems["artist"][:before]
    gain = np.dot(ours, theirs) / np.dot(ours, ours)
    assert 0.5 < gain < 2.0
    np.testing.assert_allclose(gain * ours, theirs, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seconds", [MIN_DUET_SECONDS, 30.0, 95.5])
def test_the_hand_off_is_at_a_bar_start_in_the_body_and_to_another_artist(seconds):
    second_artists, offsets = set(), set()
    for index in range(len(GENRES) * len(ARTISTS)):
        plan = compose_song(3, index, seconds, duet=True)
        (change,) = plan.changes
        bar_s = _bar_s(plan)
        bar = round(change.start_s / bar_s)
        assert change.start_s == pytest.approx(bar * bar_s, abs=1e-9), "the hand-off is on a bar start"
        verse = next(s for s in plan.sections if s.name == "verse")
        assert (
            verse.start_bar + HANDOFF_MARGIN_BARS <= bar <= plan.sections[-1].start_bar - HANDOFF_MARGIN_BARS
        )
        assert change.artist != plan.artist
        second_artists.add(change.artist.name)
        offsets.add(bar - verse.start_bar)
        assert plan.parts()[-1].notes[-1].start_s > plan.sections[-1].start_s, "the second artist ends it"

        row = corpus.song_metadata(plan, "x.wav", SR)
        assert row["artist"] == plan.artist.name
        assert row["artist_changes"] == [{"start_s": round(change.start_s, 4), "artist": change.artist.name}]
        assert "artist_changes" not in corpus.song_metadata(compose_song(3, index, seconds), "x.wav", SR)
    assert second_artists == {a.name for a in ARTISTS}
    assert len(offsets) >= 3, "the hand-off bar is drawn, not fixed"


def test_songs_too_short_for_a_hand_off_are_refused_as_duets():
    # At 12 s the slowest genre has one bar of verse and one of chorus: no bar is 2 from both ends.
    slowest = min(range(len(GENRES)), key=lambda index: compose_song(0, index, SECONDS).tempo_bpm)
    assert len(compose_song(0, slowest, SECONDS).sections) == 4
    with pytest.raises(ValueError, match=f"too short for a duet: use at least {MIN_DUET_SECONDS} s"):
        compose_song(0, slowest, SECONDS, duet=True)
    too_short = MIN_DUET_SECONDS - 0.1
    with pytest.raises(ValueError, match="too short for duets"):
        corpus.check_request(1, too_short, 0, SR, "wav", duets=0.1)
    corpus.check_request(1, too_short, 0, SR, "wav", duets=0.0)


def test_the_share_of_duets_is_honoured_and_fixed_by_the_seed(tmp_path, monkeypatch):
    # Which songs are duets is decided before rendering: skip the audio to count over many songs.
    def silence(plan, sr):
        return np.zeros(round(plan.seconds * sr), np.float32)

    monkeypatch.setattr(corpus, "render_song", silence)
    settings = {"songs": 40, "seconds": DUET_SECONDS, "sample_rate": 8000, "fmt": "wav"}

    def duets(name, share, seed=4):
        rows = write_corpus(tmp_path / name, seed=seed, duets=share, **settings)
        return [row["index"] for row in rows if "artist_changes" in row]

    half = duets("a", 0.5)
    assert 10 <= len(half) <= 30
    assert duets("b", 0.5) == half
    assert duets("c", 0.5, seed=5) != half
    assert len(duets("d", 1.0)) == 40 and duets("e", 0.0) == []
    quarter = duets("f", 0.25)
    assert set(quarter) < set(half), "a song that is a duet at one share is one at every larger share"


def test_cli_writes_duets(tmp_path, capsys):
    out = tmp_path / "corpus"
    args = ["synth", str(out), "--songs", "2", "--seconds", str(MIN_DUET_SECONDS), "--format", "wav"]
    assert main([*args, "--duets", "1"]) == 0
    assert "wrote 2 songs" in capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert all(row["artist_changes"][0]["artist"] != row["artist"] for row in rows)


def test_after_the_hand_off_the_artist_stem_is_the_second_artists_instrument():
    plan = compose_song(8, 2, DUET_SECONDS, duet=True)
    (change,) = plan.changes
    stem = render_stems(plan, STEM_SR)["artist"]
    n, start = len(stem), round(change.start_s * STEM_SR)
    first = render_part(plan.notes, plan.artist.instrument, STEM_SR, n)
    second = render_part(list(change.notes), change.artist.instrument, STEM_SR, n)

    # Once the first artist's last notes have rung out, the stem is the second artist's part alone, levelled
    # to unit RMS over the span it plays: the level of a solo artist over its song.
    rung_out = np.flatnonzero(first)[-1] + 1
    assert start <= rung_out < start + 3 * STEM_SR
    levelled = second / np.sqrt(np.mean(second[start:] ** 2))
    np.testing.assert_allclose(stem[rung_out:], levelled[rung_out:], rtol=1e-9, atol=1e-12)
    # And the first artist, levelled the same way over its own span, is the rest of the stem.
    opening = stem - levelled
    np.testing.assert_allclose(opening, first / np.sqrt(np.mean(first[:start] ** 2)), atol=1e-9)
    assert np.sqrt(np.mean(stem[:start] ** 2)) == pytest.approx(1.0, rel=1e-6)
