"""Hyper-parameters of the hierarchical music VQ-VAE (paper section 3, appendix B.1, Table 4).

One frozen dataclass describes the whole model; modules receive plain numbers from `engine.vqvae.model`
and never see this object. Derived sizes (hop lengths, per-level widths) are properties so that they can
never disagree with the fields they come from.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

# The per-level fields that multiply a size: one entry per level, each at least 1.
_SIZE_MULTIPLIER_FIELDS = (
    "multipliers",
    "decoder_multipliers",
    "decoder_block_multipliers",
    "decoder_block_repeats",
    "decoder_repeats",
)


@dataclass(frozen=True)
class VQVAEConfig:
    sample_rate: int = 44100
    levels: int = 3
    # Level l's encoder block downsamples by strides_t[l] ** downs_t[l]; level L chains blocks 0..L.
    downs_t: tuple[int, ...] = (3, 2, 2)
    strides_t: tuple[int, ...] = (2, 2, 2)
    emb_width: int = 64
    l_bins: int = 2048
    # Per-level width/depth multipliers: the bottom level gets a wider, deeper stack.
    multipliers: tuple[int, ...] = (2, 1, 1)
    # The decoders' own multipliers when they differ from the encoders' (None: the same). A trained
    # model's decoders can be grown this way without touching a code (engine/vqvae/grow.py).
    decoder_multipliers: tuple[int, ...] | None = None
    # Inside every decoder, a further width multiplier for the block that undoes level l's downsampling
    # (None: 1 each). A block costs in proportion to the rate it runs at, so the blocks of the upper
    # levels (hundreds of frames a second, not thousands) can widen for little: the top decoder gains room
    # while previews, which it decodes, stay fast. Width only: a deeper stack's dilations grow threefold
    # per residual block, and at those rates would reach seconds of codes away, which a preview streamed
    # while it is sampled would have to wait for (decoder_block_repeats deepens without that).
    decoder_block_multipliers: tuple[int, ...] | None = None
    # Inside every decoder, how many times the residual stacks of the block that undoes level l's
    # downsampling run their dilation schedule (None: once each). This deepens a block while its reach
    # grows only in proportion (two repeats of 1, 3, 9 reach 26 frames, where a stack of six tripling
    # dilations would reach 364), so a streamed preview still waits only a fraction of a second.
    decoder_block_repeats: tuple[int, ...] | None = None
    # Per decoder (level l's), a further repeat count for all of its blocks' schedules (None: 1 each).
    # Unlike the per-block fields above, this deepens one decoder and leaves the others as they are: the
    # bottom decoder, which only renders run, can deepen its audio-rate block while the top decoder's
    # block at that rate, half of every preview's decode, stays as it is.
    decoder_repeats: tuple[int, ...] | None = None
    width: int = 32
    depth: int = 4
    m_conv: float = 1.0
    dilation_growth_rate: int = 3
    dilation_cycle: int | None = None
    reverse_decoder_dilation: bool = True

    # Bottleneck training.
    mu: float = 0.99
    commit: float = 0.02
    revival_threshold: float = 1.0

    # Loss weights (the reference's lmix reconstruction + spectral terms).
    spectral: float = 0.0
    multispectral: float = 1.0
    lmix_l1: float = 0.0
    lmix_l2: float = 1.0
    lmix_linf: float = 0.02
    linf_k: int = 2048
    multispec_n_fft: tuple[int, ...] = (2048, 1024, 512)
    multispec_hop_length: tuple[int, ...] = (240, 120, 50)
    multispec_window_size: tuple[int, ...] = (1200, 600, 240)
    # Not in the reference: an L1 loss on log mel energies (`losses.log_mel_loss`), 0 to leave it out.
    # The terms above weigh each band by its energy, and a top level trained on them alone keeps the
    # loud low end and drops the quiet highs where this corpus's drums and timbres live (MODELS.md).
    log_mel: float = 0.0
    # Not in the reference either: an L1 loss on how much each mel band's log energy moves within a crop
    # (`losses.log_mel_dynamics_loss`), 0 to leave it out. Frame-by-frame losses make a decoder's audio
    # steadier than the music it decodes; this asks for the real amount of movement.
    log_mel_dynamics: float = 0.0

    # Length of a training crop in samples (also sets the expected code usage when fine-tuning).
    sample_length: int = 1048576

    def __post_init__(self) -> None:
        for name in ("downs_t", "strides_t", *_SIZE_MULTIPLIER_FIELDS):
            value = getattr(self, name)
            if value is not None and len(value) != self.levels:
                raise ValueError(f"VQVAEConfig.{name} needs one entry per level ({self.levels})")
        for name in _SIZE_MULTIPLIER_FIELDS:
            value = getattr(self, name)
            if value is not None and min(value) < 1:
                raise ValueError(f"VQVAEConfig.{name} must be at least 1 at every level, got {list(value)}")
        if not (
            len(self.multispec_n_fft) == len(self.multispec_hop_length) == len(self.multispec_window_size)
        ):
            raise ValueError("VQVAEConfig multispectral n_fft/hop/window lists must have equal lengths")
        for name in ("log_mel", "log_mel_dynamics"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"VQVAEConfig.{name} is a loss weight (0 or more), got {getattr(self, name)}"
                )
        if self.l_bins < 2 or self.emb_width < 1:
            raise ValueError("VQVAEConfig needs l_bins >= 2 and emb_width >= 1")

    @property
    def downsamples(self) -> tuple[int, ...]:
        """Downsampling factor contributed by each level's block."""
        return tuple(s**d for s, d in zip(self.strides_t, self.downs_t, strict=True))

    @property
    def hop_lengths(self) -> tuple[int, ...]:
        """Audio samples per code at each level (8, 32, 128 in the official preset)."""
        return tuple(math.prod(self.downsamples[: level + 1]) for level in range(self.levels))

    def level_width(self, level: int) -> int:
        return self.width * self.multipliers[level]

    def level_depth(self, level: int) -> int:
        return self.depth * self.multipliers[level]

    @property
    def decoder_sizes(self) -> tuple[int, ...]:
        """The multipliers the decoders are built with."""
        return tuple(self.decoder_multipliers or self.multipliers)

    def decoder_multiplier(self, level: int) -> int:
        return self.decoder_sizes[level]

    @property
    def decoder_block_sizes(self) -> tuple[int, ...]:
        """The further multiplier of each level's block inside every decoder."""
        return tuple(self.decoder_block_multipliers or (1,) * self.levels)

    def decoder_block_width(self, level: int, block: int) -> int:
        """Channels of block `block` (0 = the one nearest the audio) in level `level`'s decoder."""
        return self.width * self.decoder_multiplier(level) * self.decoder_block_sizes[block]

    @property
    def decoder_block_repeat_counts(self) -> tuple[int, ...]:
        """How many times each level's block inside every decoder runs its dilation schedule."""
        return tuple(self.decoder_block_repeats or (1,) * self.levels)

    @property
    def decoder_repeat_counts(self) -> tuple[int, ...]:
        """The further repeat count of each level's decoder, for all of its blocks."""
        return tuple(self.decoder_repeats or (1,) * self.levels)

    def decoder_block_repeats_of(self, level: int) -> tuple[int, ...]:
        """How many times each block (0 = the one nearest the audio) of level `level`'s decoder runs its
        dilation schedule."""
        scale = self.decoder_repeat_counts[level]
        return tuple(r * scale for r in self.decoder_block_repeat_counts[: level + 1])

    def decoder_depth(self, level: int) -> int:
        """Residual blocks per step in every block of level `level`'s decoder."""
        return self.depth * self.decoder_multiplier(level)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> VQVAEConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown VQ-VAE config fields: {', '.join(unknown)}")
        tuples = {k: tuple(v) for k, v in data.items() if isinstance(v, list)}
        return cls(**{**data, **tuples})

    def with_overrides(self, **overrides) -> VQVAEConfig:
        return replace(self, **overrides)


OFFICIAL = VQVAEConfig()

# A model small enough to train for a few hundred steps on a laptop CPU inside the test suite.
TINY = VQVAEConfig(
    sample_rate=22050,
    downs_t=(3, 2, 2),
    width=16,
    depth=2,
    emb_width=16,
    l_bins=64,
    multipliers=(1, 1, 1),
    linf_k=256,
    sample_length=8192,
)

# The fields that weigh the training objective rather than shape the network: a fine-tune of a trained
# model may change these (say, to add the spectral term) and the checkpoint still loads.
OBJECTIVE_FIELDS = frozenset(
    {"commit", "spectral", "multispectral", "lmix_l1", "lmix_l2", "lmix_linf", "linf_k",
     "multispec_n_fft", "multispec_hop_length", "multispec_window_size", "log_mel",
     "log_mel_dynamics"}
)  # fmt: skip

# The fields that size the decoders alone: they never change a code, and a fine-tune may grow them.
DECODER_SIZE_FIELDS = frozenset(
    {"decoder_multipliers", "decoder_block_multipliers", "decoder_block_repeats", "decoder_repeats"}
)

PRESETS: dict[str, VQVAEConfig] = {"official": OFFICIAL, "tiny": TINY}
