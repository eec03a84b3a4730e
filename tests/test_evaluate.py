"""`cocompose evaluate` on the tiny random bundle and a 3-song synthesised corpus: the card has every
metric, the numbers agree with the batch formulas they stand for, and bad input exits 2."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from cocompose.cli import main
from engine.bundle import ModelBundle
from engine.data.metadata import read_metadata
from engine.data.synth import write_corpus
from engine.data.vocabulary import vocabulary_from_data
from engine.evaluation import evaluate_model
from engine.evaluation.heldout import iter_songs, open_corpus
from engine.evaluation.prior_metrics import partner_songs, window_starts
from engine.prior.labels import label_from_ids
from engine.prior.text import lyrics_vocab
from engine.vqvae.losses import codebook_entropy_bits, spectral_convergence_db
from tests.compose_model import write_tiny_bundle

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("evaluate")
    write_corpus(root / "corpus", songs=3, seconds=12.0, seed=7)
    # The priors know the corpus's artists and genres, so wrong-label scores have real ids to swap in.
    vocabulary = vocabulary_from_data(read_metadata(root / "corpus"))
    model = write_tiny_bundle(root / "model", vocabulary=vocabulary)
    return model, root / "corpus"


def test_cli_writes_every_metric(setup, tmp_path, capsys):
    model, corpus = setup
    out = tmp_path / "card.json"
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(model),
                "--data",
                str(corpus),
                "--max-windows",
                "2",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "bottom" in text and "top tiny" in text and "upsampler level 0" in text
    card = json.loads(out.read_text())
    assert card["songs"] == 3 and card["seconds"] == pytest.approx(36.0)
    assert [row["name"] for row in card["levels"]] == ["bottom", "middle", "top"]
    assert [row["target_db"] for row in card["levels"]] == [-20.0, -12.0, -8.0]
    for row in card["levels"]:
        assert math.isfinite(row["spectral_convergence_db"])
        assert row["sc_pass"] == (row["spectral_convergence_db"] <= row["target_db"])
        assert 0.0 <= row["entropy_bits"] <= row["max_entropy_bits"] + 1e-9 == math.log2(64) + 1e-9
        assert row["usage"] == pytest.approx(row["entropy_bits"] / 6.0)
        assert row["usage_pass"] == (row["usage"] >= 0.8)
    assert [(p["role"], p["level"]) for p in card["priors"]] == [
        ("top", 2),
        ("upsampler", 1),
        ("upsampler", 0),
    ]
    assert "wrong artist" in text
    for prior in card["priors"]:
        assert prior["windows"] == 3 * 2
        assert math.isfinite(prior["artist_gain_bits"]) and math.isfinite(prior["genre_gain_bits"])
        assert 0.0 < prior["bits_per_token"] < 20.0
        assert 0.0 <= prior["unigram_bits"] <= math.log2(64)


def test_numbers_equal_the_batch_formulas(setup):
    """Song-by-song sums must give what spectral_convergence_db / codebook_entropy_bits give on one batch
    of all songs (they have equal lengths), and the top prior's figure the mean gen_loss of its windows."""
    model, corpus = setup
    card = evaluate_model(model, corpus, say=lambda _: None)
    bundle = ModelBundle.load(model)
    vqvae = bundle.vqvae
    songs = [audio for _, audio in iter_songs(open_corpus(corpus, vqvae.sample_rate))]
    batch = torch.cat(songs)
    codes = vqvae.encode(batch)
    for level, row in enumerate(card.levels):
        decoded = vqvae.decode(codes[level], level=level)[:, : batch.shape[1]]
        assert row.spectral_convergence_db == pytest.approx(spectral_convergence_db(batch, decoded), abs=1e-4)
        assert row.entropy_bits == pytest.approx(codebook_entropy_bits(codes[level], 64), abs=1e-9)
    top = card.priors[0]
    n_ctx = bundle.top.config.n_ctx
    starts = window_starts(codes[2].shape[1], n_ctx, None)
    assert top.windows == 3 * len(starts) > 0
    tokens = torch.stack([codes[2][i, s : s + n_ctx] for i in range(3) for s in starts])
    assert top.unigram_bits == pytest.approx(codebook_entropy_bits(tokens, 64), abs=1e-9)
    labels = torch.stack(
        [_label(bundle, corpus, i, s * bundle.vqvae.hop_lengths[2]) for i in range(3) for s in starts]
    )
    with torch.no_grad():
        bits = bundle.top.loss(tokens, labels)["gen_loss"].double().mean()
    assert top.bits_per_token == pytest.approx(float(bits), abs=1e-5)


