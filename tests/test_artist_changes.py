"""Songs whose artist changes mid-song (duets): metadata, crops across the change, their labels, and the
prior's loss scored from the change on."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cocompose.cli import main
from engine import checkpoint
from engine.data.crop_labels import CropLabeller
from engine.data.dataset import Crop, CropDataset
from engine.data.metadata import read_metadata
from engine.data.vocabulary import vocabulary_from_data
from engine.prior.labels import LabelConfig, label_from_ids
from tests.training_corpus import write_corpus

pytestmark = pytest.mark.usefixtures("one_thread")

RATE = 22050
CHANGE_S = 1.25  # song 0's artist change
NEW_ARTIST = "Cy Drone"  # plays only after the change


def _with_changes(folder, changes: dict[int, list[dict]]):
    """Rewrite the folder's metadata.jsonl with artist_changes added to the given rows."""
    path = folder / "metadata.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for index, row_changes in changes.items():
        rows[index]["artist_changes"] = row_changes
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


@pytest.fixture(scope="module")
def duets(tmp_path_factory):
    folder = write_corpus(tmp_path_factory.mktemp("duets") / "data", songs=3, seconds=3.0)
    return _with_changes(folder, {0: [{"start_s": CHANGE_S, "artist": NEW_ARTIST}]})


def test_the_metadata_names_who_plays_when(duets, tmp_path):
    duet, solo, _ = read_metadata(duets)
    assert duet.artists == ("Ada Tone", NEW_ARTIST) and solo.artists == ("Bo Noise",)
    assert duet.artist_changes == ((CHANGE_S, NEW_ARTIST),) and solo.artist_changes == ()
    # a CSV carries the same list as JSON text in its column
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    changes = json.dumps([{"start_s": 1.0, "artist": "X"}, {"start_s": 2.0, "artist": "Y"}]).replace(
        '"', '""'
    )
    (csv_dir / "metadata.csv").write_text(f'file,artist,genre,artist_changes\na.wav,W,rock,"{changes}"\n')
    (record,) = read_metadata(csv_dir)
    assert record.artist_changes == ((1.0, "X"), (2.0, "Y")) and record.artists == ("W", "X", "Y")


@pytest.mark.parametrize(
    "changes",
    [
        [{"start_s": 2.0, "artist": "X"}, {"start_s": 1.0, "artist": "Y"}],  # out of order
        [{"start_s": 0.0, "artist": "X"}],  # not after the opening artist
        [{"start_s": 1.0, "artist": " "}],  # nobody
        [{"start": 1.0, "artist": "X"}],  # no start_s
        "not a list",
    ],
)
def test_bad_artist_changes_are_refused_naming_the_line(tmp_path, changes):
    folder = _with_changes(write_corpus(tmp_path / "data", songs=2, seconds=0.5), {1: changes})
    with pytest.raises(ValueError, match=r"metadata\.jsonl:2: artist_changes"):
        read_metadata(folder)


def test_a_new_models_vocabulary_knows_the_artists_who_take_over(duets):
    vocabulary = vocabulary_from_data(read_metadata(duets))
    assert vocabulary.artist_id(NEW_ARTIST) != vocabulary.artist_id("unknown")
    assert vocabulary.n_artists == 4  # unknown, the two opening artists and the one who takes over


def _dataset(folder, change_share: float, start_share: float = 0.0) -> CropDataset:
    return CropDataset(folder, RATE, 8192, change_share=change_share, start_share=start_share)


def test_change_share_moves_duets_crops_across_their_change_and_nothing_else(duets):
    plain, across = _dataset(duets, 0.0), _dataset(duets, 1.0, start_share=0.25)
    change = round(CHANGE_S * RATE)
    moved = 0
    for step in range(40):
        before = _dataset(duets, 0.0, start_share=0.25).plan(step, 8, seed=3)
        after = across.plan(step, 8, seed=3)
        for old, new in zip(before, after, strict=True):
            assert (new.song, new.blend) == (old.song, old.blend)
            if old.song != 0 or old.offset == 0:  # solo songs, and crops at a song's start, stay
                assert new == old
            else:  # the change lies inside the crop, past its first sample
                assert new.offset < change <= new.offset + 8192 - 1
                moved += 1
    assert moved > 20
    # a share of 0 plans the crops it always did
    assert all(plain.plan(s, 8, 3) == CropDataset(duets, RATE, 8192).plan(s, 8, 3) for s in range(10))
    # the crops moved are a share of the duet's crops, drawn from a stream of their own
    half = _dataset(duets, 0.5)
    crossing = [c for s in range(200) for c in half.plan(s, 8, 3) if c.song == 0]
    share = np.mean([c.offset < change <= c.offset + 8191 for c in crossing])
    assert 0.5 < share < 0.75  # half moved, and a few uniform crops hold the change anyway


