"""Growing a trained VQ-VAE's decoders: the grown model decodes and encodes exactly as before, then
trains its new room (engine/vqvae/grow.py, `train vqvae --from M --set decoder_multipliers=...`)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from cocompose.cli import main
from engine import checkpoint
from engine.vqvae import VQVAE
from engine.vqvae.config import TINY, VQVAEConfig
from engine.vqvae.encdec import decoder_context_frames
from engine.vqvae.grow import grow_decoders
from tests.training_corpus import write_corpus

pytestmark = pytest.mark.usefixtures("one_thread")


def _random_model(**changes) -> VQVAE:
    torch.manual_seed(3)
    model = VQVAE(VQVAEConfig(**{**TINY.to_dict(), **changes})).eval()
    # Non-zero biases everywhere, so a bias copied to the wrong channel would show.
    with torch.no_grad():
        for p in model.decoders.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _codes(model: VQVAE, frames: int = 40) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    top = model.hop_lengths[-1]
    return [
        torch.randint(0, model.config.l_bins, (2, frames * top // hop), generator=g)
        for hop in model.hop_lengths
    ]


def _saved_loaded_and_decoding_as(small: VQVAE, big: VQVAE, tmp_path) -> VQVAE:
    """`big` saved and loaded again; both decode every level's codes as `small` does."""
    checkpoint.save_model(tmp_path / "grown", big, "vqvae")
    loaded = checkpoint.load_model(tmp_path / "grown", "vqvae").eval()
    for level, codes in enumerate(_codes(small)):
        before = small.decode(codes, level)
        for grown in (big, loaded):
            torch.testing.assert_close(
                grown.decode(codes, level), before, rtol=0, atol=1e-6 * float(before.abs().max())
            )
    return loaded


