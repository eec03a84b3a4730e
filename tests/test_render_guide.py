"""The preview guides the render (`engine.render_guide`): equal envelopes change nothing, a preview louder
by a constant scales the render by it, up to the limit; the render keeps its own where the preview ends;
a render guided as it grows equals one guided whole; bundles carry the guide, and a model's upsampled
render through the service is its bottom decode guided by its own preview."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cocompose.service import ComposeService, GenerateRequest, RenderRequest, UpsampleRequest
from cocompose.service.upsampling import resolve_stretch
from cocompose.song import Conditioning, ModelInfo
from cocompose.store import Project
from engine.api import ComposeEngine
from engine.bundle import MANIFEST_NAME, BundleManifest
from engine.errors import CheckpointError
from engine.render_guide import GuidedTail, RenderGuide, guide_render
from tests.compose_model import write_tiny_bundle

pytestmark = pytest.mark.usefixtures("one_thread")

SR = 16000
GUIDE = RenderGuide(bands=24, limit_db=12.0, frame_seconds=0.064)  # 1024-sample frames at 16 kHz
# The first guide the default model shipped, and the defaults (48 bands, 512-sample frames) it ships now
EVERY_GUIDE = pytest.mark.parametrize("guide", [GUIDE, RenderGuide()], ids=["24 bands 64 ms", "defaults"])


def _noise(seconds: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(round(seconds * SR)).astype(np.float32) * 0.1


def _without_edges(x: np.ndarray, guide: RenderGuide) -> np.ndarray:
    """Away from the ends, where the zero-padded frames see only part of the signal."""
    n_fft = guide.frame_length(SR)
    return x[n_fft:-n_fft]


def _band_levels_db(x: np.ndarray) -> np.ndarray:
    """Each 24-band mel level over the whole signal, from its rFFT."""
    from engine.analysis.mel import mel_filters

    n = len(x)
    power = np.abs(np.fft.rfft(x)) ** 2
    return 10 * np.log10(mel_filters(SR, 2 * (len(power) - 1), 24, 0.0)[:, : len(power)] @ power / n + 1e-12)


@EVERY_GUIDE
def test_a_preview_with_the_renders_envelope_leaves_it_as_it_is(guide):
    render = _noise(1.0, 1)
    guided = guide_render(render, render, SR, guide)
    assert guided.dtype == np.float32 and guided.shape == render.shape
    np.testing.assert_allclose(guided, render, atol=1e-5)


@pytest.mark.parametrize(("louder_db", "heard_db"), [(6.0, 6.0), (-9.0, -9.0), (20.0, 12.0), (-30.0, -12.0)])
@EVERY_GUIDE
def test_a_preview_louder_by_a_constant_scales_the_render_by_it_up_to_the_limit(guide, louder_db, heard_db):
    render = _noise(1.0, 2)
    preview = render * np.float32(10 ** (louder_db / 20))
    guided = guide_render(render, preview, SR, guide)
    expected = _without_edges(render, guide) * np.float32(10 ** (heard_db / 20))
    np.testing.assert_allclose(_without_edges(guided, guide), expected, atol=1e-4 * np.abs(expected).max())


@EVERY_GUIDE
def test_the_render_takes_the_previews_tonal_balance_within_the_limit(guide):
    """A bright render and a dull preview (the same noise with its highs 10 dB down): the guided render's
    bands follow the preview's, its fine detail stays its own (it is not the preview)."""
    render = _noise(2.0, 3)
    spectrum = np.fft.rfft(render)
    freqs = np.fft.rfftfreq(len(render), 1 / SR)
    dull = np.where(freqs > 2000, 10 ** (-10 / 20), 1.0)
    scrambled = np.exp(1j * np.random.default_rng(4).uniform(0, 2 * np.pi, len(freqs)))  # other detail
    preview = np.fft.irfft(spectrum * dull * scrambled).astype(np.float32)
    guided = guide_render(render, preview, SR, guide)
    off_before = np.abs(_band_levels_db(render) - _band_levels_db(preview))[1:-1]
    off_after = np.abs(_band_levels_db(guided) - _band_levels_db(preview))[1:-1]
    # Within a decibel or two at the step (a triangle cannot follow it exactly), a fraction elsewhere.
    assert off_before.max() > 9.9 and off_after.max() < 2.0 and off_after.mean() < 0.5
    assert np.corrcoef(guided, render)[0, 1] > 0.8 and abs(np.corrcoef(guided, preview)[0, 1]) < 0.2


