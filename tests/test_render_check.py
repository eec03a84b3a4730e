"""The render check (classifiers fitted on real audio judging upsampled renders) on the tiny model: every
source is heard on the same clip grid, and models or settings it cannot judge are refused."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from engine.api import ComposeEngine
from engine.evaluation.designs import DESIGNS
from engine.evaluation.renders import SOURCES, UNGUIDED, RenderCheckConfig, faithfulness, render_check
from engine.render_guide import RenderGuide
from tests.compose_model import write_tiny_bundle
from tests.test_conditioning_eval import KNOWN_ARTISTS, KNOWN_GENRES, corpus_vocabulary

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = RenderCheckConfig(
    songs_per_artist=1,
    reference_songs=24,  # every known artist and genre at least once (see test_conditioning_eval)
    reference_seconds=12.0,
    song_seconds=12.0,
    render_seconds=1.5,
    listen_from_seconds=0.5,
    clip_seconds=0.5,
    change_at_seconds=0.25,
    after_change_seconds=0.25,
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> ComposeEngine:
    folder = tmp_path_factory.mktemp("renders") / "model"
    write_tiny_bundle(folder, vocabulary=corpus_vocabulary(KNOWN_ARTISTS, KNOWN_GENRES), audible=True)
    return ComposeEngine.load(folder)


def test_every_source_is_heard_on_the_same_clips(engine):
    said: list[str] = []
    check = render_check(engine, TINY, say=said.append)
    clips_per_song = 2  # 0.5..1.0 s and 1.0..1.5 s
    songs = TINY.songs_per_artist * len(KNOWN_ARTISTS)
    # the bottom upsampler alone is opt-in; unguided twins only for a model whose previews guide renders
    heard = [
        s for s in SOURCES if not s.startswith("real middle codes upsampled") and not s.endswith(UNGUIDED)
    ]
    assert check.clips == dict.fromkeys(heard, songs * clips_per_song)
    assert sum("generated songs:" in line for line in said) == songs
    assert sum("artist changes:" in line for line in said) == songs
    for source in heard:
        assert set(check.accuracy[source]) == {"artist", "genre"}
        assert all(0.0 <= share <= 1.0 for share in check.accuracy[source].values())
    assert "generated upsampled" in check.to_text()
    # Every design judges the same clips; the card's design is the check's own figures.
    assert set(check.by_design) == {design.name for design in DESIGNS}
    assert check.by_design["log-mel statistics"] == check.accuracy
    assert set(check.by_design["long-term spectrum"]["generated upsampled"]) == {"artist"}
    assert "onset rhythm" in check.to_text()


def test_after_an_artist_change_the_clips_are_judged_by_the_new_artist(engine):
    check = render_check(engine, TINY, say=lambda line: None)
    clips_per_song = 2
    plain = check.heard["generated upsampled"]
    song_artists = list(plain["artist"].names)[::clips_per_song]  # one song per artist, in the check's order
    assert sorted(song_artists) == sorted(KNOWN_ARTISTS)
    # artist a's song (round 0) changes to artist a + 1; the genre stays
    new_artists = [song_artists[(a + 1) % len(song_artists)] for a in range(len(song_artists))]
    for source in ("artist changed upsampled", "artist changed previews"):
        assert list(check.heard[source]["artist"].names) == [
            a for a in new_artists for _ in range(clips_per_song)
        ]
        assert list(check.heard[source]["genre"].names) == list(plain["genre"].names)
    assert list(check.heard["generated previews"]["artist"].names) == list(plain["artist"].names)


def test_without_a_change_no_changed_songs_are_made(engine):
    said: list[str] = []
    check = render_check(engine, replace(TINY, change_at_seconds=None), say=said.append)
    assert not any(source.startswith("artist changed") for source in check.clips)
    assert not any("artist changes:" in line for line in said)
    assert "generated previews" in check.clips


def test_faithfulness_is_the_spectral_convergence_and_log_spectral_distance_to_the_songs():
    rng = np.random.default_rng(0)
    real = [rng.standard_normal(8000).astype(np.float32) * 0.1 for _ in range(3)]
    sc, lsd = faithfulness(real, real)
    assert sc <= -200 and lsd == 0.0
    sc, lsd = faithfulness(real, [clip * 0.5 for clip in real])  # half as loud: 6.02 dB both ways
    assert sc == pytest.approx(20 * np.log10(0.5), abs=1e-3) and lsd == pytest.approx(
        20 * np.log10(2), abs=1e-3
    )
    other = [rng.standard_normal(8000).astype(np.float32) * 0.1 for _ in range(3)]
    # Unrelated noise of the same colour: independent Rayleigh magnitudes differ by 2 - pi / 2 of the
    # power (-3.7 dB), and independent exponential powers by 7.9 dB rms in decibels.
    sc_other, lsd_other = faithfulness(real, other)
    assert sc_other == pytest.approx(10 * np.log10(2 - np.pi / 2), abs=0.5)
    assert lsd_other == pytest.approx(np.sqrt(2) * 10 / np.log(10) * np.pi / np.sqrt(6), abs=0.5)


def test_sources_heard_on_the_real_songs_are_measured_against_them(engine):
    check = render_check(engine, TINY, say=lambda line: None)
    assert set(check.faithfulness) == {"bottom recon", "real codes upsampled"}
    real = check.heard["real"]["artist"].clips
    for source, measured in check.faithfulness.items():
        assert measured == faithfulness(real, check.heard[source]["artist"].clips)
    assert "faithful to the real songs" in check.to_text()


def test_the_bottom_upsampler_alone_is_heard_on_the_real_songs_clips(engine):
    check = render_check(engine, replace(TINY, bottom_alone=True), say=lambda line: None)
    assert (
        check.clips["real middle codes upsampled"]
        == check.clips["real"]
        == check.clips["generated upsampled"]
    )
    assert set(check.accuracy["real middle codes upsampled"]) == {"artist", "genre"}
    assert "real middle codes upsampled" in check.to_text()


def test_a_guided_models_renders_are_heard_as_the_app_plays_them_and_unguided_on_the_same_draws(tmp_path):
    folder = write_tiny_bundle(
        tmp_path / "guided",
        vocabulary=corpus_vocabulary(KNOWN_ARTISTS, KNOWN_GENRES),
        audible=True,
        render_guide=RenderGuide(bands=12, limit_db=9.0),
    )
    check = render_check(ComposeEngine.load(folder), replace(TINY, bottom_alone=True), say=lambda line: None)
    assert set(check.clips) == set(SOURCES)
    for source in ("real codes upsampled", "real middle codes upsampled", "generated upsampled"):
        assert check.clips[source + UNGUIDED] == check.clips[source] == check.clips["real"]
        assert source + UNGUIDED in check.to_text()


def test_a_model_without_upsamplers_and_impossible_clips_are_refused(engine, tmp_path):
    folder = write_tiny_bundle(
        tmp_path / "no-ups", upsamplers=False, vocabulary=corpus_vocabulary(KNOWN_ARTISTS, KNOWN_GENRES)
    )
    with pytest.raises(ValueError, match="no upsamplers"):
        render_check(ComposeEngine.load(folder), TINY)
    with pytest.raises(ValueError, match="clips must fit"):
        RenderCheckConfig(render_seconds=10.0, listen_from_seconds=8.0, clip_seconds=3.0)
    with pytest.raises(ValueError, match="at least one song"):
        RenderCheckConfig(songs_per_artist=0)
    with pytest.raises(ValueError, match="artist change must come after the start"):
        RenderCheckConfig(change_at_seconds=7.0, after_change_seconds=2.0, listen_from_seconds=8.0)
    with pytest.raises(ValueError, match="artist change must come after the start"):
        RenderCheckConfig(change_at_seconds=0.0)
    with pytest.raises(ValueError, match="upsample_temperature must be above 0"):
        RenderCheckConfig(upsample_temperature=0.0)
