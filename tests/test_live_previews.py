"""Branches are audible while they are sampled: the service hands out each take's preview audio as it
becomes final, the streamed audio is the finished preview, and the finished preview is cached."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from cocompose.service import ComposeService, GenerateRequest, PreviewRequest
from cocompose.service.jobs import PREVIEW_AUDIO
from cocompose.song import Codes, Conditioning, ModelInfo
from cocompose.store import Project
from engine.api import ComposeEngine
from tests.compose_model import write_tiny_bundle

TIMEOUT = 120
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return ComposeEngine.load(write_tiny_bundle(tmp_path_factory.mktemp("bundle"), audible=True))


def test_takes_are_heard_while_sampled_and_the_stream_is_the_finished_preview(tmp_path, engine):
    t = np.arange(engine.sample_rate) / engine.sample_rate
    prime = engine.encode_prime(0.3 * np.sin(2 * np.pi * 220 * t), engine.sample_rate)
    info = ModelInfo(engine.name, engine.model_hash, engine.sample_rate, engine.codes_per_second)
    project = Project.create(tmp_path / "song.cocompose", conditioning=Conditioning("Ada Tone", "rock"),
                             planned_seconds=30, model=info, prime_codes=Codes.of(prime))  # fmt: skip
    heard: dict[int, list[float]] = {}
    lock = threading.Lock()

    def on_event(event):
        if event.message == PREVIEW_AUDIO:
            for node_id in event.node_ids:
                got = service.live.audio(node_id)
                with lock:
                    heard.setdefault(node_id, []).append(len(got[0]) / got[1] if got else 0.0)

    with ComposeService(project, engine, on_event=on_event) as service:
        ids = service.submit(GenerateRequest.branches(1, 2, 1.5, seed=5)).wait(TIMEOUT)
        for node_id in ids:
            # Audio arrived in several growing pieces before the take was finished.
            assert len(heard[node_id]) >= 3 and heard[node_id] == sorted(heard[node_id])
            assert 0 < heard[node_id][0] < heard[node_id][-1]
            streamed, rate = service.live.audio(node_id)
            # The finished take's preview is cached, and equals the audio streamed while sampling ...
            cached_rate, cached = service.read(lambda p, n=node_id: p.preview(n, engine.decoder_hash))
            assert cached_rate == rate and np.array_equal(cached, streamed)
            # ... and a fresh decode of the whole take (the preview job's own path), to float rounding.
            codes = service.read(lambda p, n=node_id: p.tree.path_codes(n).to_numpy())
            take = len(service.read(lambda p, n=node_id: p.tree.node(n).codes))
            margin = min(len(codes) - take, round(engine.codes_per_second))
            whole, _ = engine.decode_preview(codes[len(codes) - take - margin :])
            hop = round(engine.sample_rate / engine.codes_per_second)
            np.testing.assert_allclose(streamed, whole[margin * hop :], atol=2e-5, rtol=0)
            assert len(streamed) == take * hop
        # Asking for the preview afterwards costs nothing: it comes from the cache.
        audio, rate = service.submit(PreviewRequest(ids[0])).wait(TIMEOUT)
        assert np.array_equal(audio, service.live.audio(ids[0])[0])
    project.close()
