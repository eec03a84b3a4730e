"""Grow a trained VQ-VAE's decoders (wider and deeper) without changing what they decode to.

A decoder stalls when it is too small for its level (the top level of the default model did). A bigger
one trained from scratch would throw away everything the small one learned, so instead the small one is
embedded in the big one, function-preserving growth as in Net2Net (Chen et al., 2016):

- every old unit keeps its weights and reads only old units: the weights from new units into old ones
  start at zero, so the old units compute exactly what they did;
- new units start at the layer's usual random init and read everything;
- the residual blocks a deeper stack adds start as identities (their last convolution is zero), placed
  where the deeper stack's dilation schedule has the dilations the old blocks did not (a stack that
  repeats its schedule gets its new blocks in the first repeats).

The grown model decodes every code to the same audio as before; training then moves the zero weights
(their gradients are not zero: the new units they read are active), so the extra room is used from the
first step. Encoders and codebooks are copied as they are, so every code stays valid for every prior.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from engine.vqvae.config import VQVAEConfig
from engine.vqvae.encdec import DecoderBlock, LevelDecoder
from engine.vqvae.model import VQVAE
from engine.vqvae.resnet import DilatedResnet, ResidualConvBlock

# The decoder sizes a model grows by: (config field, the config's per-level values of it, one of them,
# several of them).
DECODER_SIZES = (
    ("decoder_multipliers", "decoder_sizes", "multiplier", "multipliers"),
    ("decoder_block_multipliers", "decoder_block_sizes", "block multiplier", "block multipliers"),
    ("decoder_block_repeats", "decoder_block_repeat_counts", "block repeat count", "block repeats"),
    ("decoder_repeats", "decoder_repeat_counts", "decoder repeat count", "decoder repeats"),
)


def decoder_size_changes(before: VQVAEConfig, after: VQVAEConfig) -> list[str]:
    """How the decoders' sizes differ, in words ("multipliers [1, 1, 1] to [2, 1, 1]"); [] when not at all."""
    changes = []
    for _, sizes, _, what in DECODER_SIZES:
        old, new = getattr(before, sizes), getattr(after, sizes)
        if old != new:
            changes.append(f"{what} {list(old)} to {list(new)}")
    return changes


def grow_decoders(
    model: VQVAE,
    decoder_multipliers: tuple[int, ...],
    seed: int = 0,
    block_multipliers: tuple[int, ...] | None = None,
    block_repeats: tuple[int, ...] | None = None,
    decoder_repeats: tuple[int, ...] | None = None,
) -> VQVAE:
    """A new VQ-VAE whose level-l decoder has multiplier decoder_multipliers[l] (width and depth), whose
    decoders' level-l blocks are block_multipliers[l] times wider again and run their dilation schedule
    block_repeats[l] times, and whose level-l decoder runs every block's schedule decoder_repeats[l]
    times more (None: as in `model`), decoding every code exactly as `model` does. Multipliers and
    repeats may only grow."""
    old = model.config
    blocks = tuple(block_multipliers) if block_multipliers is not None else old.decoder_block_sizes
    repeats = tuple(block_repeats) if block_repeats is not None else old.decoder_block_repeat_counts
    per_decoder = tuple(decoder_repeats) if decoder_repeats is not None else old.decoder_repeat_counts
    wanted = (tuple(decoder_multipliers), blocks, repeats, per_decoder)
    for (name, sizes, label, _), new in zip(DECODER_SIZES, wanted, strict=True):
        had = getattr(old, sizes)
        if len(new) != old.levels:
            raise ValueError(f"{name} needs one entry per level ({old.levels}), got {new}")
        shrinking = [l for l in range(old.levels) if new[l] < had[l]]
        if shrinking:
            l = shrinking[0]
            raise ValueError(f"decoders can only grow: level {l} would go from {label} {had[l]} to {new[l]}")
    config: VQVAEConfig = replace(
        old,
        decoder_multipliers=tuple(decoder_multipliers),
        decoder_block_multipliers=blocks if blocks != (1,) * old.levels else old.decoder_block_multipliers,
        decoder_block_repeats=repeats if repeats != (1,) * old.levels else old.decoder_block_repeats,
        decoder_repeats=per_decoder if per_decoder != (1,) * old.levels else old.decoder_repeats,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the new units' random init, reproducible
        grown = VQVAE(config).to(next(model.parameters()).device)
    grown.encoders.load_state_dict(model.encoders.state_dict())
    grown.bottleneck.load_state_dict(model.bottleneck.state_dict())
    with torch.no_grad():
        for small, big in zip(model.decoders, grown.decoders, strict=True):
            _embed_decoder(small, big)
    grown.train(model.training)
    return grown


def _embed_decoder(small: LevelDecoder, big: LevelDecoder) -> None:
    for small_block, big_block in zip(small.level_blocks, big.level_blocks, strict=True):
        _embed_block(small_block, big_block)
    _embed_conv(small.out, big.out)


def _embed_block(small: DecoderBlock, big: DecoderBlock) -> None:
    small_steps, big_steps = list(small.model), list(big.model)
    _embed_conv(small_steps[0], big_steps[0])  # the projection from the code embedding
    for small_step, big_step in zip(small_steps[1:], big_steps[1:], strict=True):
        _embed_resnet(small_step[0], big_step[0])
        _embed_conv(small_step[1], big_step[1])  # the upsampling transposed convolution


def _embed_resnet(small: DilatedResnet, big: DilatedResnet) -> None:
    """Old blocks go where the deeper stack applies the same dilations in the same order (its last
    ones: dilations are applied largest first in a decoder); every other block becomes an identity."""
    n_small, n_big = len(small.dilations), len(big.dilations)
    if big.dilations[n_big - n_small :] != small.dilations:
        raise ValueError(
            f"cannot grow a residual stack with dilations {small.dilations} into {big.dilations}: the old "
            "dilations are not the new stack's last ones"
        )
    for index, block in enumerate(big.model):
        if index < n_big - n_small:
            _make_identity(block)
        else:
            _embed_residual_block(small.model[index - (n_big - n_small)], block)


def _embed_residual_block(small: ResidualConvBlock, big: ResidualConvBlock) -> None:
    _embed_conv(small.model[1], big.model[1])
    _embed_conv(small.model[3], big.model[3])


def _make_identity(block: ResidualConvBlock) -> None:
    """x + f(x) with f's last convolution zero is x; its first convolution keeps its random init, so
    the gradient reaching that zero convolution is not zero."""
    last = block.model[3]
    last.weight.zero_()
    last.bias.zero_()


def _embed_conv(small: nn.Conv1d | nn.ConvTranspose1d, big: nn.Conv1d | nn.ConvTranspose1d) -> None:
    """Copy `small` into the first channels of `big`; zero the weights from new inputs to old outputs."""
    if type(small) is not type(big) or small.kernel_size != big.kernel_size or small.stride != big.stride:
        raise ValueError(f"cannot embed {small} in {big}")
    if isinstance(big, nn.ConvTranspose1d):  # weight (in, out, k)
        n_in, n_out = small.weight.shape[0], small.weight.shape[1]
        big.weight[:n_in, :n_out] = small.weight
        big.weight[n_in:, :n_out] = 0
    else:  # Conv1d weight (out, in, k)
        n_out, n_in = small.weight.shape[0], small.weight.shape[1]
        big.weight[:n_out, :n_in] = small.weight
        big.weight[:n_out, n_in:] = 0
    big.bias[:n_out] = small.bias
