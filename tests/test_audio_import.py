"""Importing a prime (cocompose.audio_import): every bad file is refused with a message that names the
problem, odd but real files (8 channels, 8 kHz, 192 kHz, a WAV named .mp3, a quiet riff) work, the
streamed downmix and resampling equal the one-shot computation, an hour-long file costs bounded memory,
and, over random files (hypothesis), the result is always finite mono audio at the model's rate with the
expected length, or the one documented error.
"""

from __future__ import annotations

import io
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cocompose.audio_import import (
    KEEP_WHOLE_FILE_BYTES,
    MAX_PRIME_SECONDS,
    MIN_PRIME_SECONDS,
    AudioImportError,
    import_audio,
)

pytestmark = pytest.mark.usefixtures("one_thread")

RATE = 22_050  # the tiny test model's rate


def riff(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A few seconds of something musical-ish: a decaying tone plus a little noise, per channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    base = 0.4 * np.sin(2 * np.pi * 220 * t) * np.exp(-t % 0.5) + 0.01 * rng.standard_normal(len(t))
    return np.stack([base * (0.5 + 0.1 * c) for c in range(channels)], axis=1)


def write(path: Path, audio: np.ndarray, rate: int, **kwargs) -> Path:
    sf.write(path, audio, rate, **kwargs)
    return path


def put(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def cut_in_half(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def wav_with_header_rate(path: Path, rate: int) -> Path:
    """A valid 16-bit mono WAV whose header then claims `rate` (fmt chunk at byte 12 in soundfile's WAVs)."""
    write(path, riff(0.5, 8000), 8000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"fmt "
    data[24:32] = struct.pack("<II", rate, rate * 2)
    path.write_bytes(bytes(data))
    return path


def wav_with_codec(path: Path, tag: int) -> Path:
    write(path, riff(0.5, 8000), 8000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[20:22] = struct.pack("<H", tag)
    path.write_bytes(bytes(data))
    return path


def float_wav_with(path: Path, value: float, frame: int = 1000, channel: int = 1) -> Path:
    audio = riff(0.5, 8000, channels=2).astype(np.float32)
    audio[frame, channel] = value
    return write(path, audio, 8000, subtype="FLOAT")


BAD_FILES = {
    # name: (make(tmp_path) -> file, words the message must contain)
    "empty": (lambda d: put(d / "x.wav", b""), ["empty", "0 bytes"]),
    "random bytes named .wav": (
        lambda d: put(d / "noise.wav", np.random.default_rng(1).bytes(9000)),
        ["not an audio file", "named .wav", "not WAV"],
    ),
    "a text file named .flac": (
        lambda d: put(d / "notes.flac", b"la la la\n" * 50),
        ["not an audio file", "6c 61 20 6c 61"],
    ),
    "truncated FLAC": (
        lambda d: cut_in_half(write(d / "x.flac", riff(3, 44100), 44100)),
        ["x.flac", "FLAC", "damaged or truncated"],
    ),
    "truncated WAV": (
        lambda d: cut_in_half(write(d / "x.wav", riff(3, 44100), 44100)),
        ["truncated", "promises 3.00 s", "ends after 1.50 s"],
    ),
    "truncated MP3": (lambda d: cut_in_half(write(d / "x.mp3", riff(3, 44100), 44100)), ["truncated"]),
    "truncated OGG": (lambda d: cut_in_half(write(d / "x.ogg", riff(3, 44100), 44100)), ["truncated"]),
    "an M4A file": (
        lambda d: put(d / "x.m4a", b"\x00\x00\x00\x20ftypM4A " + bytes(500)),
        ["MP4/M4A", "cannot read", "convert it"],
    ),
    "MP3 inside a WAV": (lambda d: wav_with_codec(d / "x.wav", 0x0055), ["WAV", "MPEG layer 3", "codec"]),
    "unknown WAV codec": (lambda d: wav_with_codec(d / "x.wav", 0x1234), ["format tag 0x1234"]),
    "NaN sample": (lambda d: float_wav_with(d / "x.wav", np.nan), ["sample 1000", "channel 2 of 2", "NaN"]),
    "infinite sample": (
        lambda d: float_wav_with(d / "x.wav", -np.inf, frame=3000, channel=0),
        ["sample 3000 (0.375 s, channel 1 of 2)", "-inf"],
    ),
    "absurd sample": (lambda d: float_wav_with(d / "x.wav", 3e12), ["sample 1000", "3e+12", "full scale"]),
    "digital silence": (
        lambda d: write(d / "x.flac", np.zeros((44100, 2)), 44100),
        ["digital silence", "every sample", "1.00 s"],
    ),
    "header rate of 10 Hz": (lambda d: wav_with_header_rate(d / "x.wav", 10), ["10 Hz", "outside 1000"]),
    "header rate of 50 MHz": (lambda d: wav_with_header_rate(d / "x.wav", 50_000_000), ["50000000 Hz"]),
    "a folder": (lambda d: (d / "take.wav").mkdir() or d / "take.wav", ["is a folder"]),  # mkdir: None
    "a missing file": (lambda d: d / "gone.wav", ["no such file", "gone.wav"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_is_refused_with_a_message_naming_the_problem(tmp_path, case):
    make, words = BAD_FILES[case]
    path = make(tmp_path)
    before = path.read_bytes() if path.is_file() else None
    with pytest.raises(AudioImportError) as caught:
        import_audio(path, RATE)
    for word in words:
        assert word in str(caught.value), (case, str(caught.value))
    assert isinstance(caught.value, ValueError)  # the CLI turns it into exit 2 with the message
    if before is not None:
        assert path.read_bytes() == before  # the musician's file is only ever read


def test_a_prime_longer_than_the_maximum_is_refused_before_reading(tmp_path):
    with pytest.raises(AudioImportError, match=f"at most {MAX_PRIME_SECONDS:g} s"):
        import_audio(tmp_path / "never-opened.wav", RATE, max_seconds=MAX_PRIME_SECONDS + 1)
    with pytest.raises(AudioImportError, match=r"too short to prime from: 5\.0 ms"):
        import_audio(write(tmp_path / "click.wav", riff(0.005, 8000), 8000), RATE)


def test_eight_channels_downmix_to_the_mean_of_the_channels(tmp_path):
    """8 channels at 192 kHz import as the mono mean, which equals importing that mean as a mono file."""
    audio = riff(1.5, 192_000, channels=8)
    many = import_audio(write(tmp_path / "octo.wav", audio, 192_000, subtype="DOUBLE"), RATE)
    one = import_audio(write(tmp_path / "mono.wav", audio.mean(axis=1), 192_000, subtype="DOUBLE"), RATE)
    assert many.source.channels == 8 and many.source.sample_rate == 192_000
    assert "downmixed 8 channels to mono" in many.notes
    assert many.samples.ndim == 1 and len(many.samples) == round(1.5 * RATE)
    np.testing.assert_allclose(many.samples, one.samples, atol=1e-6)


@pytest.mark.parametrize("source_rate", [8_000, 44_100, 192_000])
def test_streamed_resampling_equals_resampling_the_whole_signal_at_once(tmp_path, source_rate):
    audio = riff(4.0, source_rate)[:, 0]  # longer than several reading blocks at every rate
    got = import_audio(write(tmp_path / "x.wav", audio, source_rate, subtype="DOUBLE"), RATE)
    whole = soxr.resample(audio, source_rate, RATE, quality="VHQ")
    assert abs(len(got.samples) - len(whole)) <= 1
    n = min(len(got.samples), len(whole))
    np.testing.assert_allclose(got.samples[:n], whole[:n], atol=1e-5)
    assert got.sample_rate == RATE and got.samples.dtype == np.float32


def test_a_wav_named_mp3_is_read_by_its_content(tmp_path):
    audio = riff(1.0, 44100)
    real = import_audio(write(tmp_path / "riff.wav", audio, 44100), RATE)
    (tmp_path / "riff.mp3").write_bytes((tmp_path / "riff.wav").read_bytes())
    misnamed = import_audio(tmp_path / "riff.mp3", RATE)
    np.testing.assert_array_equal(misnamed.samples, real.samples)
    assert misnamed.source.container == "WAV"
    assert any("named .mp3 but is really a WAV file" in note for note in misnamed.notes)


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_every_format_imports_close_to_the_original(tmp_path, fmt):
    audio = riff(2.0, 44100)[:, 0]
    got = import_audio(write(tmp_path / f"x.{fmt}", audio, 44100), RATE)
    expected = soxr.resample(audio, 44100, RATE, quality="VHQ")
    assert abs(len(got.samples) - len(expected)) <= 1 and not got.notes[1:]
    n = min(len(got.samples), len(expected))
    if fmt in ("wav", "flac"):  # lossless: equal up to 16-bit quantisation
        np.testing.assert_allclose(got.samples[:n], expected[:n], atol=1e-3)
    else:  # lossy: the same sound, perhaps a little late (encoder delay)
        a, b = got.samples[2000 : n - 2000], expected[2000 : n - 2000]
        best = max(np.corrcoef(a[lag:], b[: len(b) - lag])[0, 1] for lag in range(0, 1200, 1))
        assert best > 0.9


def test_a_quiet_riff_is_taken_with_a_note_and_a_hot_one_is_scaled_to_full_scale(tmp_path):
    quiet = riff(1.0, 8000) * 1e-3
    got = import_audio(write(tmp_path / "quiet.wav", quiet, 8000, subtype="FLOAT"), RATE)
    assert 0 < np.abs(got.samples).max() < 1e-3 and any("very quiet" in n for n in got.notes)
    hot = riff(1.0, 8000) * 10
    got = import_audio(write(tmp_path / "hot.wav", hot, 8000, subtype="FLOAT"), RATE)
    assert np.abs(got.samples).max() == pytest.approx(1.0) and any("scaled down" in n for n in got.notes)


def test_a_long_file_gives_only_the_span_asked_for(tmp_path):
    path = write(tmp_path / "long.flac", riff(70.0, 8000), 8000)
    got = import_audio(path, RATE)
    assert len(got.samples) == round(MAX_PRIME_SECONDS * RATE)
    assert any("first 60 s of 70.0 s" in n for n in got.notes)
    ten = import_audio(path, RATE, max_seconds=10)
    assert len(ten.samples) == 10 * RATE
    # The first ten seconds are the same whichever span was asked for (up to the resampler's tail).
    np.testing.assert_allclose(ten.samples[: 9 * RATE], got.samples[: 9 * RATE], atol=1e-6)
    assert got.kept_audio == path.read_bytes() and got.kept_name == "long.flac"  # small: kept as it is


def test_an_hour_long_file_is_read_in_bounded_memory(tmp_path):
    """An hour of 8 kHz 16-bit WAV (58 MB; 115 MB as float32 in memory) costs a small fixed amount."""
    path = tmp_path / "hour.wav"
    rate, block = 8000, 8000 * 300
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as f:
        chunk = riff(300.0, rate)[:, 0]
        for _ in range(12):  # 12 x 5 minutes
            f.write(chunk)
    assert path.stat().st_size > KEEP_WHOLE_FILE_BYTES and sf.info(path).frames == 12 * block
    tracemalloc.start()
    try:
        got = import_audio(path, RATE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(got.samples) == round(MAX_PRIME_SECONDS * RATE) and got.source.seconds == 3600
    assert peak < 40e6, f"importing used {peak / 1e6:.0f} MB"
    # The project keeps the minute used (as FLAC), not the hour.
    kept, kept_rate = sf.read(io.BytesIO(got.kept_audio))
    assert kept_rate == RATE and len(kept) == len(got.samples) and got.kept_name == "hour (prime).flac"
    np.testing.assert_allclose(kept, got.samples, atol=2**-22)


SUBTYPES = {"WAV": ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"], "FLAC": ["PCM_16", "PCM_24"]}


@st.composite
def audio_files(draw):
    container = draw(st.sampled_from(sorted(SUBTYPES)))
    subtype = draw(st.sampled_from(SUBTYPES[container]))
    channels = draw(st.integers(1, 8))
    rate = draw(st.sampled_from([8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000, 192000]))
    if container == "WAV":
        rate = draw(st.one_of(st.just(rate), st.integers(1000, 200_000)))
    frames = draw(st.integers(1, 6000))
    amplitude = draw(st.sampled_from([0.0, 1e-6, 1e-3, 0.5, 1.0, 4.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    return container, subtype, channels, rate, frames, amplitude, seed


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=audio_files(), target=st.sampled_from([16000, 22050, 44100]))
def test_any_file_gives_finite_mono_at_the_model_rate_or_the_documented_error(tmp_path, spec, target):
    container, subtype, channels, rate, frames, amplitude, seed = spec
    rng = np.random.default_rng(seed)
    audio = amplitude * rng.uniform(-1, 1, (frames, channels))
    if subtype != "FLOAT" and subtype != "DOUBLE":
        audio = np.clip(audio, -1, 1)
    path = write(tmp_path / f"x.{container.lower()}", audio, rate, subtype=subtype)
    stored = sf.read(path, always_2d=True)[0]  # what the file really holds after quantisation
    try:
        got = import_audio(path, target)
    except AudioImportError as exc:
        if frames < MIN_PRIME_SECONDS * rate:
            assert "too short" in str(exc)
        else:
            assert not np.any(stored), f"refused a file with sound in it: {exc}"
            assert "digital silence" in str(exc)
        return
    assert np.any(stored) and frames >= MIN_PRIME_SECONDS * rate
    samples = got.samples
    assert samples.ndim == 1 and samples.dtype == np.float32 and got.sample_rate == target
    assert np.isfinite(samples).all() and np.abs(samples).max() <= 1.0
    assert abs(len(samples) - round(frames / rate * target)) <= 2
    assert got.source.channels == channels and got.source.sample_rate == rate


def test_cocompose_prime_refuses_a_bad_file_and_the_song_stays_unprimed(tmp_path, capsys):
    from cocompose.cli import main
    from cocompose.store import Project
    from tests.compose_model import write_tiny_bundle

    model = str(write_tiny_bundle(tmp_path / "model"))
    song = tmp_path / "song.cocompose"
    assert main(["new", str(song), "--artist", "Ada Tone", "--genre", "rock", "--seconds", "20"]) == 0
    bad = float_wav_with(tmp_path / "riff.wav", np.nan)
    assert main(["prime", str(song), str(bad), "--model", model]) == 2
    err = capsys.readouterr().err
    assert "riff.wav is damaged: sample 1000 (0.125 s, channel 2 of 2) is NaN" in err
    with Project.open(song) as project:
        assert project.song.prime_audio_blob is None and len(project.tree.root.codes) == 0

    good = write(tmp_path / "octo.flac", riff(1.0, 48000, channels=8), 48000)
    assert main(["prime", str(song), str(good), "--model", model]) == 0
    out = capsys.readouterr().out
    assert "note: downmixed 8 channels to mono" in out and "primed with octo.flac: 173 codes" in out
    with Project.open(song) as project:
        assert project.song.prime_audio_blob is not None and len(project.tree.root.codes) == 173
