"""Export failures: bad input is refused with a message that names the problem, and a failure at any
point (a full disk, an exception mid-encode, a cancel) leaves no partial file and any existing file at
the target exactly as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from cocompose.export import ExportError, ExportSettings, TrackTags, export_track

RATE = 44_100
REPO_ROOT = Path(__file__).resolve().parents[1]
OLD_CONTENT = b"the previous export, which must survive"


def tone(seconds: float = 1.0, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return np.repeat(0.2 * np.sin(2 * np.pi * 440 * t)[:, None], channels, axis=1).astype(np.float32)


def with_sample(value: float) -> np.ndarray:
    audio = tone()
    audio[RATE // 2, 1] = value
    return audio


def folder_state(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


BAD_INPUTS = [
    # (audio, rate, file name, settings, tags, words the message must contain)
    (tone(), RATE, "x.wav", ExportSettings(format="aiff"), None, ["unknown export format", "'aiff'"]),
    (tone(), RATE, "x.m4a", ExportSettings(), None, ["cannot tell the format", ".m4a"]),
    (tone(), RATE, "x", ExportSettings(), None, ["no extension"]),
    (tone(), RATE, "x.mp3", ExportSettings(sample_rate=44_000), None, ["mp3", "44000 Hz", "44100"]),
    (tone(), RATE, "x.opus", ExportSettings(sample_rate=44_100), None, ["opus", "48000"]),
    (tone(), RATE, "x.flac", ExportSettings(bit_depth="float"), None, ["flac", "bit depth 'float'"]),
    (tone(), RATE, "x.mp3", ExportSettings(bit_depth=24), None, ["lossy", "bit_depth"]),
    (tone(), RATE, "x.wav", ExportSettings(quality=0.5), None, ["lossless", "quality"]),
    (tone(), RATE, "x.ogg", ExportSettings(quality=1.5), None, ["quality must be between 0"]),
    (with_sample(np.nan), RATE, "x.wav", ExportSettings(), None, ["1 NaN or infinite", "0.500 s"]),
    (with_sample(-np.inf), RATE, "x.wav", ExportSettings(), None, ["NaN or infinite"]),
    (np.zeros((0, 2), np.float32), RATE, "x.wav", ExportSettings(), None, ["empty"]),
    (np.zeros((2, 2, 2), np.float32), RATE, "x.wav", ExportSettings(), None, ["shape (2, 2, 2)"]),
    (tone().T.copy(), RATE, "x.wav", ExportSettings(), None, ["44100 channels", "audio.T"]),
    ((tone() * 32767).astype(np.int16), RATE, "x.wav", ExportSettings(), None, ["float samples", "int16"]),
    (tone(), 0, "x.wav", ExportSettings(), None, ["source_rate", "positive"]),
    (tone(), RATE, "x.wav", ExportSettings(fade_out_s=2.0), None, ["longer than the track"]),
    (tone(), RATE, "x.wav", ExportSettings(fade_out_s=-1.0), None, ["fade_out_s"]),
    (tone(), RATE, "x.wav", ExportSettings(), TrackTags(title="a\x00b"), ["'title'", "NUL"]),
]


@pytest.mark.parametrize(("audio", "rate", "name", "settings", "tags", "words"), BAD_INPUTS)
def test_bad_input_is_refused_by_name_and_writes_nothing(tmp_path, audio, rate, name, settings, tags, words):
    with pytest.raises(ExportError) as caught:
        export_track(audio, rate, tmp_path / name, settings, tags=tags)
    for word in words:
        assert word in str(caught.value)
    assert folder_state(tmp_path) == {}


def test_missing_folder_a_file_as_folder_and_a_folder_as_target_are_refused(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        export_track(tone(), RATE, tmp_path / "missing" / "x.wav")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ExportError, match="is not a folder"):
        export_track(tone(), RATE, tmp_path / "file" / "x.wav")
    (tmp_path / "taken.wav").mkdir()
    with pytest.raises(ExportError, match="is a folder"):
        export_track(tone(), RATE, tmp_path / "taken.wav")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_unwritable_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ExportError, match="not writable"):
        export_track(tone(), RATE, locked / "x.wav")


def test_sidecar_data_json_cannot_hold_is_refused_before_any_file(tmp_path):
    target = tmp_path / "x.wav"
    target.write_bytes(OLD_CONTENT)
    with pytest.raises(ExportError, match=r"sections\[1\].seed"):
        export_track(tone(), RATE, target, sidecar_data={"sections": [{}, {"seed": object()}]})
    with pytest.raises(ExportError, match="nan"):
        export_track(tone(), RATE, target, sidecar_data={"temperature": float("nan")})
    assert folder_state(tmp_path) == {"x.wav": OLD_CONTENT}


class Cancelled(Exception):
    pass


@pytest.mark.parametrize("fmt", ["wav", "mp3"])
@pytest.mark.parametrize("stage", ["loudness", "encode", "verify"])
def test_an_exception_mid_export_leaves_the_old_file_and_no_partial(tmp_path, fmt, stage):
    target = tmp_path / f"song.{fmt}"
    target.write_bytes(OLD_CONTENT)
    (tmp_path / f"song.{fmt}.json").write_bytes(OLD_CONTENT)

    def progress(fraction: float, at: str) -> None:
        if at == stage:
            raise Cancelled(at)

    with pytest.raises(Cancelled):  # the caller's own exception comes back unchanged
        export_track(tone(3.0), RATE, target, sidecar_data={"title": "new"}, progress=progress)
    assert folder_state(tmp_path) == {f"song.{fmt}": OLD_CONTENT, f"song.{fmt}.json": OLD_CONTENT}


@pytest.mark.parametrize("silently", [False, True])
def test_a_failing_encoder_becomes_export_error_and_leaves_nothing(tmp_path, monkeypatch, silently):
    import soundfile

    from cocompose.export import encode

    class BrokenSoundFile(soundfile.SoundFile):
        def write(self, data):
            super().write(data[: len(data) // 2])
            if not silently:  # silently: frames lost without a word, caught by reading the file back
                raise soundfile.LibsndfileError(0, "simulated encoder failure")

    monkeypatch.setattr(encode.sf, "SoundFile", BrokenSoundFile)
    target = tmp_path / "song.flac"
    target.write_bytes(OLD_CONTENT)
    message = "file is incomplete" if silently else "writing the flac file failed"
    with pytest.raises(ExportError, match=message):
        export_track(tone(), RATE, target)
    assert folder_state(tmp_path) == {"song.flac": OLD_CONTENT}


DISK_FULL_SCRIPT = """
import resource, signal, sys
import numpy as np
from cocompose.export import ExportError, export_track

