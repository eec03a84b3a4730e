"""Training crops: deterministic per (seed, step), sharded across ranks, resampled per span, downmixed
by a random blend, labelled like the reference, and bad files skipped with a report."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from engine.data.audio_files import read_crop, scan
from engine.data.crop_labels import CropLabeller
from engine.data.dataset import CropDataset
from engine.data.vocabulary import extend, vocabulary_from_data
from engine.prior.labels import LabelConfig, label_from_ids
from engine.prior.text import lyrics_vocab
from tests.training_corpus import write_corpus

RATE = 22050


@pytest.fixture
def stereo_corpus(tmp_path):
    return write_corpus(tmp_path / "data", songs=4, seconds=1.0, channels=2)


def test_crops_are_a_function_of_seed_and_step_and_ranks_split_the_global_batch(stereo_corpus):
    dataset = CropDataset(stereo_corpus, RATE, 4096, report=lambda m: None)
    assert dataset.plan(5, 4, seed=1) == dataset.plan(5, 4, seed=1)
    assert dataset.plan(5, 4, seed=1) != dataset.plan(6, 4, seed=1)
    assert dataset.plan(5, 4, seed=1) != dataset.plan(5, 4, seed=2)
    whole, _ = dataset.batch(3, 4, seed=0)
    halves = [dataset.batch(3, 4, seed=0, rank=r, world_size=2)[0] for r in (0, 1)]
    assert torch.equal(torch.cat(halves), whole)
    with pytest.raises(ValueError, match="divisible"):
        dataset.batch(0, 3, seed=0, world_size=2)


def test_a_start_share_of_crops_begins_at_the_first_sample_and_leaves_the_others_as_they_were(tmp_path):
    corpus = write_corpus(tmp_path / "data", songs=4, seconds=2.0)
    uniform = CropDataset(corpus, RATE, 4096, report=lambda m: None)
    none, every, half = (
        CropDataset(corpus, RATE, 4096, report=lambda m: None, start_share=share) for share in (0.0, 1.0, 0.5)
    )
    at_start = 0
    for step in range(40):
        plain = uniform.plan(step, 8, seed=3)
        assert none.plan(step, 8, seed=3) == plain  # the default draws exactly the crops it always did
        assert every.plan(step, 8, seed=3) == [replace(c, offset=0) for c in plain]  # same songs, blends
        for moved, crop in zip(half.plan(step, 8, seed=3), plain, strict=True):
            assert moved in (crop, replace(crop, offset=0))
            at_start += moved.offset == 0 and crop.offset != 0
        assert half.plan(step, 8, seed=3) == half.plan(step, 8, seed=3)  # still a function of (seed, step)
    assert 0.35 < at_start / (40 * 8) < 0.65
    with pytest.raises(ValueError, match="start_share"):
        CropDataset(corpus, RATE, 4096, report=lambda m: None, start_share=1.5)


def test_mono_downmix_is_a_random_blend_of_left_and_right(tmp_path):
    left, right = np.full(8000, 0.5, np.float32), np.full(8000, -0.25, np.float32)
    sf.write(tmp_path / "a.wav", np.stack([left, right], axis=1), RATE, subtype="FLOAT")
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file": "a.wav", "artist": "x"}) + "\n")
    dataset = CropDataset(tmp_path, RATE, 1024, report=lambda m: None)
    blends = set()
    for crop in dataset.plan(0, 8, seed=0):
        np.testing.assert_allclose(dataset.load(crop), crop.blend * 0.5 - (1 - crop.blend) * 0.25, atol=1e-6)
        blends.add(round(crop.blend, 6))
    assert len(blends) == 8


def test_a_resampled_crop_equals_the_same_span_of_the_whole_resampled_file(tmp_path):
    rng = np.random.default_rng(0)
    audio = (0.3 * np.sin(np.arange(44100) * 0.05) + 0.05 * rng.standard_normal(44100)).astype(np.float32)
    sf.write(tmp_path / "a.wav", audio, 44100, subtype="FLOAT")
    info = scan(tmp_path / "a.wav")
    whole = soxr.resample(audio, 44100, RATE, quality="HQ")
    for offset in (0, 777, 5000, 20000):
        crop = read_crop(tmp_path / "a.wav", info, RATE, offset, 1000)[:, 0]
        np.testing.assert_allclose(crop, whole[offset : offset + 1000], atol=2e-3)
    tail = read_crop(tmp_path / "a.wav", info, RATE, len(whole) - 100, 1000)[:, 0]
    assert np.all(tail[120:] == 0), "past the end of the song a crop is silent"


def test_unreadable_files_are_reported_by_name_and_skipped(tmp_path, capsys):
    data = write_corpus(tmp_path / "data", songs=2, seconds=0.5)
    (data / "text.wav").write_text("not audio at all")
    good = (data / "song_0.wav").read_bytes()
    (data / "cut.wav").write_bytes(good[:30])
    nan = np.zeros(2000, np.float32)
    nan[1500] = np.nan
    sf.write(data / "nan.wav", nan, RATE, subtype="FLOAT")
    with open(data / "metadata.jsonl", "a") as f:
        for name in ("text.wav", "cut.wav", "nan.wav", "missing.flac"):
            f.write(json.dumps({"path": name, "artist": "x"}) + "\n")

    dataset = CropDataset(data, RATE, 1024)
    report = capsys.readouterr().out
    for name in ("text.wav", "cut.wav", "nan.wav", "missing.flac"):
        assert f"skipping {name}" in report
    assert "NaN" in report
    assert [song.record.path.name for song in dataset.songs] == ["song_0.wav", "song_1.wav"]
    assert dataset.batch(0, 2, seed=0)[0].shape == (2, 1024)


def test_a_folder_without_usable_audio_is_a_clear_error(tmp_path):
    (tmp_path / "x.wav").write_text("nope")
    (tmp_path / "metadata.csv").write_text("file,artist,genre,lyrics\nx.wav,a,b,c\n")
    with pytest.raises(ValueError, match="no usable audio file"):
        CropDataset(tmp_path, RATE, 1024, report=lambda m: None)
    (tmp_path / "metadata.csv").unlink()
    with pytest.raises(FileNotFoundError, match="no metadata file"):
        CropDataset(tmp_path, RATE, 1024)


def test_crop_labels_follow_the_reference_layout_with_ids_from_the_data(stereo_corpus):
    dataset = CropDataset(stereo_corpus, RATE, 4096, report=lambda m: None)
    records = [song.record for song in dataset.songs]
    vocabulary = vocabulary_from_data(records)
    assert vocabulary.artists == {"unknown": 0, "ada_tone": 1, "bo_noise": 2}
    assert vocabulary.genres == {"unknown": 0, "jazz": 1, "rock": 2}
    config = LabelConfig(v3=False, max_bow=2, n_tokens=8, sample_length=4096)
    crops = dataset.plan(0, 4, seed=0)
    labels = CropLabeller(config, vocabulary, dataset).labels(crops)
    for crop, row in zip(crops, labels.tolist(), strict=True):
        song = dataset.songs[crop.song]
        expected = label_from_ids(
            config,
            vocabulary.artist_id(song.record.artist),
            [vocabulary.genres[song.record.genre]],
            lyrics_vocab(False).encode(song.record.lyrics),
            song.total_length,
            crop.offset,
        )
        assert row == expected.y
        assert row[0] == RATE and row[2] == 4096 and row[5] == -1


def test_fine_tuning_keeps_official_ids_and_numbers_new_names_after_the_model_rows(stereo_corpus):
    dataset = CropDataset(stereo_corpus, RATE, 4096, report=lambda m: None)
    base = vocabulary_from_data([dataset.songs[0].record])  # knows "ada_tone" as 1 and "rock" as 1
    grown = extend(base, [song.record for song in dataset.songs], n_artists=10, n_genres=5)
    assert grown.artists["ada_tone"] == 1 and grown.artists["bo_noise"] == 10
    assert grown.new_artists == ("bo_noise",) and grown.new_genres == ("jazz",)
    assert grown.n_artists == 11 and grown.genres["jazz"] == 5
