"""Label vectors, artist/genre ids and lyrics tokens against the reference `Labeller` outputs."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest
import torch

from engine.prior.labels import (
    LYRIC_PAD_INDEX,
    LabelConfig,
    build_batch_labels,
    label_from_ids,
    load_artist_genre_ids,
    lyric_window,
    normalise_v2,
)
from engine.prior.text import lyrics_vocab
from tests.reference import IDS_DIR, arrays, require_fixture


@cache
def label_meta() -> dict:
    return json.loads((require_fixture() / "meta.json").read_text())["labels"]


def config_names() -> list[str]:
    return [name for name, entry in label_meta().items() if "config" in entry]


def config_of(name: str) -> LabelConfig:
    c = label_meta()[name]["config"]
    return LabelConfig(
        v3=c["v3"], max_bow=c["max_genre_words"], n_tokens=c["n_tokens"], sample_length=c["sample_length"]
    )


def metas_of(name: str) -> list[dict]:
    keys = ("artist", "genre", "total_length", "offset")
    return [
        {**{k: item[k] for k in keys}, "lyrics": item["raw_lyrics"]} for item in label_meta()[name]["items"]
    ]


@pytest.fixture(scope="module", params=["v2", "v3"])
def any_ids(request):
    return load_artist_genre_ids(IDS_DIR, request.param == "v3")


def test_fixture_has_the_four_label_configs():
    assert len(config_names()) == 4


@pytest.mark.parametrize("index", range(4))
def test_label_vectors_equal_reference(index):
    name = config_names()[index]
    config = config_of(name)
    assert label_meta()[name]["label_len"] == config.label_len
    ids = load_artist_genre_ids(IDS_DIR, config.v3)
    y, labels = build_batch_labels(config, ids, metas_of(name))
    ref = arrays("labels_ref")
    assert y.dtype == torch.int64
    np.testing.assert_array_equal(y.numpy(), ref[f"{name}_y"])
    for j, label in enumerate(labels):
        np.testing.assert_array_equal(
            np.asarray(label.full_tokens, dtype=np.int64), ref[f"{name}_full_tokens_{j}"]
        )
        # The window indices point at the tokens the vector holds (pads at -1).
        window = [label.full_tokens[i] if i != LYRIC_PAD_INDEX else 0 for i in label.lyric_indices]
        assert window == label.y[4 + config.max_bow :]


@pytest.mark.parametrize("index", range(4))
def test_cleaned_lyrics_equal_reference(index):
    name = config_names()[index]
    vocab = lyrics_vocab(config_of(name).v3)
    for item in label_meta()[name]["items"]:
        assert vocab.clean(item["raw_lyrics"]) == item["cleaned_lyrics"]
        assert len(vocab.encode(item["raw_lyrics"])) == item["n_full_tokens"]


@pytest.mark.parametrize("v3", [False, True])
def test_vocab_matches_reference(v3):
    entry = label_meta()["text_vocab_v3" if v3 else "text_vocab_v2"]
    vocab = lyrics_vocab(v3)
    assert vocab.characters == entry["vocab"]
    assert vocab.n_vocab == entry["n_vocab"]
    text = entry["vocab"]
    assert vocab.encode(text) == list(range(1, vocab.n_vocab))
    assert vocab.decode([0, *vocab.encode(text), 0]) == text


def test_text_cleaning_rules():
    v2, v3 = lyrics_vocab(False), lyrics_vocab(True)
    assert v2.clean("a\\b") == "a\nb"
    assert v2.clean("1+1 = 2") == "1+1  2"
    assert v3.clean("1+1 = 2") == "11  2"
    assert v2.clean("Céline — “hi”") == 'Celine -- "hi"'
    with pytest.raises(ValueError, match="vocabulary"):
        v3.tokenise("+")
    with pytest.raises(ValueError, match="outside"):
        v3.decode([v3.n_vocab])


@pytest.mark.parametrize("v3", [False, True])
def test_id_list_sizes(v3):
    entry = label_meta()["id_lists_v3" if v3 else "id_lists_v2"]
    ids = load_artist_genre_ids(IDS_DIR, v3)
    # The reference counts distinct names (its dict), so a name listed twice counts once.
    assert len(ids.artists) == entry["n_artist_lines"]
    assert len(ids.genres) == entry["n_genre_lines"]
    assert ids.artists.max_id == entry["max_artist_id"]
    assert ids.genres.max_id == entry["max_genre_id"]


def test_v2_normalisation():
    assert normalise_v2("Céline Dion") == "c_line_dion"
    assert normalise_v2("  The  Beatles!! ") == "the_beatles"
    assert normalise_v2("Rock & Roll / Psychedelic Pop") == "rock_roll_psychedelic_pop"
    assert normalise_v2("AC/DC") == "ac_dc"
    assert normalise_v2("__") == ""


def test_v2_and_v3_lookups_differ_as_documented():
    v2 = load_artist_genre_ids(IDS_DIR, False)
    v3 = load_artist_genre_ids(IDS_DIR, True)
    assert v2.artist_id("Céline Dion") == v2.artists.id_of_key("c_line_dion") != 0
    assert v3.artist_id("Céline Dion") == v3.artists.id_of_key("céline dion") != 0
    assert v2.genre_ids("Blues Rock", 5) == [v2.genres.id_of_key("blues"), v2.genres.id_of_key("rock")]
    assert v3.genre_ids("Blues Rock", 1) == [v3.genres.id_of_key("blues rock")]


def test_unknown_names_map_to_zero_with_suggestions(any_ids):
    assert any_ids.artist_id("No Such Artist 123") == 0
    assert any_ids.artist_id("Alan Jacksn") == 0
    suggestions = any_ids.artists.suggest("Alan Jacksn", n=3)
    assert 0 < len(suggestions) <= 3
    assert any_ids.artists.id_of_key(suggestions[0]) == any_ids.artist_id("Alan Jackson") != 0
    assert any_ids.genres.suggest("Countri")[0] == any_ids.genres.key("Country")
    assert any_ids.artists.suggest("zzzzqqqqxxxx") == []


def test_too_many_v2_genre_words_is_a_clear_error():
    ids = load_artist_genre_ids(IDS_DIR, False)
    genre = "Hard Rock Blues Soul Jazz Pop"
    with pytest.raises(ValueError, match=r"Hard Rock Blues Soul Jazz Pop.*6 words.*at most 5"):
        ids.genre_ids(genre, 5)
    assert len(ids.genre_ids("Hard Rock Blues Soul Jazz", 5)) == 5


def test_lyric_window_pads_short_lyrics_on_the_left():
    tokens, indices = lyric_window([5, 6, 7], 5, total_length=100, offset=0, duration=10)
    assert tokens == [0, 0, 5, 6, 7]
    assert indices == [-1, -1, 0, 1, 2]


def test_lyric_window_clamps_to_both_ends():
    full = list(range(1, 101))
    assert lyric_window(full, 10, 1000, 0, 10)[1] == list(range(0, 10))
    assert lyric_window(full, 10, 1000, 999, 500)[1] == list(range(90, 100))
    assert lyric_window(full, 10, 1000, 500, 0)[1] == list(range(45, 55))
    with pytest.raises(ValueError, match="outside"):
        lyric_window(full, 10, 1000, 1000, 10)


def test_lyric_window_float32_path_follows_tensor_arithmetic():
    # A case where the per-window (float32 tensor) and first-label (float64) midpoints differ by one.
    n_full, n_tokens, total, offset, duration = 1219, 384, 3788817, 2363700, 786432
    full = list(range(n_full))
    t = torch.tensor([total, offset, duration])
    mid32 = int(n_full * (t[1] + t[2] / 2.0) / t[0])  # what the reference computes on a label tensor
    mid64 = int(n_full * (offset + duration / 2.0) / total)
    assert mid32 != mid64
    assert lyric_window(full, n_tokens, total, offset, duration, float32=True)[1][0] == mid32 - n_tokens // 2
    assert lyric_window(full, n_tokens, total, offset, duration)[1][0] == mid64 - n_tokens // 2


def test_label_from_ids_rejects_too_many_genres():
    config = LabelConfig(v3=False, max_bow=2, n_tokens=0, sample_length=640)
    assert label_from_ids(config, 3, [1], [], 1000, 0).y == [1000, 0, 640, 3, 1, -1]
    with pytest.raises(ValueError, match="at most 2"):
        label_from_ids(config, 3, [1, 2, 3], [], 1000, 0)