@pytest.mark.parametrize("what, slots", [("artist", slice(3, 4)), ("genre", slice(4, 5))])
def test_label_gain_is_what_another_songs_label_costs(setup, what, slots):
    """The card's wrong-label figure must equal scoring every window again with the label slot of the
    next song whose artist (genre) differs, minus the true score, averaged over windows."""
    model, corpus = setup
    card = evaluate_model(model, corpus, say=lambda _: None)
    bundle = ModelBundle.load(model)
    songs = [audio for _, audio in iter_songs(open_corpus(corpus, bundle.sample_rate))]
    codes = bundle.vqvae.encode(torch.cat(songs))[2]
    n_ctx, hop = bundle.top.config.n_ctx, bundle.vqvae.hop_lengths[2]
    starts = window_starts(codes.shape[1], n_ctx, None)
    firsts = [_label(bundle, corpus, i, 0) for i in range(3)]
    assert len({tuple(label[slots].tolist()) for label in firsts}) == 3  # the test corpus has 3 of each
    gains = []
    with torch.no_grad():
        for i in range(3):
            tokens = torch.stack([codes[i, s : s + n_ctx] for s in starts])
            labels = torch.stack([_label(bundle, corpus, i, s * hop) for s in starts])
            wrong = labels.clone()
            wrong[:, slots] = firsts[(i + 1) % 3][slots]
            true_bits = bundle.top.loss(tokens, labels)["gen_loss"].double()
            gains.append(bundle.top.loss(tokens, wrong)["gen_loss"].double() - true_bits)
    expected = float(torch.cat(gains).mean())
    assert getattr(card.priors[0], f"{what}_gain_bits") == pytest.approx(expected, abs=1e-5)
    assert expected != 0.0  # the tiny prior's random label embeddings do change its predictions


def test_partner_songs_skip_songs_with_the_same_label():
    labels = torch.tensor([[0, 0, 0, 1, 5], [0, 0, 0, 1, 6], [0, 0, 0, 2, 6]])
    assert partner_songs(labels, slice(3, 4)) == [2, 2, 0]
    assert partner_songs(labels, slice(4, 5)) == [1, 0, 0]
    assert partner_songs(labels[:2], slice(3, 4)) == [None, None]


def _label(bundle: ModelBundle, corpus: Path, song: int, offset: int) -> torch.Tensor:
    """The song's real label, built here from metadata.jsonl without the training labeller."""
    row = [json.loads(line) for line in (corpus / "metadata.jsonl").read_text().splitlines()][song]
    names, config = bundle.names[2], bundle.label_config(bundle.top)
    genre = names.genre_ids(row["genre"], config.max_bow)
    lyrics = lyrics_vocab(config.v3).encode(row["lyrics"])
    total = 12 * bundle.sample_rate
    label = label_from_ids(config, names.artist_id(row["artist"]), genre, lyrics, total, offset)
    return torch.tensor(label.y)


@pytest.mark.parametrize(
    "make_args",
    [
        lambda model, corpus, tmp: ["--model", str(tmp), "--data", str(corpus)],  # not a model folder
        lambda model, corpus, tmp: ["--model", str(tmp / "missing"), "--data", str(corpus)],
        lambda model, corpus, tmp: ["--model", str(model), "--data", str(tmp)],  # no metadata file
        lambda model, corpus, tmp: ["--model", str(model), "--data", str(corpus), "--songs", "2"],
        lambda model, corpus, tmp: ["--model", str(model), "--songs", "0"],
        lambda model, corpus, tmp: ["--model", str(model), "--data", str(corpus), "--max-windows", "0"],
    ],
)
def test_bad_input_exits_2(setup, tmp_path, capsys, make_args):
    model, corpus = setup
    assert main(["evaluate", *make_args(model, corpus, tmp_path)]) == 2
    assert "cocompose evaluate: error:" in capsys.readouterr().err


def test_empty_corpus_exits_2(setup, tmp_path, capsys):
    model, _ = setup
    (tmp_path / "metadata.jsonl").write_text("\n")
    assert main(["evaluate", "--model", str(model), "--data", str(tmp_path)]) == 2
    assert "lists no songs" in capsys.readouterr().err


def test_synthesises_a_held_out_corpus(setup, capsys):
    model, _ = setup
    assert (
        main(["evaluate", "--model", str(model), "--songs", "1", "--seconds", "12", "--max-windows", "1"])
        == 0
    )
    out = capsys.readouterr().out
    assert "seed 90210" in out and "1 songs, 12.0 s" in out
