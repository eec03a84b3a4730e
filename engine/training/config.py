"""What a training run is set up with: frozen configs for the optimisation and the prior's shape, and
the named presets `cocompose train --preset` picks from (tiny for tests, small for the default model,
official for the published sizes).

The VQ-VAE's shape is `engine.vqvae.VQVAEConfig`. A prior's shape is `PriorHparams`, a typed subset of
the reference's hps keys (the builders turn it into a `PriorConfig` together with the VQ-VAE and the
data's label vocabulary, which fix the codebook size, hop lengths and embedding rows).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from engine.prior.presets import official_hps
from engine.vqvae.config import OFFICIAL, TINY, VQVAEConfig


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 10000
    batch_size: int = 8  # global: split across processes under torchrun
    # The paper trains with lr 3e-4 at large batches; each preset picks a rate for its batch and model.
    lr: float = 3e-4
    warmup_steps: int = 100  # linear warm-up from 0, then constant
    # Optional linear decay to zero over `decay_steps` steps from step `decay_start` (the reference's
    # lr_use_linear_decay, lr_start_linear_decay and lr_decay); None keeps the rate flat after warm-up.
    # A run trained at a flat rate ends on a noisy point; annealing it settles into a lower loss.
    decay_start: int | None = None
    decay_steps: int = 0
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    clip: float = 1.0  # gradient norm clip
    save_every: int = 1000
    log_every: int = 10
    sample_every: int = 1000  # audio samples to TensorBoard (VQ-VAE)
    seed: int = 0
    # Priors: encode every song once and slice crops from the codes (engine/data/code_cache.py) instead of
    # running the VQ-VAE on every batch. Much faster on a CPU; gives up the random stereo downmix.
    cache_codes: bool = False
    # VQ-VAE only: train the decoders alone. The encoders and codebooks stay exactly as loaded, so every
    # code, and every prior trained on those codes, stays valid while the audio the codes decode to
    # improves (a decoder fine-tune, as latent-diffusion VAEs are fine-tuned).
    decoders_only: bool = False
    # With decoders_only: the levels whose decoders train (None: every level). The others do not run at
    # all, so a fine-tune of the top decoder does not pay for the bottom one, most of a step's cost.
    decoder_levels: tuple[int, ...] | None = None
    # VQ-VAE fine-tunes (--from), not decoders_only: the levels whose encoders, codebooks and decoders
    # train (None: every level). The levels are separate autoencoders, so the others keep every code and
    # every sample they decode to, and so do the priors that read them: a retrained top level leaves the
    # middle and bottom levels and the bottom upsampler valid; the top prior and the upsampler conditioned
    # on the top level have to learn its new codes.
    retrain_levels: tuple[int, ...] | None = None
    # The share of crops that begin at the song's first sample (`CropDataset.plan`; 0: uniform crops).
    # For a top prior: composing from nothing starts there, and only the labels give the genre's tempo
    # and metre; with uniform crops the default model's prior played every genre at much the same tempo.
    start_share: float = 0.0
    # Priors on data with mid-song artist changes (metadata `artist_changes`, `cocompose synth --duets`):
    # the share of such songs' crops placed across a change (`CropDataset.plan`), labelled with the new
    # artist and scored only from the change on, so the prior learns to follow a changed label at once,
    # as the app's artist swap asks it to. A uniform crop holds a change only now and then.
    change_share: float = 0.0
    # Priors: the share of crops trained with the neutral start token that label guidance contrasts
    # with (the mean artist and genre), so that guidance contrasts with a stream the prior has learned,
    # as classifier-free guidance trains its unconditional model (Ho and Salimans, 2022). 0: never.
    label_dropout: float = 0.0
    # Priors: the share of input codes replaced by random ones (the codes to predict stay the song's), so
    # the prior cannot lean on the song so far alone and learns to listen to its labels and clock as
    # well: sampling feeds it its own codes, which drift from any real song. 0: the song as it is.
    input_noise: float = 0.0
    # VQ-VAE decoders-only fine-tunes: train the decoders against a spectrogram critic as well
    # (engine/vqvae/adversarial.py), the weights of its hinge loss and of feature matching; 0 and 0: no
    # critic. The L2/spectral losses alone make the top level's audio dull; a critic asks for real texture.
    adversarial: float = 0.0
    feature_matching: float = 0.0
    critic_width: int = 16  # channels of the critic's layers

    @property
    def uses_critic(self) -> bool:
        return self.adversarial > 0 or self.feature_matching > 0

    def __post_init__(self) -> None:
        positive = ("steps", "batch_size", "save_every", "log_every", "sample_every")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.lr <= 0 or self.warmup_steps < 0 or self.clip <= 0:
            raise ValueError("lr and clip must be positive and warmup_steps non-negative")
        if self.decay_start is not None and (self.decay_start < 0 or self.decay_steps <= 0):
            raise ValueError("a linear decay needs decay_start >= 0 and decay_steps > 0")
        if not 0.0 <= self.start_share <= 1.0:
            raise ValueError(f"start_share is a share of crops, between 0 and 1; got {self.start_share}")
        if not 0.0 <= self.change_share <= 1.0:
            raise ValueError(f"change_share is a share of crops, between 0 and 1; got {self.change_share}")
        if not 0.0 <= self.label_dropout <= 1.0:
            raise ValueError(f"label_dropout is a share of crops, between 0 and 1; got {self.label_dropout}")
        if not 0.0 <= self.input_noise < 1.0:
            raise ValueError(f"input_noise is a share of codes, from 0 to below 1; got {self.input_noise}")
        if self.adversarial < 0 or self.feature_matching < 0 or self.critic_width <= 0:
            raise ValueError(
                "adversarial and feature_matching are loss weights (0 or more); critic_width is 1 or more"
            )
        if self.uses_critic and not self.decoders_only:
            raise ValueError(
                "a critic (adversarial, feature_matching) trains decoders alone, whose codes stay as they "
                "are; set decoders_only=true as well"
            )
        if self.retrain_levels is not None and self.decoders_only:
            raise ValueError(
                "retrain_levels retrains whole levels (codes included); a decoders-only fine-tune picks "
                "its decoders with decoder_levels instead"
            )
        if self.decoder_levels is not None and not self.decoders_only:
            raise ValueError(
                "decoder_levels picks the decoders that a decoders-only fine-tune trains; "
                "set decoders_only=true as well"
            )

    def lr_at(self, step: int) -> float:
        """Learning rate of optimisation step `step` (0-based)."""
        if self.warmup_steps and step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.decay_start is not None and step >= self.decay_start:
            return self.lr * max(0.0, 1.0 - (step - self.decay_start) / self.decay_steps)
        return self.lr


@dataclass(frozen=True)
class PriorHparams:
    """The reference hps of a prior that a training run may set (see FACTS section 2)."""

    n_ctx: int = 1024
    prior_width: int = 512
    prior_depth: int = 12
    heads: int = 4
    attn_order: int = 6
    blocks: int | None = 16
    m_attn: float = 0.25
    m_mlp: float = 1.0
    t_bins: int = 64
    max_bow_genre_size: int = 1
    labels_v3: bool = False
    min_duration: float | None = 1.0
    max_duration: float | None = 600.0
    use_tokens: bool = True
    n_tokens: int = 128
    n_vocab: int = 80
    single_enc_dec: bool = False
    merged_decoder: bool = False
    prime_width: int = 128
    prime_depth: int = 4
    prime_heads: int = 1
    prime_attn_order: int = 0
    prime_blocks: int | None = None
    prime_loss_fraction: float = 0.4
    cond_width: int = 128
    cond_depth: int = 4
    cond_dilation_growth_rate: int = 3
    cond_dilation_cycle: int | None = 8
    cond_res_scale: bool = False
    cond_c_res: int = 1
    # A top prior's beat clock (ours; `engine.prior.beat_clock`): beat-phase bins (0: none) and the most
    # beats per bar it knows. Given with --from, a trained prior gains a clock that starts silent.
    beat_bins: int = 0
    bar_beats: int = 8

    def to_hps(self, level: int, n_genres: int, n_artists: int) -> dict:
        """Reference-style hps for `engine.prior.builders.prior_config`."""
        return {**asdict(self), "level": level, "labels": True, "y_bins": (n_genres, n_artists)}


def _official_prior(name: str) -> PriorHparams:
    hps = official_hps(name)
    known = {f.name for f in fields(PriorHparams)}
    return PriorHparams(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in hps.items() if k in known})


# Upsampler presets drop the lyric fields (upsamplers take none) and the timing range (unused).
_UPSAMPLER_TINY = PriorHparams(
    n_ctx=64, prior_width=32, prior_depth=3, heads=1, attn_order=2, blocks=4, t_bins=16, use_tokens=False,
    n_tokens=0, prime_loss_fraction=0.0, cond_width=16, cond_depth=2, cond_dilation_cycle=2,
    min_duration=None, max_duration=None,
)  # fmt: skip
_PRIOR_TINY = PriorHparams(
    n_ctx=64, prior_width=32, prior_depth=4, heads=1, attn_order=6, blocks=4, t_bins=16, n_tokens=16,
    prime_width=16, prime_depth=1, min_duration=1.0, max_duration=600.0,
)  # fmt: skip

VQVAE_SMALL = VQVAEConfig(sample_rate=22050, width=32, depth=4, l_bins=1024, sample_length=65536)

# The embedded default model (assets/default-model): sized so that it trains in hours on a 2-core CPU and
# samples faster than real time on one. 16 kHz keeps the synthetic voices and instruments (all below
# 8 kHz) while cutting every cost by a quarter against 22.05 kHz; one-second crops are enough for the
# spectral losses, and equal multipliers keep the bottom level from dominating the training time.
VQVAE_DEFAULT = VQVAEConfig(
    sample_rate=16000, width=32, depth=3, multipliers=(1, 1, 1), emb_width=64, l_bins=512,
    sample_length=16384,
)  # fmt: skip
# Top prior: 512 tokens are 4.1 s at 16 kHz / hop 128; longer songs are sampled in windows. No lyrics:
# the corpus's sung vowels are too quiet a signal for a model this size to learn in CPU hours.
_PRIOR_DEFAULT = PriorHparams(
    n_ctx=512, prior_width=192, prior_depth=6, heads=2, attn_order=2, blocks=16, t_bins=64,
    use_tokens=False, n_tokens=0, prime_loss_fraction=0.0, min_duration=1.0, max_duration=120.0,
)  # fmt: skip
_UPSAMPLER_DEFAULT = PriorHparams(
    n_ctx=512, prior_width=128, prior_depth=4, heads=2, attn_order=2, blocks=16, use_tokens=False,
    n_tokens=0, prime_loss_fraction=0.0, cond_width=64, cond_depth=3, cond_dilation_cycle=4,
    min_duration=None, max_duration=None,
)  # fmt: skip

MODEL_PRESETS: dict[str, dict[str, object]] = {
    "vqvae": {"tiny": TINY, "default": VQVAE_DEFAULT, "small": VQVAE_SMALL, "official": OFFICIAL},
    "prior": {
        "tiny": _PRIOR_TINY,
        "default": _PRIOR_DEFAULT,
        "small": PriorHparams(),
        "official": _official_prior("prior_5b_lyrics"),
    },
    "upsampler": {
        "tiny": _UPSAMPLER_TINY,
        "default": _UPSAMPLER_DEFAULT,
        "small": PriorHparams(
            n_ctx=2048,
            prior_width=384,
            prior_depth=12,
            heads=1,
            attn_order=2,
            blocks=32,
            use_tokens=False,
            n_tokens=0,
            prime_loss_fraction=0.0,
            cond_width=256,
            cond_depth=8,
            min_duration=None,
            max_duration=None,
        ),
        "official": _official_prior("upsampler_level_0"),
    },
}

TRAIN_PRESETS: dict[str, TrainConfig] = {
    "tiny": TrainConfig(steps=20, batch_size=2, lr=1e-3, warmup_steps=2, save_every=10, log_every=1),
    # Small models at small batches take a larger rate than the paper's; saved often, as CPU runs are long.
    "default": TrainConfig(
        steps=6000, batch_size=8, lr=6e-4, warmup_steps=200, save_every=250, log_every=25, cache_codes=True
    ),
    "small": TrainConfig(steps=100_000, batch_size=8, lr=3e-4, warmup_steps=1000),
    # The paper's rates; its batches were hundreds of crops over many GPUs.
    "official": TrainConfig(steps=500_000, batch_size=64, lr=3e-4, warmup_steps=1000),
}
PRESET_NAMES = ("tiny", "default", "small", "official")
# The official priors were trained at lr 1.5e-4 (the VQ-VAE at 3e-4).
OFFICIAL_PRIOR_LR = 1.5e-4


def presets_for(kind: str, name: str) -> tuple[object, TrainConfig]:
    """(model config, train config) of preset `name` for model kind vqvae | prior | upsampler."""
    if kind not in MODEL_PRESETS:
        raise ValueError(f"unknown model kind {kind!r}; choose vqvae, prior or upsampler")
    if name not in MODEL_PRESETS[kind]:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}")
    train = TRAIN_PRESETS[name]
    if name == "official" and kind != "vqvae":
        train = TrainConfig(**{**asdict(train), "lr": OFFICIAL_PRIOR_LR})
    return MODEL_PRESETS[kind][name], train
