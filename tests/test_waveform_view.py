"""The waveform view's numbers (cocompose.waveform_data) and the widget on a real offscreen event loop."""

from __future__ import annotations

import numpy as np
import pytest

from cocompose.playback import AudioSource
from cocompose.waveform_data import MIN_DB, envelope, spectrogram

pytestmark = pytest.mark.usefixtures("one_thread")

SR = 16_000


def sine(freq: float, seconds: float, sr: int = SR, amplitude: float = 1.0) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(round(seconds * sr)) / sr)).astype(np.float32)


def test_the_envelope_bounds_every_sample_and_touches_the_extremes():
    audio = np.random.default_rng(0).uniform(-1, 1, 10_007).astype(np.float32)
    shape = envelope(audio, SR, max_points=100)
    bucket = -(-len(audio) // 100)
    assert len(shape.low) == len(shape.high) == -(-len(audio) // bucket)
    for i, (low, high) in enumerate(zip(shape.low, shape.high, strict=True)):
        chunk = audio[i * bucket : (i + 1) * bucket]
        assert (low, high) == (chunk.min(), chunk.max())
    np.testing.assert_allclose(shape.times, np.arange(len(shape.low)) * bucket / SR)
    short = envelope(audio[:50], SR)  # fewer samples than points: every sample is its own bucket
    np.testing.assert_array_equal(short.low, audio[:50])
    assert len(envelope(np.zeros(0, np.float32), SR).low) == 0


@pytest.mark.parametrize("freq", [440.0, 1000.0, 3000.0])
def test_a_full_scale_sine_peaks_at_its_bin_near_0_db(freq):
    result = spectrogram(sine(freq, 1.0), SR, n_fft=512)
    peak_bins = result.db.argmax(axis=1)
    assert np.all(np.abs(peak_bins * result.bin_hz - freq) <= result.bin_hz)
    assert np.median(result.db.max(axis=1)) == pytest.approx(0.0, abs=1.5)  # Hann scalloping < 1.5 dB
    assert result.db.min() >= MIN_DB


def test_a_long_spectrogram_is_capped_and_silence_is_the_floor():
    result = spectrogram(np.zeros(SR * 60, np.float32), SR, max_frames=500)
    assert len(result.db) <= 500
    assert np.all(result.db == MIN_DB)
    assert result.hop_seconds * len(result.db) == pytest.approx(60, rel=0.01)
    with pytest.raises(ValueError, match="power of two"):
        spectrogram(np.zeros(1000, np.float32), SR, n_fft=500)


# --- the widget --------------------------------------------------------------------------------------


@pytest.fixture
def view(qtbot):
    from ui.waveform_view import WaveformView

    view = WaveformView()
    qtbot.addWidget(view)
    view.resize(800, 400)
    view.show()
    return view


@pytest.mark.qt
def test_the_view_draws_audio_and_a_long_take_gets_its_spectrogram_off_the_gui_thread(view, qtbot):
    from ui.waveform_view import BACKGROUND_SPECTROGRAM_SECONDS

    audio = sine(1000.0, BACKGROUND_SPECTROGRAM_SECONDS + 3)
    view.set_audio(audio, SR)
    assert view.audio_duration == pytest.approx(len(audio) / SR)
    np.testing.assert_array_equal(view.last_envelope.high, envelope(audio, SR).high)
    # The spectrogram arrives later through the event loop, and equals the direct computation.
    qtbot.waitUntil(lambda: view.last_spectrogram is not None, timeout=10_000)
    np.testing.assert_array_equal(view.last_spectrogram.db, spectrogram(audio, SR).db)


@pytest.mark.qt
def test_a_superseded_spectrogram_is_never_drawn(view, qtbot):
    long_a, long_b = sine(500.0, 8.0), sine(2000.0, 9.0)
    view.set_audio(long_a, SR)
    view.set_audio(long_b, SR)
    view.wait_for_spectrogram()
    qtbot.waitUntil(lambda: view.last_spectrogram is not None, timeout=10_000)
    qtbot.wait(50)  # let any stale result through the event loop, were one ever sent
    np.testing.assert_array_equal(view.last_spectrogram.db, spectrogram(long_b, SR).db)


@pytest.mark.qt
def test_a_growing_source_is_redrawn_as_it_grows(view, qtbot):
    source = AudioSource(SR, sine(300.0, 0.5), complete=False)
    view.follow(source)
    assert view.audio_duration == pytest.approx(0.5)
    source.append(sine(300.0, 0.75))
    qtbot.waitUntil(lambda: view.audio_duration == pytest.approx(1.25), timeout=3000)
    source.finish()


@pytest.mark.qt
def test_playhead_markers_render_progress_and_selection(view, qtbot):
    view.set_audio(sine(440.0, 3.0), SR)
    view.set_playhead(1.5)
    assert view.playhead == 1.5
    view.set_markers(branch_points=[1.0, 2.0], conditioning_changes=[(1.5, "Artist B")])
    assert view.markers == [("branch", 1.0), ("branch", 2.0), ("conditioning", 1.5)]
    view.set_markers(branch_points=[0.5])  # replaces, not adds
    assert view.markers == [("branch", 0.5)]
    view.set_render_progress(2.0)
    assert view.render_region.isVisible() and view.render_region.getRegion() == (0.0, 2.0)
    view.set_render_progress(None)
    assert not view.render_region.isVisible()
    assert view.selected_region() is None
    view.set_selection((0.5, 1.25))
    assert view.selected_region() == (0.5, 1.25)

    with qtbot.waitSignal(view.seekRequested) as seek:  # dragging the playhead asks to seek there
        view.playheads[0].setValue(2.25)
        view.playheads[0].sigPositionChangeFinished.emit(view.playheads[0])
    assert seek.args == [2.25]