@EVERY_GUIDE
def test_where_the_preview_ends_the_render_keeps_its_own_envelope(guide):
    render = _noise(2.0, 5)
    preview = render[: SR // 2] * np.float32(4.0)
    guided = guide_render(render, preview, SR, guide)
    n_fft = guide.frame_length(SR)
    # Samples whose frames all reach past the preview's end (the last before it is n_fft // 2 back).
    np.testing.assert_allclose(guided[SR // 2 + n_fft // 2 :], render[SR // 2 + n_fft // 2 :], atol=1e-5)
    assert np.abs(guided[n_fft : SR // 2 - n_fft]).mean() > 3 * np.abs(render[n_fft : SR // 2 - n_fft]).mean()
    short = render[:100]
    np.testing.assert_array_equal(guide_render(short, short * 3, SR, guide), short)  # under one frame


@EVERY_GUIDE
def test_a_render_guided_as_it_grows_equals_the_whole_guided_at_once(guide):
    render, preview = _noise(3.0, 6), _noise(3.0, 7)
    tail = GuidedTail(SR, guide)
    heard = 0
    for end in (700, 5000, 5001, 17_000, 30_000, len(render)):
        grown = tail.update(render[:end], preview, unchanged=heard)
        np.testing.assert_allclose(grown, guide_render(render[:end], preview, SR, guide), atol=1e-6)
        heard = end
    # A change inside what was heard: guided again from there on.
    changed = render.copy()
    changed[20_000:] *= -1
    np.testing.assert_allclose(
        tail.update(changed, preview, unchanged=20_000), guide_render(changed, preview, SR, guide), atol=1e-6
    )


@pytest.mark.parametrize(
    ("guide", "message"),
    [
        ({"bands": 1}, "bands must be a whole number"),
        ({"bands": 24.5}, "bands must be a whole number"),
        ({"limit_db": 0}, "limit_db must be a number above 0"),
        ({"frame_seconds": 3}, "frame_seconds must be at most 1"),
        ({"bands": 24, "loudness": 2}, "a render guide is"),
    ],
)
def test_a_bundle_with_a_bad_render_guide_is_refused_by_name(tmp_path, guide, message):
    folder = write_tiny_bundle(tmp_path / "bundle")
    data = json.loads((folder / MANIFEST_NAME).read_text())
    data["render_guide"] = guide
    (folder / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=message):
        BundleManifest.read(folder / MANIFEST_NAME)


def test_a_bundle_keeps_its_render_guide_and_an_old_one_has_none(tmp_path):
    guide = RenderGuide(bands=16, limit_db=6.0, frame_seconds=0.032)
    folder = write_tiny_bundle(tmp_path / "guided", render_guide=guide)
    assert ComposeEngine.load(folder).bundle.render_guide == guide
    plain = write_tiny_bundle(tmp_path / "plain")
    data = json.loads((plain / MANIFEST_NAME).read_text())
    del data["render_guide"]  # a manifest written before guides existed
    (plain / MANIFEST_NAME).write_text(json.dumps(data))
    engine = ComposeEngine.load(plain)
    assert engine.bundle.render_guide is None
    audio = _noise(0.5, 8)
    np.testing.assert_array_equal(engine.guide_render(audio, audio * 3), audio)


def test_an_upsampled_render_is_the_bottom_decode_guided_by_its_own_preview(tmp_path):
    guide = RenderGuide(bands=12, limit_db=9.0)
    engine = ComposeEngine.load(write_tiny_bundle(tmp_path / "bundle", audible=True, render_guide=guide))
    info = ModelInfo(engine.name, engine.model_hash, engine.sample_rate, engine.codes_per_second)
    voice = Conditioning("Ada Tone", "rock")
    with Project.create(tmp_path / "song.cocompose", conditioning=voice, planned_seconds=20, model=info) as p:
        with ComposeService(p, engine) as service:
            (take,) = service.submit(GenerateRequest(1, 0.4, (3,), previews=False)).wait(120)
            service.read(lambda project: project.pick(take))
            render, rate = service.submit(RenderRequest(leaf_id=take, quality="upsampled", seed=2)).wait(120)
            stretch = resolve_stretch(p, engine, UpsampleRequest(leaf_id=take), engine.min_upsample_codes())
            windows = sorted(p.upsample_windows(take, stretch.key, 0), key=lambda w: w.window_index)
    bottom = np.concatenate([w.codes.to_numpy() for w in windows])
    decoded, _ = engine.decode_bottom(bottom)
    preview, _ = engine.decode_preview(stretch.codes)
    assert rate == engine.sample_rate and len(render) == len(decoded) == len(preview)
    np.testing.assert_array_equal(render, guide_render(decoded, preview, rate, guide))
    assert not np.allclose(render, decoded, atol=1e-3), "the guide changed the render"
