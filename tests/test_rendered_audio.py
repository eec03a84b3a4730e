"""The song up to a take as far as its upsampled render has reached (cocompose.rendered_audio): with every
window saved it is run_render's upsampled audio itself; with none it is the preview sample for sample; with
some, the render up to the seam (decoded as the app decodes it, a piece at a time) and the preview from
there on; windows saved under another conditioning are never used. All of it for a model whose previews
guide its renders (`engine.render_guide`) as for one without."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from cocompose.rendered_audio import CROSSFADE_S, BottomDecoder, rendered_audio, saved_bottom_codes, splice
from cocompose.service import ComposeService, GenerateRequest, RenderRequest, UpsampleRequest
from cocompose.service.upsampling import resolve_stretch
from cocompose.song import Codes, Conditioning, ModelInfo
from cocompose.store import Project, UpsampleWindow
from cocompose.take_audio import SongAudio
from engine.api import ComposeEngine
from engine.render_guide import RenderGuide
from tests.compose_model import write_tiny_bundle

pytestmark = pytest.mark.usefixtures("one_thread")

TIMEOUT = 120
VOICE = Conditioning("Ada Tone", "rock")


@pytest.fixture(
    scope="module", params=[None, RenderGuide(bands=12, limit_db=9.0)], ids=["unguided", "guided"]
)
def engine(tmp_path_factory, request) -> ComposeEngine:
    folder = write_tiny_bundle(tmp_path_factory.mktemp("bundle"), audible=True, render_guide=request.param)
    return ComposeEngine.load(folder)


def _guide_context(engine) -> int:
    """Samples on either side of one that its guided value depends on (0 without a guide)."""
    guide = engine.bundle.render_guide
    return 0 if guide is None else guide.frame_length(engine.sample_rate)


@pytest.fixture(scope="module")
def song(tmp_path_factory, engine):
    """A song of one 0.4 s take, its render through run_render, and the level-0 windows that render saved
    (in a copy of the project made before it, which has none)."""
    folder = tmp_path_factory.mktemp("song")
    info = ModelInfo(engine.name, engine.model_hash, engine.sample_rate, engine.codes_per_second)
    with Project.create(
        folder / "song.cocompose", conditioning=VOICE, planned_seconds=20, model=info
    ) as project:
        with ComposeService(project, engine) as service:
            (take,) = service.submit(GenerateRequest(1, 0.4, (3,), previews=False)).wait(TIMEOUT)
            service.read(lambda p: p.pick(take))
            service.read(lambda p: p.copy_to(folder / "bare.cocompose"))
            render, rate = service.submit(RenderRequest(leaf_id=take, quality="upsampled", seed=2)).wait(
                TIMEOUT
            )
            stretch = resolve_stretch(
                project, engine, UpsampleRequest(leaf_id=take), engine.min_upsample_codes()
            )
            windows = project.upsample_windows(take, stretch.key, 0)
    return folder / "bare.cocompose", take, render, rate, sorted(windows, key=lambda w: w.window_index)


def _copy(bare, path):
    with Project.open(bare) as project:
        return project.copy_to(path)


@contextmanager
def _with_windows(path, windows: list[UpsampleWindow]) -> Iterator[Project]:
    """The project at `path`, open, with every one of `windows` saved in it."""
    with Project.open(path) as project:
        for window in windows:
            project.save_upsample_window(window)
        yield project


def _preview(service, take: int) -> np.ndarray:
    return SongAudio(service).path(take).source.audio()


def test_with_every_window_saved_it_is_the_upsampled_render(tmp_path, engine, song):
    bare, take, render, rate, windows = song
    with _with_windows(_copy(bare, tmp_path / "all.cocompose"), windows) as project:
        with ComposeService(project, engine) as service:
            preview = _preview(service, take)
            audio, seconds = service.read(lambda p: rendered_audio(p, engine, take, preview))
            played = SongAudio(service).rendered(take)
    assert rate == engine.sample_rate and len(render) == len(preview)
    np.testing.assert_array_equal(audio, render)
    assert seconds == pytest.approx(len(render) / rate)
    np.testing.assert_array_equal(played.source.audio(), render)
    assert played.rendered == seconds and played.take_end == pytest.approx(seconds)


def test_with_no_window_saved_it_is_the_preview(engine, song):
    bare, take, *_ = song
    with Project.open(bare) as project, ComposeService(project, engine) as service:
        audio_of = SongAudio(service)
        preview = audio_of.path(take)
        audio, seconds = service.read(lambda p: rendered_audio(p, engine, take, preview.source.audio()))
        np.testing.assert_array_equal(audio, preview.source.audio())
        assert seconds == 0.0
        assert audio_of.rendered(take) is preview  # the very path: nothing to splice


def test_part_rendered_is_the_render_up_to_the_seam_then_the_preview(tmp_path, engine, song):
    bare, take, render, rate, windows = song
    hop0 = engine.bundle.vqvae.hop_lengths[0]
    assert len(windows) > 19 + 5  # the last step still leaves a good part to the preview
    with Project.open(_copy(bare, tmp_path / "part.cocompose")) as project:
        with ComposeService(project, engine) as service:
            audio_of = SongAudio(service)
            preview = _preview(service, take)
            steps, saved = [], 0
            for count in (5, 6, 12, 19):  # the render grows: decoded a piece at a time
                for window in windows[saved:count]:
                    project.save_upsample_window(window)
                saved = count
                played = audio_of.rendered(take)
                assert audio_of.rendered(take) is played  # nothing new: the same object
                steps.append((count, played))
            reference, seconds = service.read(lambda p: rendered_audio(p, engine, take, preview))

    # How far the cut reaches back: the decoder's context, and the guide's beyond it.
    margin = BottomDecoder(engine).margin * hop0 + _guide_context(engine)
    fade = round(CROSSFADE_S * rate)
    for count, played in steps:
        n = sum(len(w.codes) for w in windows[:count]) * hop0
        audio = played.source.audio()
        assert len(audio) == len(preview) and played.rendered == pytest.approx(n / rate)
        np.testing.assert_array_equal(audio[n:], preview[n:])  # the preview from the seam on
        # Before the seam: the full render (measured within 1.2e-7), but for the decoder's edge effect near
        # the cut (measured 0.12 to 0.15 off; its context reaches `margin` samples back) and the crossfade.
        clean = n - max(margin, fade)
        np.testing.assert_allclose(audio[:clean], render[:clean], atol=1e-6, rtol=0)
        assert not np.allclose(audio[n - margin : n], render[n - margin : n], atol=1e-3)  # the edge is real
    # The last step, decoded piece by piece, is what one pass over the same windows gives.
    assert seconds == steps[-1][1].rendered
    np.testing.assert_allclose(steps[-1][1].source.audio(), reference, atol=1e-6, rtol=0)


def test_the_seam_crossfades_from_render_to_preview():
    rate, fade = 1000, round(CROSSFADE_S * 1000)
    rendered, preview = np.ones(50, np.float32), np.zeros(80, np.float32)
    out = splice(rendered, preview, rate)
    assert len(out) == 80 and np.all(out[: 50 - fade] == 1) and np.all(out[50:] == 0)
    ramp = out[50 - fade : 50]
    assert np.all(np.diff(ramp) < 0) and 0 < ramp[-1] < ramp[0] < 1  # falling, never a step of 1
    np.testing.assert_array_equal(splice(np.ones(80), preview, rate), np.ones(80))  # all rendered: no fade


def test_windows_saved_under_another_voice_are_not_used(tmp_path, engine, song):
    bare, take, render, _, windows = song
    with _with_windows(_copy(bare, tmp_path / "stale.cocompose"), windows) as project:
        with ComposeService(project, engine) as service:
            preview = _preview(service, take)
            service.read(lambda p: p.set_conditioning(take, Conditioning("Bo Noise", "jazz")))
            found = service.read(lambda p: saved_bottom_codes(p, engine, take))
            assert found is not None and len(found.codes) == 0 and found.key != windows[0].path_sha256
            audio, seconds = service.read(lambda p: rendered_audio(p, engine, take, preview))
            np.testing.assert_array_equal(audio, preview)
            assert seconds == 0.0
            assert SongAudio(service).rendered(take).rendered == 0.0
            service.read(lambda p: p.set_conditioning(take, None))  # the voice it was rendered with, again
            audio, seconds = service.read(lambda p: rendered_audio(p, engine, take, preview))
    np.testing.assert_array_equal(audio, render)


def test_a_window_of_the_stale_key_alone_is_not_used(tmp_path, engine, song):
    """A window saved for the same codes under a key of another conditioning sits beside the real ones."""
    bare, take, *_, windows = song
    with Project.open(_copy(bare, tmp_path / "beside.cocompose")) as project:
        first = windows[0]
        codes = Codes.of(first.codes.to_numpy())
        stale = UpsampleWindow(first.leaf_id, "0" * 64, first.start_code, first.end_code, 0, 0, codes, True)
        project.save_upsample_window(stale)
        assert _rendered_codes(project, engine, take) == 0
        project.save_upsample_window(first)
        assert _rendered_codes(project, engine, take) == len(first.codes)


def _rendered_codes(project: Project, engine, take: int) -> int:
    found = saved_bottom_codes(project, engine, take)
    assert found is not None
    return len(found.codes)
