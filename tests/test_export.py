"""Exporting a finished track: each format round-trips, hits its loudness target on an independent
BS.1770-4 meter, never clips, fades out cleanly and carries its tags and sidecar.

Failures (bad input, full disk, an exception mid-encode) are in test_export_failures.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from cocompose.export import ExportSettings, TrackTags, export_track
from cocompose.export.peak import limiter_gain
from tests import loudness_reference as reference

RATE = 44_100
FORMATS = ("wav", "flac", "ogg", "opus", "mp3")
TAGS = TrackTags(
    title="Ångström fugue ♪",
    artist="Cocompose Ensemble",
    album="Branches",
    genre="Ambient",
    comment="sampled with ♥",
    date="2025-11-21",
    tracknumber="3/12",
)


def music_like(seconds: float = 4.0, channels: int = 2, level: float = 0.1, seed: int = 0) -> np.ndarray:
    """Pink-ish noise plus a few tones, with a 10 ms fade-in so it does not start on a step. (T, C)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    spectrum = np.fft.rfft(rng.standard_normal((n, channels)), axis=0)
    spectrum /= np.sqrt(np.arange(1, spectrum.shape[0] + 1))[:, None]  # 1/f power
    noise = np.fft.irfft(spectrum, n=n, axis=0)
    t = np.arange(n)[:, None] / RATE
    tones = sum(np.sin(2 * np.pi * f * t + c) for f, c in ((110, 0.0), (220, 1.0), (659, 2.0)))
    audio = noise / noise.std() + 0.3 * tones
    audio *= np.minimum(1.0, np.arange(n) / (0.010 * RATE))[:, None]
    return (level * audio / np.abs(audio).max()).astype(np.float32)


