"""Model bundles: manifest and conventional layouts, clear errors for every missing piece, and the
numpy façade (prime encoding, previews, names, streaming generation with batch-independent seeds)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from engine.api import ComposeEngine, LabelSpec, window_schedule
from engine.bundle import BundleManifest, ModelBundle
from engine.errors import CheckpointError
from engine.prior.sampler import Cancelled, SamplingSettings
from tests.compose_model import louden_labels, write_tiny_bundle

SPEC = LabelSpec("Ada Tone", "rock", "la la la", total_seconds=30)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return write_tiny_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="module")
def engine(bundle_dir):
    return ComposeEngine.load(bundle_dir)


def copy_of(bundle_dir, tmp_path):
    return shutil.copytree(bundle_dir, tmp_path / "copy")


def test_manifest_bundle_loads_every_role(bundle_dir):
    bundle = ModelBundle.load(bundle_dir)
    assert bundle.name == "tiny-test/tiny"
    assert [up.config.level for up in bundle.upsamplers] == [0, 1]
    assert bundle.codes_per_second == pytest.approx(22050 / 128)
    assert set(bundle.fingerprints) == {"vqvae", "top", "upsampler_0", "upsampler_1"}


def test_conventional_names_without_a_manifest(bundle_dir, tmp_path):
    folder = copy_of(bundle_dir, tmp_path)
    (folder / "bundle.json").unlink()
    bundle = ModelBundle.load(folder)
    assert bundle.top_name == "tiny" and bundle.upsamplers is not None


def test_official_style_folder_picks_a_top_prior_by_name_and_reads_ids(bundle_dir, tmp_path):
    folder = copy_of(bundle_dir, tmp_path)
    (folder / "bundle.json").unlink()
    for suffix in (".json", ".safetensors"):
        shutil.copy(folder / f"prior_tiny{suffix}", folder / f"prior_5b{suffix}")
    with pytest.raises(CheckpointError, match=r"several top priors \(5b, tiny\)"):
        ModelBundle.load(folder)
    with pytest.raises(CheckpointError, match=r"no top prior named 'nope'.*5b, tiny"):
        ModelBundle.load(folder, top="nope")
    assert ModelBundle.load(folder, top="prior_5b").top_name == "5b"


def test_missing_pieces_are_named(bundle_dir, tmp_path):
    with pytest.raises(CheckpointError, match="model folder not found"):
        ModelBundle.load(tmp_path / "absent")
    folder = copy_of(bundle_dir, tmp_path)
    (folder / "upsampler_level_0.safetensors").unlink()
    with pytest.raises(
        CheckpointError, match=r"level-0 upsampler is missing: .*upsampler_level_0.safetensors"
    ):
        ModelBundle.load(folder)
    (folder / "vqvae.json").unlink()
    with pytest.raises(CheckpointError, match=r"the VQ-VAE is missing: .*vqvae.json"):
        ModelBundle.load(folder)


def test_bad_manifest_and_rate_mismatch(bundle_dir, tmp_path):
    folder = copy_of(bundle_dir, tmp_path)
    manifest = json.loads((folder / "bundle.json").read_text())
    (folder / "bundle.json").write_text(json.dumps({**manifest, "sample_rate": 44100}))
    with pytest.raises(CheckpointError, match="says 44100 Hz but the VQ-VAE runs at 22050 Hz"):
        ModelBundle.load(folder)
    (folder / "bundle.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a readable bundle manifest"):
        ModelBundle.load(folder)


def test_a_bundle_recommends_the_guidance_its_manifest_names(bundle_dir, tmp_path):
    assert ModelBundle.load(bundle_dir).recommended_guidance == 0.0  # none named: sample the model as is
    folder = copy_of(bundle_dir, tmp_path)
    manifest = json.loads((folder / "bundle.json").read_text())
    (folder / "bundle.json").write_text(json.dumps({**manifest, "guidance": 2.5}))
    assert ComposeEngine.load(folder).recommended_guidance == 2.5
    for bad in ("loud", -1, 11, True):
        (folder / "bundle.json").write_text(json.dumps({**manifest, "guidance": bad}))
        with pytest.raises(CheckpointError, match=r"malformed bundle manifest.*guidance must be a number"):
            ModelBundle.load(folder)


def test_a_bundle_names_the_upsampler_lookahead_it_was_measured_with(bundle_dir, tmp_path):
    assert ModelBundle.load(bundle_dir).upsample_lookahead == 0.0  # none named: the reference's windows
    folder = copy_of(bundle_dir, tmp_path)
    manifest = json.loads((folder / "bundle.json").read_text())
    (folder / "bundle.json").write_text(json.dumps({**manifest, "upsample_lookahead": 0.125}))
    assert ModelBundle.load(folder).upsample_lookahead == 0.125
    written = BundleManifest.read(folder / "bundle.json")
    written.write(tmp_path)
    assert BundleManifest.read(tmp_path / "bundle.json") == written  # a round trip keeps it
    for bad in ("far", -0.1, 0.5, True):
        (folder / "bundle.json").write_text(json.dumps({**manifest, "upsample_lookahead": bad}))
        with pytest.raises(CheckpointError, match=r"malformed bundle manifest.*upsample_lookahead must be"):
            ModelBundle.load(folder)


def test_names_from_official_id_lists_when_the_model_has_none(bundle_dir, tmp_path):
    folder = copy_of(bundle_dir, tmp_path)
    manifest = json.loads((folder / "bundle.json").read_text())
    (folder / "bundle.json").write_text(json.dumps({**manifest, "vocabulary": "ids"}))
    with pytest.raises(CheckpointError, match="no artist/genre names for prior_tiny"):
        ModelBundle.load(folder)
    (folder / "ids").mkdir()
    (folder / "ids" / "v2_artist_ids.txt").write_text("unknown;0\nzed_zeppelin;1\n")
    (folder / "ids" / "v2_genre_ids.txt").write_text("unknown;0\nblues;1\n")
    engine = ComposeEngine(ModelBundle.load(folder))
    assert engine.artists() == ["unknown", "zed_zeppelin"]


def test_unknown_names_suggest_the_nearest(engine):
    engine.check_names(SPEC)
    with pytest.raises(ValueError, match="unknown artist 'Ada Tnoe'; nearest: ada_tone"):
        engine.check_names(LabelSpec("Ada Tnoe", "rock"))
    with pytest.raises(ValueError, match="unknown genre 'jaz'; nearest: jazz"):
        engine.check_names(LabelSpec("Ada Tone", "jaz"))
    assert "ada_tone" in engine.artists() and "folk" in engine.genres()


def test_prime_is_resampled_downmixed_and_limited(engine):
    t = np.arange(44100 * 2) / 44100
    stereo = np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], axis=1) * 0.3
    codes = engine.encode_prime(stereo, 44100, max_seconds=1.0)
    assert codes.dtype == np.int64 and len(codes) == int(np.ceil(22050 / 128))
    audio, rate = engine.decode_preview(codes)
    assert rate == 22050 and audio.dtype == np.float32 and len(audio) == len(codes) * 128


def test_window_schedule_fills_the_first_context_then_hops_half():
    assert window_schedule(0, 40, 64) == (0, 40)
    assert window_schedule(10, 100, 64) == (0, 54)
    assert window_schedule(64, 100, 64) == (32, 32)
    assert window_schedule(64, 10, 64) == (10, 10)


def _generate(engine, seeds, n_new=150, settings: SamplingSettings | None = None, history=None, **kwargs):
    out = {b: [] for b in range(len(seeds))}
    history = np.arange(20) % 64 if history is None else history
    for piece in engine.generate(history, n_new, seeds, SPEC, settings or SamplingSettings(), **kwargs):
        for row, b in enumerate(piece.branches):
            out[b].append(piece.codes[row])
    return [np.concatenate(out[b]) for b in range(len(seeds))]


def test_a_seed_gives_the_same_codes_whatever_the_batch(engine):
    three = _generate(engine, [11, 22, 33])
    alone = _generate(engine, [22])
    split = _generate(engine, [33, 11, 22], max_batch=2)
    assert all(len(codes) == 150 for codes in three)
    np.testing.assert_array_equal(three[1], alone[0])
    np.testing.assert_array_equal(split[0], three[2])
    np.testing.assert_array_equal(split[2], three[1])


def test_guided_songs_over_several_windows_are_the_same_whatever_the_batch(bundle_dir):
    engine = ComposeEngine.load(bundle_dir)
    louden_labels(engine.bundle.top)
    # From the song's start: labels reach later positions of this tiny prior only faintly.
    guided, start = SamplingSettings(guidance=2.0), np.zeros(0, np.int64)
    assert 150 > engine.n_ctx  # several windows, each primed with the codes before it
    three = _generate(engine, [11, 22, 33], settings=guided, history=start)
    alone = _generate(engine, [22], settings=guided, history=start)
    split = _generate(engine, [33, 11, 22], max_batch=2, settings=guided, stream_tokens=7, history=start)
    np.testing.assert_array_equal(three[1], alone[0])
    np.testing.assert_array_equal(split[0], three[2])
    np.testing.assert_array_equal(split[2], three[1])
    plain = _generate(engine, [11, 22, 33], history=start)
    # (The untrained prior's draws hang on their uniform numbers, not on the codes before them, so a
    # branch whose first code guidance leaves alone may well come out the same.)
    assert not all(np.array_equal(g, p) for g, p in zip(three, plain, strict=True))


def test_cancel_yields_what_was_drawn_then_stops(engine):
    calls = []

    def progress(done, total):
        calls.append(done)
        return done < 40

    pieces = []
    with pytest.raises(Cancelled):
        for piece in engine.generate(np.zeros(0, np.int64), 150, [1], SPEC, SamplingSettings(),
                                     progress=progress):  # fmt: skip
            pieces.append(piece)
    assert sum(p.codes.shape[1] for p in pieces) == 40
