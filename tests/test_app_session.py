"""The app's session (Qt-free): a song made with the tiny model through the session's threads alone, as
the window drives it; the "open when the app died" mark and recent projects; and errors that name the
problem instead of stopping anything."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf

from cocompose.app_session import NO_MODEL_HELP, AppSession, ModelMissing
from cocompose.app_state import AppState, load_state, save_state
from cocompose.export import ExportSettings
from cocompose.song import Conditioning
from cocompose.tree_mirror import TreeSnapshot
from tests.compose_model import write_tiny_bundle

pytestmark = pytest.mark.usefixtures("one_thread")
TIMEOUT = 60


class Recorder:
    """notify() for the session: keeps every report and lets the test wait for one."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, object]] = []
        self._changed = threading.Condition()

    def __call__(self, kind: str, payload: object) -> None:
        with self._changed:
            self.reports.append((kind, payload))
            self._changed.notify_all()

    def wait_for(self, predicate, timeout: float = TIMEOUT) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: predicate(self.reports), timeout), self.reports[-5:]

    def errors(self) -> list[str]:
        return [str(payload) for kind, payload in self.reports if kind == "error"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_tiny_bundle(tmp_path_factory.mktemp("bundle"))


def tree_of(session: AppSession) -> TreeSnapshot:
    with session.lock:
        return TreeSnapshot.of(session.project.tree)


def test_a_song_made_through_the_session_reopens_as_it_was(tmp_path, bundle):
    notes = Recorder()
    session = AppSession(notes, state_dir=tmp_path / "config")
    try:
        model = session.load_model(bundle).result(TIMEOUT)
        assert model.artists == ("ada_tone", "bo_noise", "cleo_hum", "unknown") and model.device == "cpu"
        song = tmp_path / "song.cocompose"
        session.new_project(song, Conditioning("Ada Tone", "rock"), 20).result(TIMEOUT)
        assert load_state(tmp_path / "config").open_project == str(song.resolve())

        three = session.generate(1, 3, 0.5, seed=11).result(TIMEOUT).wait(TIMEOUT)
        session.pick(three[1]).result(TIMEOUT)
        grown = session.generate(None, 1, 0.5, seed=5).result(TIMEOUT).wait(TIMEOUT)
        # One branch from the end of the song is picked as soon as it is done: the song grows.
        notes.wait_for(lambda _: session.project.tree.current_id == grown[0])
        session.swap(grown[0], "Bo Noise", "jazz").result(TIMEOUT)
        with session.lock:
            assert session.project.tree.conditioning_at(grown[0]).artist == "Bo Noise"
            assert session.project.tree.conditioning_at(three[1]).artist == "Ada Tone"

        out = tmp_path / "song.wav"
        result = session.export(out, ExportSettings(loudness_lufs=None), "preview").result(TIMEOUT)
        audio, rate = sf.read(out)
        codes = len(session.project.tree.path_codes(grown[0]))
        assert rate == model.sample_rate
        assert len(audio) == pytest.approx(codes * model.sample_rate / model.codes_per_second, abs=1)
        assert result.path == out
        kinds = {(kind, p.kind, p.state) for kind, p in notes.reports if kind == "job"}
        assert {("job", "generate", "done"), ("job", "render", "done"), ("job", "export", "done")} <= kinds

        before = tree_of(session)
        session.close_project().result(TIMEOUT)
        assert session.project is None and load_state(tmp_path / "config").open_project is None
        session.open_project(song).result(TIMEOUT)
        assert tree_of(session) == before
        assert session.state.recent[0] == str(song.resolve())
    finally:
        session.shutdown()
    assert notes.errors() == []
    assert load_state(tmp_path / "config").open_project is None  # a clean exit leaves no mark


def test_without_a_model_the_session_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setattr("cocompose.app_session.DEFAULT_MODEL", tmp_path / "nothing-here")
    notes = Recorder()
    session = AppSession(notes, state_dir=tmp_path)
    try:
        with pytest.raises(ModelMissing, match="train-default"):
            session.load_model().result(TIMEOUT)
        # A song can still be made and edited; sampling explains what is missing.
        session.new_project(tmp_path / "a.cocompose", Conditioning("Anyone", "any"), 10).result(TIMEOUT)
        with pytest.raises(ModelMissing):
            session.generate(1, 2, 1.0, seed=0).result(TIMEOUT)
        assert notes.errors() == [NO_MODEL_HELP, NO_MODEL_HELP]
        # Bad input gets a clear message and nothing else happens.
        with pytest.raises(Exception, match="already exists"):
            session.new_project(tmp_path / "a.cocompose", Conditioning("x", "y"), 10).result(TIMEOUT)
        assert session.project is None or session.project.path.name == "a.cocompose"
    finally:
        session.shutdown()


def test_unknown_names_are_refused_with_the_nearest_ones(tmp_path, bundle):
    notes = Recorder()
    session = AppSession(notes, state_dir=tmp_path)
    try:
        session.load_model(bundle).result(TIMEOUT)
        session.new_project(tmp_path / "s.cocompose", Conditioning("Ada Tone", "rock"), 10).result(TIMEOUT)
        with pytest.raises(ValueError, match="nearest: ada_tone"):
            session.swap(1, "Ada Tome", "rock").result(TIMEOUT)
        with session.lock:
            assert session.project.tree.conditioning_at(1).artist == "Ada Tone"
    finally:
        session.shutdown()


def test_requests_after_shutdown_come_back_cancelled_and_run_nothing(tmp_path, bundle):
    """A late answer can make a widget ask again while the app closes (the lyrics follower re-asks when
    its take changed meanwhile): the session then hands back cancelled futures, never an exception."""
    notes = Recorder()
    session = AppSession(notes, state_dir=tmp_path)
    session.load_model(bundle).result(TIMEOUT)
    session.new_project(tmp_path / "s.cocompose", Conditioning("Ada Tone", "rock"), 10).result(TIMEOUT)
    session.shutdown()
    late = [session.lyric_progress(1), session.close_project(), session.load_model(bundle)]
    assert all(future.cancelled() for future in late)
    assert notes.errors() == []


def test_the_app_state_file_survives_damage_and_keeps_the_newest_first(tmp_path):
    assert load_state(tmp_path) == AppState()
    (tmp_path / "app-state.json").write_text("{not json")
    assert load_state(tmp_path) == AppState()  # damaged: start with nothing remembered
    state = AppState()
    for name in ["a", "b", "a", *[f"x{i}" for i in range(12)]]:
        state = state.with_recent(tmp_path / name)
    assert state.recent[0] == str(tmp_path / "x11") and len(state.recent) == 10
    state = AppState(open_project=str(tmp_path / "b")).with_recent(tmp_path / "b").with_recent(tmp_path / "a")
    assert state.recent == (str(tmp_path / "a"), str(tmp_path / "b"))
    save_state(state, tmp_path)
    assert load_state(tmp_path) == state
    assert [p.name for p in tmp_path.iterdir()] == ["app-state.json"]  # no temporary file left


def test_a_prime_from_an_audio_file_becomes_the_start(tmp_path, bundle):
    session = AppSession(Recorder(), state_dir=tmp_path)
    try:
        model = session.load_model(bundle).result(TIMEOUT)
        session.new_project(tmp_path / "p.cocompose", Conditioning("Ada Tone", "rock"), 10).result(TIMEOUT)
        t = np.arange(model.sample_rate) / model.sample_rate
        sf.write(tmp_path / "riff.wav", 0.3 * np.sin(2 * np.pi * 330 * t), model.sample_rate)
        primed = session.prime(tmp_path / "riff.wav").result(TIMEOUT)
        assert primed.codes == pytest.approx(model.codes_per_second, abs=2)
        assert primed.heard is None  # a model without a beat clock does not listen for one
        assert primed.notice("riff.wav") == f"Primed with riff.wav ({primed.seconds:.1f} s)"
        with session.lock:
            assert len(session.project.tree.root.codes) == primed.codes
        (tmp_path / "bad.wav").write_text("not audio")
        with pytest.raises(ValueError, match=r"Cannot read bad\.wav"):
            session.prime(tmp_path / "bad.wav").result(TIMEOUT)
    finally:
        session.shutdown()