@pytest.mark.parametrize("multipliers", [(2, 1, 1), (1, 1, 3), (2, 2, 2)])
def test_grown_decoders_decode_every_code_as_before(multipliers):
    small = _random_model()
    big = grow_decoders(small, multipliers).eval()
    assert sum(p.numel() for p in big.decoders.parameters()) > sum(
        p.numel() for p in small.decoders.parameters()
    )
    for level, codes in enumerate(_codes(small)):
        before, after = small.decode(codes, level), big.decode(codes, level)
        torch.testing.assert_close(after, before, rtol=0, atol=1e-6 * float(before.abs().max()))
    audio = 0.3 * torch.randn(2, 4096, generator=torch.Generator().manual_seed(1))
    for a, b in zip(small.encode(audio), big.encode(audio), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("blocks", [(1, 2, 2), (1, 1, 3)])
def test_decoders_grown_in_their_low_rate_blocks_alone_decode_every_code_as_before(blocks):
    small = _random_model()
    big = grow_decoders(small, (1, 1, 1), block_multipliers=blocks).eval()
    assert big.config.decoder_block_multipliers == blocks
    for level, codes in enumerate(_codes(small)):
        before, after = small.decode(codes, level), big.decode(codes, level)
        torch.testing.assert_close(after, before, rtol=0, atol=1e-6 * float(before.abs().max()))
        for block, (old, new) in enumerate(
            zip(small.decoders[level].level_blocks, big.decoders[level].level_blocks, strict=True)
        ):
            sizes = [sum(p.numel() for p in b.parameters()) for b in (old, new)]
            assert (sizes[1] > sizes[0]) == (blocks[block] > 1), (level, block, sizes)
    # What a block grows into: its multiplier's width, at the same depth, so that no decoder reaches
    # further (a streamed preview waits for as many codes as its decoder reaches).
    top_block = big.decoders[2].level_blocks[2]
    resnet = list(top_block.model)[1][0]
    assert resnet.model[0].model[1].in_channels == TINY.width * blocks[2]
    assert len(resnet.dilations) == TINY.depth
    for old_decoder, new_decoder in zip(small.decoders, big.decoders, strict=True):
        assert decoder_context_frames(new_decoder) == decoder_context_frames(old_decoder)


def test_decoders_deepened_by_repeating_their_dilations_decode_every_code_as_before(tmp_path):
    small = _random_model()
    big = grow_decoders(small, (1, 1, 1), block_multipliers=(1, 1, 2), block_repeats=(1, 2, 3)).eval()
    loaded = _saved_loaded_and_decoding_as(small, big, tmp_path)
    assert loaded.config.decoder_block_repeats == (1, 2, 3)
    # Block l's stacks run the old schedule repeats[l] times: reach grows in proportion, not threefold
    # per added residual block as a deeper tripling stack's would.
    schedule = list(small.decoders[2].level_blocks[2].model)[1][0].dilations
    for block, repeats in enumerate((1, 2, 3)):
        resnet = list(big.decoders[2].level_blocks[block].model)[1][0]
        assert resnet.dilations == schedule * repeats
    tripled = grow_decoders(small, (1, 1, 3)).eval()
    assert (
        decoder_context_frames(small.decoders[2])
        < decoder_context_frames(big.decoders[2])
        < decoder_context_frames(tripled.decoders[2])
    )
    assert [decoder_context_frames(d) for d in big.decoders[:1]] == [
        decoder_context_frames(d) for d in small.decoders[:1]
    ]
    with pytest.raises(ValueError, match="level 2 would go from block repeat count 3 to 1"):
        grow_decoders(big, (1, 1, 1), block_repeats=(1, 2, 1))


def test_one_decoder_deepened_alone_decodes_as_before_and_leaves_the_others_as_they_were(tmp_path):
    small = grow_decoders(_random_model(), (1, 1, 1), block_repeats=(1, 2, 2)).eval()
    big = grow_decoders(small, (1, 1, 1), decoder_repeats=(2, 1, 1)).eval()
    loaded = _saved_loaded_and_decoding_as(small, big, tmp_path)
    assert loaded.config.decoder_repeats == (2, 1, 1)
    assert loaded.config.decoder_block_repeats == (1, 2, 2)
    # The bottom decoder's one block runs its schedule twice; every other decoder, its audio-rate
    # block included (the same block index), keeps its blocks' schedules and its reach.
    schedule = list(small.decoders[0].level_blocks[0].model)[1][0].dilations
    assert list(big.decoders[0].level_blocks[0].model)[1][0].dilations == schedule * 2
    for level in (1, 2):
        for old_block, new_block in zip(
            small.decoders[level].level_blocks, big.decoders[level].level_blocks, strict=True
        ):
            assert list(new_block.model)[1][0].dilations == list(old_block.model)[1][0].dilations
        assert decoder_context_frames(big.decoders[level]) == decoder_context_frames(small.decoders[level])
        assert sum(p.numel() for p in big.decoders[level].parameters()) == sum(
            p.numel() for p in small.decoders[level].parameters()
        )
    assert decoder_context_frames(big.decoders[0]) > decoder_context_frames(small.decoders[0])
    with pytest.raises(ValueError, match="level 0 would go from decoder repeat count 2 to 1"):
        grow_decoders(big, (1, 1, 1), decoder_repeats=(1, 1, 1))


def test_a_stack_with_a_dilation_cycle_grows_as_well():
    small = _random_model(dilation_cycle=2, depth=2)
    big = grow_decoders(small, (2, 1, 2)).eval()
    for level, codes in enumerate(_codes(small)):
        torch.testing.assert_close(big.decode(codes, level), small.decode(codes, level), rtol=0, atol=1e-6)


def test_decoders_only_grow():
    grown = grow_decoders(_random_model(), (2, 1, 1))
    with pytest.raises(ValueError, match="decoders can only grow: level 0 would go from multiplier 2 to 1"):
        grow_decoders(grown, (1, 1, 1))
    with pytest.raises(ValueError, match="one entry per level"):
        grow_decoders(grown, (2, 1))
    blocks = grow_decoders(_random_model(), (1, 1, 1), block_multipliers=(1, 1, 2))
    with pytest.raises(ValueError, match="level 2 would go from block multiplier 2 to 1"):
        grow_decoders(blocks, (1, 1, 1), block_multipliers=(1, 1, 1))


def test_a_grown_model_saves_and_loads_with_its_decoder_sizes(tmp_path):
    grown = grow_decoders(_random_model(), (1, 2, 1)).eval()
    checkpoint.save_model(tmp_path / "grown", grown, "vqvae")
    loaded = checkpoint.load_model(tmp_path / "grown", "vqvae").eval()
    assert loaded.config.decoder_multipliers == (1, 2, 1)
    codes = _codes(grown)[1]
    assert torch.equal(loaded.decode(codes, 1), grown.decode(codes, 1))


def _train(corpus, run_dir, *extra: str) -> int:
    return main(["train", "vqvae", "--data", str(corpus), "--run", str(run_dir), "--preset", "tiny", *extra])


def test_train_grows_the_decoders_of_a_loaded_model_keeps_its_codes_and_trains_the_new_room(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "data")
    assert _train(corpus, tmp_path / "base", "--steps", "2") == 0
    base = tmp_path / "base" / "model"
    grow = ("--from", str(base), "--set", "decoders_only=true", "--set", "decoder_multipliers=2,1,2")
    assert _train(corpus, tmp_path / "grown", *grow, "--steps", "3") == 0
    assert "grew the decoders from multipliers [1, 1, 1] to [2, 1, 2]" in capsys.readouterr().out
    old, new = (
        checkpoint.load_model(base, "vqvae"),
        checkpoint.load_model(tmp_path / "grown" / "model", "vqvae"),
    )
    assert new.config.decoder_multipliers == (2, 1, 2)
    audio = 0.3 * torch.randn(2, 4096, generator=torch.Generator().manual_seed(0))
    for a, b in zip(old.encode(audio), new.encode(audio), strict=True):
        assert torch.equal(a, b)
    # The weights that start at zero (new units into old ones, added blocks' last convolutions) moved.
    weights = load_file(str(tmp_path / "grown" / "model.safetensors"))
    added_block = weights["decoders.0.level_blocks.0.model.1.0.model.0.model.3.weight"]
    assert added_block.abs().sum() > 0
    old_width = old.config.decoder_block_width(0, 0)
    into_old_units = weights["decoders.0.level_blocks.0.model.1.0.model.3.model.1.weight"][
        :old_width, old_width:
    ]
    assert into_old_units.abs().sum() > 0
    assert json.loads((tmp_path / "grown" / "run.json").read_text())["model"]["decoder_multipliers"] == [
        2,
        1,
        2,
    ]


@pytest.mark.parametrize(
    "setting, said",
    [("decoder_block_multipliers", "block multipliers"), ("decoder_block_repeats", "block repeats")],
)
def test_train_grows_the_top_decoders_low_rate_blocks_and_trains_that_decoder_alone(
    tmp_path, capsys, setting, said
):
    corpus = write_corpus(tmp_path / "data")
    assert _train(corpus, tmp_path / "base", "--steps", "2") == 0
    base = tmp_path / "base" / "model"
    grow = ("--from", str(base), "--set", "decoders_only=true", "--set", "decoder_levels=2",
            "--set", f"{setting}=1,2,2")  # fmt: skip
    assert _train(corpus, tmp_path / "grown", *grow, "--steps", "3") == 0
    assert f"grew the decoders from {said} [1, 1, 1] to [1, 2, 2]: they decode" in capsys.readouterr().out
    old = checkpoint.load_model(base, "vqvae").eval()
    new = checkpoint.load_model(tmp_path / "grown" / "model", "vqvae").eval()
    assert getattr(new.config, setting) == (1, 2, 2)
    codes = _codes(old)
    # The middle decoder grew too (its level-1 block) but did not train: it decodes exactly as before.
    torch.testing.assert_close(new.decode(codes[1], 1), old.decode(codes[1], 1), rtol=0, atol=1e-6)
    torch.testing.assert_close(new.decode(codes[0], 0), old.decode(codes[0], 0), rtol=0, atol=0)
    assert not torch.allclose(new.decode(codes[2], 2), old.decode(codes[2], 2), atol=1e-4)


def test_train_deepens_the_bottom_decoder_alone_and_trains_it_alone(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "data")
    assert _train(corpus, tmp_path / "base", "--steps", "2") == 0
    base = tmp_path / "base" / "model"
    grow = ("--from", str(base), "--set", "decoders_only=true", "--set", "decoder_levels=0",
            "--set", "decoder_repeats=2,1,1")  # fmt: skip
    assert _train(corpus, tmp_path / "grown", *grow, "--steps", "3") == 0
    said = capsys.readouterr().out
    assert "grew the decoders from decoder repeats [1, 1, 1] to [2, 1, 1]: they decode" in said
    old = checkpoint.load_model(base, "vqvae").eval()
    new = checkpoint.load_model(tmp_path / "grown" / "model", "vqvae").eval()
    assert new.config.decoder_repeats == (2, 1, 1)
    codes = _codes(old)
    for level in (1, 2):
        torch.testing.assert_close(
            new.decode(codes[level], level), old.decode(codes[level], level), rtol=0, atol=0
        )
    assert not torch.allclose(new.decode(codes[0], 0), old.decode(codes[0], 0), atol=1e-4)


def test_a_grown_fine_tune_resumes_exactly(tmp_path):
    corpus = write_corpus(tmp_path / "data")
    assert _train(corpus, tmp_path / "base", "--steps", "2") == 0
    grow = ("--from", str(tmp_path / "base" / "model"), "--set", "decoders_only=true",
            "--set", "decoder_multipliers=1,2,1")  # fmt: skip
    assert _train(corpus, tmp_path / "straight", *grow, "--steps", "4") == 0
    assert _train(corpus, tmp_path / "resumed", *grow, "--steps", "2") == 0
    assert main(["train", "vqvae", "--data", str(corpus), "--run", str(tmp_path / "resumed"), "--resume",
                 "--steps", "4"]) == 0  # fmt: skip
    straight, resumed = (load_file(str(tmp_path / r / "model.safetensors")) for r in ("straight", "resumed"))
    assert straight.keys() == resumed.keys()
    for key, value in straight.items():
        assert torch.equal(resumed[key], value), key
