"""cocompose.take_audio: the song up to a take, as the player hears it, through the real service and the
tiny model. A path is its takes' previews end to end; siblings share their path up to the take (so one
playhead position is one moment of the song on both); a take still being sampled is heard while it grows
and ends as its finished preview; a start of the song primed later is gathered again."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from cocompose.service import ComposeService, GenerateRequest
from cocompose.service.jobs import FINISHED, PREVIEW_AUDIO
from cocompose.song import Codes, Conditioning, ModelInfo
from cocompose.store import Project
from cocompose.take_audio import SongAudio
from engine.api import ComposeEngine
from tests.compose_model import write_tiny_bundle

TIMEOUT = 120
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return ComposeEngine.load(write_tiny_bundle(tmp_path_factory.mktemp("bundle"), audible=True))


def tone_codes(engine, seconds=1.0):
    t = np.arange(round(seconds * engine.sample_rate)) / engine.sample_rate
    return engine.encode_prime(0.3 * np.sin(2 * np.pi * 220 * t), engine.sample_rate)


def new_project(path, engine, prime=None):
    info = ModelInfo(engine.name, engine.model_hash, engine.sample_rate, engine.codes_per_second)
    return Project.create(path, conditioning=Conditioning("Ada Tone", "rock"), planned_seconds=30, model=info,
                          prime_codes=Codes.of(prime) if prime is not None else None)  # fmt: skip


class Wired:
    """A service whose events feed a SongAudio, as AppSession wires them."""

    def __init__(self, project, engine):
        self.audio: SongAudio | None = None
        self.service = ComposeService(project, engine, on_event=self.on_event)
        self.audio = SongAudio(self.service)

    def on_event(self, event):
        if self.audio is None or event.kind != "generate":
            return
        if event.state in FINISHED:
            self.audio.job_ended(event.node_ids)
        elif event.message == PREVIEW_AUDIO:
            self.audio.grew(event.node_ids)


def cached_preview(service, engine, node_id):
    return service.read(lambda p: p.preview(node_id, engine.decoder_hash))[1]


def test_a_path_is_its_takes_previews_end_to_end_and_siblings_share_it(tmp_path, engine):
    project = new_project(tmp_path / "song.cocompose", engine, tone_codes(engine))
    wired = Wired(project, engine)
    with wired.service as service:
        first = service.submit(GenerateRequest.branches(1, 1, 0.5, seed=1)).wait(TIMEOUT)[0]
        a, b = service.submit(GenerateRequest.branches(first, 2, 0.5, seed=7)).wait(TIMEOUT)
        path_a, path_b = wired.audio.path(a), wired.audio.path(b)
        assert path_a.node_ids == (1, first, a) and path_b.node_ids == (1, first, b)
        assert path_a.source.complete and path_b.source.complete

        root = wired.audio.take(1).audio()  # the prime: decoded when first heard, and cached
        np.testing.assert_array_equal(root, cached_preview(service, engine, 1))
        pieces = [root, cached_preview(service, engine, first), cached_preview(service, engine, a)]
        np.testing.assert_array_equal(path_a.source.audio(), np.concatenate(pieces))

        # The take starts where the codes before it end, in both paths; before it the two are one song.
        hop = engine.sample_rate / engine.codes_per_second
        before = service.read(lambda p: len(p.tree.path_codes(first)))
        assert path_a.take_start == path_b.take_start == pytest.approx(before * hop / engine.sample_rate)
        start = round(path_a.take_start * engine.sample_rate)
        np.testing.assert_array_equal(path_a.source.audio()[:start], path_b.source.audio()[:start])
        assert not np.array_equal(path_a.source.audio()[start:], path_b.source.audio()[start:])
        assert len(path_a.source.audio()) == round(path_a.take_end * engine.sample_rate)
        assert wired.audio.path(a) is path_a  # kept ready: asking again costs nothing
    project.close()


def test_a_take_being_sampled_is_heard_as_it_grows_and_ends_as_its_preview(tmp_path, engine):
    project = new_project(tmp_path / "song.cocompose", engine, tone_codes(engine))
    wired = Wired(project, engine)
    created = threading.Event()
    asked = {}

    def on_event(event):
        wired.on_event(event)
        if event.message == "takes created":
            asked["take"] = event.node_ids[0]
            created.set()

    wired.service.on_event = on_event
    with wired.service as service:
        handle = service.submit(GenerateRequest.branches(1, 1, 3.0, seed=3))
        assert created.wait(TIMEOUT)
        # The app's audio thread asks while the take is drawn (the uncached prime is decoded meanwhile).
        path = wired.audio.path(asked["take"])
        seen = [path.source.frames]
        deadline = time.monotonic() + TIMEOUT
        while not path.source.complete and time.monotonic() < deadline:  # complete once the job's end is told
            seen.append(path.source.frames)
            time.sleep(0.01)
        take = handle.wait(TIMEOUT)[0]
        assert path.node_ids == (1, take)
        assert path.source.complete
        assert len(set(seen)) >= 3 and seen == sorted(seen)  # it grew in steps while the take was drawn
        expected = np.concatenate([wired.audio.take(1).audio(), cached_preview(service, engine, take)])
        np.testing.assert_array_equal(path.source.audio(), expected)
    project.close()


def test_a_start_primed_after_it_was_heard_is_gathered_again(tmp_path, engine):
    project = new_project(tmp_path / "song.cocompose", engine)
    wired = Wired(project, engine)
    with wired.service as service:
        empty = wired.audio.path(1)
        assert empty.source.complete and empty.source.frames == 0
        codes = tone_codes(engine, 0.5)
        service.read(lambda p: p.set_prime(Codes.of(codes), b"riff", "riff.wav"))
        primed = wired.audio.path(1)
        hop = round(engine.sample_rate / engine.codes_per_second)
        assert primed is not empty and primed.source.frames == len(codes) * hop
        assert np.abs(primed.source.audio()).max() > 0.01
    project.close()


def test_a_take_that_is_not_there_is_named(tmp_path, engine):
    project = new_project(tmp_path / "song.cocompose", engine)
    wired = Wired(project, engine)
    with wired.service, pytest.raises(LookupError, match="Take 99 is not in this song"):
        wired.audio.path(99)
    project.close()