def with_clicks(audio: np.ndarray) -> np.ndarray:
    """`audio` with a sharp two-sample click (+0.9, -0.9: mostly energy near Nyquist) every 1/3 s."""
    audio = audio.copy()
    audio[RATE // 2 :: RATE // 3] = 0.9
    audio[RATE // 2 + 1 :: RATE // 3] = -0.9
    return audio


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_round_trips_rate_channels_and_duration(tmp_path, fmt):
    for channels in (1, 2):
        audio = music_like(seconds=2.5, channels=channels)
        source = audio[:, 0] if channels == 1 else audio  # mono goes in as (T,)
        result = export_track(source, RATE, tmp_path / f"song{channels}.{fmt}")
        info = sf.info(result.path)
        expected_rate = 48_000 if fmt == "opus" else RATE  # Opus cannot take 44.1 kHz: resampled
        assert (info.samplerate, info.channels) == (expected_rate, channels)
        assert result.sample_rate == expected_rate
        assert abs(info.duration - 2.5) < 0.003
        decoded, _ = sf.read(result.path, always_2d=True)
        if expected_rate == RATE:  # the decoded waveform is the (scaled) source, not just any audio
            correlation = np.corrcoef(decoded[:, 0], audio[:, 0])[0, 1]
            assert correlation > (0.999 if fmt in ("wav", "flac") else 0.95)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("target", [-14.0, -23.0])
def test_loudness_meets_the_target_on_an_independent_meter(tmp_path, fmt, target):
    result = export_track(
        music_like(level=0.5), RATE, tmp_path / f"song.{fmt}", ExportSettings(loudness_lufs=target)
    )
    decoded, rate = sf.read(result.path, always_2d=True)
    measured = reference.integrated_lufs(decoded, rate)
    print(f"{fmt} target {target}: independent meter {measured:.3f} LUFS, error {measured - target:+.3f} LU")
    assert abs(measured - target) < 0.5
    assert abs(result.integrated_lufs - measured) < 0.5


def test_the_independent_meter_reads_the_standard_test_tones():
    # EBU Tech 3341 case 1: a 1 kHz sine at -23 dBFS in both channels reads -23 LUFS; a full-scale
    # 997 Hz sine in one channel reads -3.01 LUFS. Proves the reference itself before trusting it.
    t = np.arange(10 * 48_000) / 48_000
    sine = 10 ** (-23 / 20) * np.sin(2 * np.pi * 1000 * t)
    assert abs(reference.integrated_lufs(np.stack([sine, sine], 1), 48_000) + 23.0) < 0.05
    assert abs(reference.integrated_lufs(np.sin(2 * np.pi * 997 * t), 48_000) + 3.01) < 0.05


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_high_crest_track_normalised_up_never_clips(tmp_path, fmt):
    # A quiet pad (-31 LUFS) with sharp clicks at 0.9: reaching -14 LUFS needs ~+18 dB, which would
    # put the clicks far over full scale. The true-peak limiter must catch every one.
    audio = with_clicks(music_like(level=0.1))
    result = export_track(audio, RATE, tmp_path / f"loud.{fmt}")
    decoded, rate = sf.read(result.path, always_2d=True)
    assert np.abs(decoded).max() < 1.0
    if fmt in ("wav", "flac"):
        assert reference.true_peak_dbtp(decoded) < -1.0 + 0.1
        assert result.true_peak_dbtp <= -1.0 + 1e-3
    else:  # a lossy decoder rebuilds peaks its own way; the 1 dB of headroom is there for it
        assert result.peak_dbfs < 0.0
    assert any("limiter" in note for note in result.notes)
    assert abs(reference.integrated_lufs(decoded, rate) + 14.0) < 0.5


def test_a_target_only_reachable_by_crushing_the_music_is_reported_not_forced(tmp_path):
    # Here the clicks carry most of the loudness; limiting them away leaves a track that would need
    # far more limiting to reach -14 LUFS. The export says so instead of squashing the music.
    result = export_track(with_clicks(music_like(level=0.02)), RATE, tmp_path / "clicks.wav")
    assert result.integrated_lufs < -15.0
    assert any("not -14.0" in note for note in result.notes)
    assert result.true_peak_dbtp <= -1.0 + 1e-3


def test_a_hot_master_is_turned_down_without_limiting(tmp_path):
    loud = np.clip(music_like(level=3.0), -1.0, 1.0)  # a clipped brick-wall master, about -6 LUFS
    result = export_track(loud, RATE, tmp_path / "hot.wav")
    assert result.gain_db < -5.0
    assert not any("limiter" in note for note in result.notes)
    assert abs(reference.integrated_lufs(sf.read(result.path)[0], RATE) + 14.0) < 0.5


def test_limiter_gain_is_never_above_what_each_sample_needs():
    rng = np.random.default_rng(3)
    envelope = np.abs(rng.standard_normal(20_000)) ** 3
    gain = limiter_gain(envelope, 0.5, RATE)
    assert np.all(gain * envelope <= 0.5 + 1e-9)
    assert np.all(np.abs(np.diff(gain)) < 0.5 / (0.010 * RATE) + 1e-9)  # ramps, never jumps


def test_fade_out_decays_monotonically_to_silence(tmp_path):
    t = np.arange(3 * RATE) / RATE
    tone = np.sin(2 * np.pi * 1000 * t)  # exactly 10 cycles per 10 ms window: a flat envelope
    steady = (0.3 * np.stack([tone, tone], 1)).astype(np.float32)
    settings = ExportSettings(fade_out_s=1.5, loudness_lufs=None, bit_depth="float")
    decoded, _ = sf.read(export_track(steady, RATE, tmp_path / "fade.wav", settings).path, always_2d=True)
    fade_frames = int(1.5 * RATE)
    envelope = np.sqrt((decoded[-fade_frames:] ** 2).reshape(-1, 441, 2).mean(axis=(1, 2)))  # 10 ms RMS
    level = np.sqrt(np.mean(steady**2))
    assert envelope[0] > 0.99 * level  # the fade starts where asked, not earlier
    assert np.all(np.diff(envelope) <= 0.0)
    assert envelope[-1] < 1e-3 * level and np.abs(decoded[-1]).max() < 1e-6
    np.testing.assert_array_equal(decoded[:-fade_frames], steady[:-fade_frames])  # the rest untouched
    # Music is not steady, but the fade's gain (output over input) must still only ever go down.
    music = music_like(seconds=3.0, level=0.3)
    faded, _ = sf.read(export_track(music, RATE, tmp_path / "m.wav", settings).path, always_2d=True)
    gain = faded[-fade_frames:, 0] / np.where(music[-fade_frames:, 0] == 0, 1, music[-fade_frames:, 0])
    assert np.all(np.diff(gain[np.abs(music[-fade_frames:, 0]) > 1e-3]) <= 1e-6)


@pytest.mark.parametrize("fmt", FORMATS)
def test_tags_read_back(tmp_path, fmt):
    result = export_track(music_like(seconds=1.0), RATE, tmp_path / f"tagged.{fmt}", tags=TAGS)
    with sf.SoundFile(result.path) as f:
        read = f.copy_metadata()
    expected = TAGS.present()
    if fmt == "mp3":
        expected["date"] = "2025"  # ID3v2.3 keeps the year only (TYER)
        assert read["software"] == "Cocompose"
    else:
        assert read["software"].startswith("Cocompose")
    assert {name: read.get(name) for name in expected} == expected


def test_mp3_carries_one_standard_id3v23_tag(tmp_path):
    path = export_track(music_like(seconds=1.0), RATE, tmp_path / "t.mp3", tags=TAGS).path
    data = path.read_bytes()
    assert data[:5] == b"ID3\x03\x00"
    size = sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(data[6:10]))
    frames, offset = {}, 10
    while offset < 10 + size and data[offset] != 0:
        frame_id, length = (
            data[offset : offset + 4].decode(),
            int.from_bytes(data[offset + 4 : offset + 8], "big"),
        )
        frames[frame_id] = data[offset + 10 : offset + 10 + length]
        offset += 10 + length
    assert set(frames) == {"TIT2", "TPE1", "TALB", "TCON", "TRCK", "TYER", "COMM", "TSSE"}
    assert frames["TIT2"][0] == 1 and frames["TIT2"][1:].decode("utf-16") == TAGS.title
    assert frames["TPE1"] == b"\x00" + TAGS.artist.encode("latin-1")
    assert data[10 + size : 10 + size + 2] in (b"\xff\xfb", b"\xff\xf3")  # then straight into MPEG audio
    assert data.count(b"ID3") == 1


def test_sidecar_records_the_export_and_the_track(tmp_path):
    track = {
        "title": "Fugue",
        "sections": [{"start_s": 0, "artist": "unknown", "genre": "ambient", "lyrics": ""}],
        "lineage": ["n0", "n3", "n7"],
        "seeds": [11, 12, 13],
        "model": "5b_lyrics",
        "created": "2025-11-21T10:00:00Z",
    }
    result = export_track(music_like(), RATE, tmp_path / "song.mp3", tags=TAGS, sidecar_data=track)
    assert result.sidecar_path == tmp_path / "song.mp3.json"
    document = json.loads(result.sidecar_path.read_text(encoding="utf-8"))
    assert document["schema"] == "cocompose.export/1" and document["file"] == "song.mp3"
    assert document["track"] == track
    assert document["tags"]["title"] == TAGS.title
    assert document["audio"] == {
        "format": "mp3",
        "subtype": "MPEG_LAYER_III",
        "sample_rate": RATE,
        "source_rate": RATE,
        "channels": 2,
        "duration_s": 4.0,
    }
    assert document["loudness"]["target_lufs"] == -14.0
    assert document["loudness"]["integrated_lufs"] == pytest.approx(result.integrated_lufs, abs=1e-3)
    assert document["settings"]["true_peak_dbtp"] == -1.0
    export_track(music_like(), RATE, tmp_path / "plain.wav")
    assert not (tmp_path / "plain.wav.json").exists()  # no sidecar unless asked for


def test_silence_is_exported_unnormalised_with_a_note(tmp_path):
    result = export_track(np.zeros((3 * RATE, 2), np.float32), RATE, tmp_path / "quiet.wav", sidecar_data={})
    assert result.integrated_lufs is None and result.peak_dbfs == float("-inf") and result.gain_db == 0.0
    assert any("undefined" in note for note in result.notes)
    assert not np.any(sf.read(result.path)[0])  # digital silence stays silent: no dither noise
    document = json.loads(result.sidecar_path.read_text())
    assert document["loudness"]["integrated_lufs"] is None and document["loudness"]["peak_dbfs"] is None
    short = export_track(music_like(seconds=0.2), RATE, tmp_path / "blip.flac")  # under one gating block
    assert short.integrated_lufs is None and any("undefined" in note for note in short.notes)


def test_explicit_rates_resample_and_progress_runs_to_the_end(tmp_path):
    seen = []
    result = export_track(
        music_like(seconds=2.0),
        RATE,
        tmp_path / "s.mp3",
        ExportSettings(sample_rate=32_000),
        progress=lambda fraction, stage: seen.append((fraction, stage)),
    )
    assert sf.info(result.path).samplerate == 32_000 and abs(result.duration_s - 2.0) < 0.003
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and seen[-1] == (1.0, "done")
    assert {"resample", "loudness", "encode", "verify"} <= {stage for _, stage in seen}


def test_over_full_scale_with_the_limiter_off_clips_instead_of_wrapping(tmp_path):
    hot = music_like(level=1.5)
    settings = ExportSettings(loudness_lufs=None, true_peak_dbtp=None, bit_depth=16)
    result = export_track(hot, RATE, tmp_path / "hot.wav", settings)
    decoded = sf.read(result.path)[0]
    overs = np.abs(hot) > 1.0
    assert np.all(np.sign(decoded[overs]) == np.sign(hot[overs]))  # a wrapped sample flips sign
    assert any("clipped" in note for note in result.notes)