def test_a_crop_is_labelled_by_the_artist_at_its_end_and_scored_from_the_change(duets):
    records = read_metadata(duets)
    vocabulary = vocabulary_from_data(records)
    dataset = _dataset(duets, 0.0)
    hop, length = 64, 8192
    config = LabelConfig(vocabulary.v3, 1, 0, length)
    labeller = CropLabeller(config, vocabulary, dataset)
    change = round(CHANGE_S * RATE)
    crops = [
        Crop(0, 0, 0.5),  # ends before the change (8191 < 27562)
        Crop(0, change - 8191, 0.5),  # the change is its last sample
        Crop(0, change - 3000, 0.5),  # the change inside
        Crop(0, change, 0.5),  # starts at the change: all the new artist
        Crop(1, change - 3000, 0.5),  # a solo song
    ]
    artist_column = 3  # [total_length, offset, sample_length, artist, ...]
    artists = labeller.labels(crops)[:, artist_column].tolist()
    new, old = vocabulary.artist_id(NEW_ARTIST), vocabulary.artist_id("Ada Tone")
    assert artists == [old, new, new, new, vocabulary.artist_id("Bo Noise")]
    assert labeller.first_scored(crops, hop) == [0, 8191 // hop, 3000 // hop, 0, 0]


@pytest.fixture(scope="module")
def tiny_prior(duets):
    run = duets.parent / "vqvae"
    assert main(["train", "vqvae", "--data", str(duets), "--run", str(run), "--preset", "tiny",
                 "--steps", "1"]) == 0  # fmt: skip
    prior_run = duets.parent / "prior"
    assert main(["train", "prior", "--data", str(duets), "--run", str(prior_run), "--vqvae",
                 str(run / "model"), "--preset", "tiny", "--steps", "1"]) == 0  # fmt: skip
    return run / "model", checkpoint.load_model(prior_run / "model", "prior")


def test_the_priors_loss_from_a_first_scored_code_is_the_mean_of_those_codes_bits(tiny_prior):
    _, prior = tiny_prior
    cfg = prior.config
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, cfg.l_bins, (3, cfg.n_ctx), generator=gen)
    labels = prior_labels(prior, 3)
    with torch.no_grad():
        logits = prior.logits(tokens, labels)
        bits = F.cross_entropy(logits.float().transpose(1, 2), tokens, reduction="none") / np.log(2)
        first = torch.tensor([0, 5, cfg.n_ctx - 1])
        scored = prior.loss(tokens, labels, first_scored=first)["gen_loss"]
        everything = prior.loss(tokens, labels)["gen_loss"]
    expected = torch.stack([bits[i, int(f) :].mean() for i, f in enumerate(first)])
    torch.testing.assert_close(scored, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(scored[0], everything[0])  # from the first code: the plain loss
    assert not torch.isclose(scored[1], everything[1])


def prior_labels(prior, n: int) -> torch.Tensor:
    """Labels of artist 1, genre 1, the window at the start of a song four windows long."""
    cfg = prior.config
    config = LabelConfig(False, cfg.labels.max_bow_genre_size, cfg.n_tokens, cfg.sample_length)
    genres = [1] + [-1] * (cfg.labels.max_bow_genre_size - 1)
    y = label_from_ids(config, 1, genres, [], 4 * cfg.sample_length, 0, None).y
    return torch.tensor([y] * n, dtype=torch.long)


def test_a_prior_trains_across_changes_and_resumes_exactly(duets, tiny_prior, tmp_path):
    vqvae, _ = tiny_prior

    def train(run, *extra):
        return main(["train", "prior", "--data", str(duets), "--run", str(tmp_path / run), "--vqvae",
                     str(vqvae), "--preset", "tiny", "--set", "change_share=1.0", *extra])  # fmt: skip

    assert train("straight", "--steps", "4") == 0 and train("resumed", "--steps", "2") == 0
    assert main(["train", "prior", "--data", str(duets), "--run", str(tmp_path / "resumed"), "--resume",
                 "--steps", "4"]) == 0  # fmt: skip
    straight = checkpoint.load_model(tmp_path / "straight" / "model", "prior").state_dict()
    resumed = checkpoint.load_model(tmp_path / "resumed" / "model", "prior").state_dict()
    assert all(torch.equal(resumed[k], v) for k, v in straight.items())
    assert train("plain", "--steps", "4", "--set", "change_share=0.0") == 0
    plain = checkpoint.load_model(tmp_path / "plain" / "model", "prior").state_dict()
    assert any(not torch.equal(plain[k], v) for k, v in straight.items())


def test_a_training_batch_scores_each_row_from_its_change(duets, tiny_prior):
    """PriorTask's batch carries each row's first scored code, and its loss is the prior's loss scored so."""
    from engine.training.config import TrainConfig
    from engine.training.distributed_setup import Context
    from engine.training.prior_task import PriorTask, label_config

    vqvae_path, prior = tiny_prior
    vqvae = checkpoint.load_model(vqvae_path, "vqvae")
    vocabulary = vocabulary_from_data(read_metadata(duets))
    dataset = CropDataset(duets, vqvae.config.sample_rate, prior.config.sample_length, change_share=1.0)
    labeller = CropLabeller(label_config(prior.config, vocabulary), vocabulary, dataset)
    train = TrainConfig(batch_size=8, seed=3, change_share=1.0)
    task = PriorTask(prior, vqvae, dataset, labeller, vocabulary, train, Context(0, 1, torch.device("cpu")))
    hop = vqvae.hop_lengths[prior.config.level]
    tokens, labels, upper, neutral, inputs, first = task.batch(2)
    assert upper is None and neutral is None and inputs is None
    assert first.tolist() == labeller.first_scored(dataset.plan(2, 8, 3), hop) and first.max() > 0
    with torch.no_grad():
        loss, _ = task.forward(task.module, (tokens, labels, upper, neutral, inputs, first))
        assert torch.isclose(loss, prior.loss(tokens, labels, first_scored=first)["loss"].mean())
        assert not torch.isclose(loss, prior.loss(tokens, labels)["loss"].mean())