# Without this the kernel kills the process with SIGXFSZ at the limit; ignored, write() fails EFBIG,
# which is what a full disk looks like to the encoder.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
rate = 44100
t = np.arange(10 * rate) / rate
audio = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 550 * t)], 1).astype(np.float32) * 0.3
try:
    export_track(audio, rate, sys.argv[1], sidecar_data={"title": "x"})
except ExportError as exc:
    print("EXPORT_ERROR:", exc)
else:
    print("EXPORTED")
"""


@pytest.mark.parametrize("name", ["full.wav", "full.flac", "full.mp3"])
def test_a_full_disk_mid_write_leaves_no_partial_and_the_old_file_intact(tmp_path, name):
    target = tmp_path / name
    target.write_bytes(OLD_CONTENT)
    limit = {"full.wav": 500_000, "full.flac": 100_000, "full.mp3": 40_000}[name]  # well under the file
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DISK_FULL_SCRIPT), str(target), str(limit)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("EXPORT_ERROR:"), run.stdout + run.stderr
    assert "disk" in run.stdout  # the message points at the likely cause
    assert folder_state(tmp_path) == {name: OLD_CONTENT}


def test_a_killed_exports_leftover_is_cleaned_by_the_next_export_and_files_get_ordinary_permissions(tmp_path):
    import os
    import time

    from cocompose.export.atomic import STALE_AFTER_S, temporary_beside

    target = tmp_path / "song.wav"
    old = tmp_path / ".song.wav.abc123.partial"  # what a SIGKILL mid-export leaves
    fresh = tmp_path / ".song.wav.def456.partial"  # another export still writing
    for path in (old, fresh):
        path.write_bytes(b"half")
    past = time.time() - STALE_AFTER_S - 5
    os.utime(old, (past, past))
    unrelated = tmp_path / ".other.wav.abc.partial"
    unrelated.write_bytes(b"x")
    os.utime(unrelated, (past, past))
    temporary = temporary_beside(target)
    assert not old.exists() and fresh.exists() and unrelated.exists()
    umask = os.umask(0)
    os.umask(umask)
    assert temporary.stat().st_mode & 0o777 == 0o666 & ~umask
