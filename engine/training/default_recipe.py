"""The numbers that decide the embedded default model: `Recipe` (every stage's steps, rates and seeds, as
the shipped model was trained) and `RECIPES` (that one, and a tiny one for the test suite). The pipeline
that runs a recipe is engine/training/default_model.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.render_guide import RenderGuide

# The upsamplers flatten each genre's drum sound, dull the highs and make each band flicker from one
# short frame to the next. Drawn toward their previews (48 mel bands, 32 ms frames, within 12 dB),
# generated renders carry their artist and genre more often by every classifier design (docs/MODELS.md);
# frames of 64 ms left the flicker, which the cepstral design hears.
SHIPPED_RENDER_GUIDE = RenderGuide(bands=48, limit_db=12.0, frame_seconds=0.032)


@dataclass(frozen=True)
class DecoderRound:
    """One round of one decoder trained alone (`decoder_levels`), from the round before, in the
    top_decoder, top_level_decoder or bottom_decoder stage: its blocks first grown as the round says
    (`decoder_block_multipliers`, `decoder_block_repeats`, `decoder_repeats`; None: as they are), then
    `steps` steps after the recipe's warm-up, at rate `lr` (None: the preset's) decayed to zero."""

    steps: int
    seed: int
    block_multipliers: tuple[int, ...] | None = None
    block_repeats: tuple[int, ...] | None = None
    lr: float | None = None
    decoder_repeats: tuple[int, ...] | None = None

    def settings(self) -> tuple[str, ...]:
        """This round's `--set`s besides its seed and schedule."""
        grown = (
            ("decoder_block_multipliers", self.block_multipliers),
            ("decoder_block_repeats", self.block_repeats),
            ("decoder_repeats", self.decoder_repeats),
        )
        sets = [f"{name}={','.join(str(m) for m in value)}" for name, value in grown if value is not None]
        return (*sets, *([f"lr={self.lr}"] if self.lr is not None else []))


@dataclass(frozen=True)
class Recipe:
    """Every number that decides the default model. Steps are what the shipped model was trained for."""

    preset: str = "default"
    songs: int = 720
    seconds: float = 30.0
    corpus_seed: int = 0
    sample_rate: int = 16000
    vqvae_steps: int = 3500
    prior_steps: int = 23355  # where the run was stopped (the learning rate is flat after warm-up)
    upsampler_steps: int = 3000
    # Then the VQ-VAE's decoders alone, on every song, with the rate decayed linearly to zero after a
    # warm-up: better audio from the same codes (0: no such stage, the VQ-VAE ships as trained).
    decoder_steps: int = 5000
    decoder_warmup: int = 100
    decoder_seed: int = 1  # its own crops, not a replay of the VQ-VAE run's
    # Then, optionally, the decoders grown (engine/vqvae/grow.py: they start out decoding exactly as
    # before) and trained alone again, rate decayed to zero after a warm-up. None: no such stage.
    # The bottom decoder, twice as wide and deep, 2000 steps: bottom-level spectral convergence -19.60 ->
    # -20.25 dB (the others, trained along at their size, -12.65 -> -12.75 and -7.40 -> -7.49).
    grow_multipliers: tuple[int, ...] | None = (2, 1, 1)
    grow_steps: int = 2000
    grow_warmup: int = 100
    grow_seed: int = 2
    # Then, optionally, the top decoder alone in rounds, each from the one before: first its low-rate
    # blocks widened (`decoder_block_multipliers`: the blocks that undo the middle and top levels'
    # downsampling run at 125 to 1000 frames a second here, so they cost previews little; top level
    # -7.49 -> -7.79 dB), then deepened by running their dilations twice (`decoder_block_repeats`: its
    # reach 31 -> 55 codes, so streamed previews still start fast; -8.07 dB), then trained on at half the
    # rate (-8.23 dB). The middle decoder's level-1 block grows too (the sizes are per block, in every
    # decoder) but, untrained, decodes exactly as before. (): no such stage.
    top_decoder_rounds: tuple[DecoderRound, ...] = (
        DecoderRound(4000, seed=3, block_multipliers=(1, 2, 2)),
        DecoderRound(4000, seed=5, block_repeats=(1, 2, 2)),
        DecoderRound(4000, seed=6, lr=3e-4),
    )
    top_decoder_warmup: int = 100
    # Then, optionally, the top prior fine-tuned with a share of its crops at the songs' first sample
    # (`start_share`), rate decayed to zero after a warm-up. Composing from nothing starts there, with only
    # the labels to give the genre's tempo and metre, which uniform crops almost never show. 0: no stage.
    starts_steps: int = 3000
    starts_share: float = 0.5
    starts_lr: float = 3e-4
    starts_warmup: int = 100
    starts_seed: int = 8
    # Then, optionally, a beat clock (engine/prior/beat_clock.py) given to the top prior, which is fine-tuned
    # with every song's tempo and metre; `clock_input_noise` of the codes it reads are replaced at random
    # so that it learns to keep to the clock and its labels rather than to its own drifting codes: the
    # generated genre 41.7% -> 72.2% on the card (50.0% with the clock alone). 0: no such stage.
    clock_steps: int = 4000
    clock_beat_bins: int = 32
    clock_bar_beats: int = 8
    clock_input_noise: float = 0.25
    clock_share: float = 0.5  # of crops at songs' starts, as in the starts stage
    clock_lr: float = 3e-4
    clock_warmup: int = 100
    clock_seed: int = 31
    # Then, optionally, each upsampler fine-tuned on every song of the corpus (the first stage reads
    # `upsampler_songs`) in rounds of these many steps, each from the round before with its own warm-up
    # and its rate decayed to zero, so that more training extends a finished round instead of redoing it.
    # Round k (from 0) of level L is seeded `upsampler_tune_seed + L + 10 k`. (): the upsamplers ship as
    # trained.
    upsampler_tune_rounds: tuple[int, ...] = (8000, 12000, 6000) + (8000,) * 8
    upsampler_tune_lr: float = 6e-4
    upsampler_tune_warmup: int = 100
    upsampler_tune_seed: int = 11
    # Then, optionally, the top level retrained whole (`retrain_levels`: its encoder, codebook and decoder;
    # the other levels keep every weight) from the VQ-VAE as the stages above left it, with a log-mel term
    # beside its usual losses, so that its codes keep more of the highs' movement: fitted on real clips,
    # classifiers then name the artist of top-level reconstructions 74.0% of the time instead of 29.9%,
    # the genre 90.6% instead of 62.0% (docs/MODELS.md). 0: no such stage, nor the two that follow.
    top_level_steps: int = 6000
    top_level_log_mel: float = 0.3
    top_level_lr: float = 3e-4
    top_level_warmup: int = 100
    top_level_seed: int = 7
    # New top codes: the top prior (as the clock stage left it, with its clock's settings) and the middle
    # upsampler (its last fine-tuning round) are re-keyed to them (`--rekey`, engine/training/rekey.py) and
    # fine-tuned on every song, rate decayed to zero after a warm-up.
    prior_rekey_steps: int = 16000
    prior_rekey_lr: float = 6e-4
    prior_rekey_warmup: int = 200
    prior_rekey_seed: int = 43
    # Then, optionally, the top prior (as the stages above left it, with its clock's settings) fine-tuned
    # on a corpus of duets (`cocompose synth --duets 1`: each song's part passes to another artist at a
    # bar inside its body), `duets_change_share` of the crops across a change, labelled with the new
    # artist and scored from the change on (`change_share`), the others uniform or at songs' starts: the
    # corpus above has one artist per song, so the prior never heard an artist take over, which the app's
    # swap asks of it. Tried on the shipped model with the values below and 3000 steps (2026-12-07): the
    # card's classifiers read as well or better (artist 100%, change 100%), but classifiers of cepstral
    # statistics fitted on real clips named the artist after a change no more often (67.4% over four
    # seeds, against 70.8%) and that of previews from nothing less often (77.1% against 84.7%), so it does
    # not ship (docs/MODEL-HISTORY.md). 0: no such stage.
    duets_steps: int = 0
    duet_songs: int = 240
    duet_seconds: float = 30.0  # as the corpus's songs (duets need at least synth's MIN_DUET_SECONDS)
    duet_corpus_seed: int = 31337  # apart from every held-out seed the model card is measured on
    duets_change_share: float = 0.5
    duets_start_share: float = 0.25
    duets_lr: float = 3e-4
    duets_warmup: int = 100
    duets_seed: int = 47
    # Then the top prior (as the stages above left it, with its clock's settings) fine-tuned on more
    # songs: the corpus and `more_songs` songs of another seed (WORK/more), every artist and genre pair as
    # often in both. After 46 000 steps over the corpus's 720 songs the prior had begun to learn those
    # songs rather than songs like them (8000 more steps on them: held-out bits 6.22 -> 6.34, and every
    # preview check fell); more songs at the same size lowered the bits (6.13 after 8000 steps at 3e-4)
    # but did not play the new artist after a change any better (docs/MODELS.md). 0: no such stage.
    more_steps: int = 10000
    more_songs: int = 2160
    more_seconds: float = 30.0
    more_corpus_seed: int = 8080  # apart from the corpus's and every held-out seed the card is measured on
    more_lr: float = 4e-4
    more_warmup: int = 100
    more_seed: int = 63
    # The stage deepens the prior first (`prior_depth`, engine/prior/deepen.py: layers added on top, each
    # starting as an identity), so that more songs meet more capacity. 0: the prior keeps its depth.
    # Nine layers (from six): held-out bits 6.22 -> 6.09, and every classifier design names the new
    # artist after a change at least 75% of the time on every seed measured (cepstral statistics 79.2%
    # pooled, from 70.8%). Twelve did as well (81.9%) but made all four previews of a 10 s take playable
    # in 5.3 s on the 2-core CPU, past the app's 5 s; nine take 4.3 s (docs/MODELS.md).
    more_depth: int = 9
    upsampler1_rekey_steps: int = 16000
    upsampler1_rekey_lr: float = 6e-4
    upsampler1_rekey_warmup: int = 100
    upsampler1_rekey_seed: int = 101
    # Then, optionally, each upsampler as the stages above left it grown to `upsampler_deep_depth` layers
    # (`prior_depth`, engine/prior/deepen.py: the new ones on top, each starting as an identity) and
    # fine-tuned on every song of the corpus, level L for `upsampler{L}_deep_steps` steps, seeded
    # `upsampler_deep_seed + L`: renders lose a quarter of the artist and half of the genre that the top
    # codes carry (docs/MODELS.md), and more rounds at four layers did not win them back. Tried
    # (2026-12-07) at 8 layers with 10000 steps each: held-out bits 3.52 -> 3.50 and 3.95 -> 3.92, the
    # renders' labels no better (clips moved both ways) and a render twice as slow; not shipped. 0: no
    # such stage.
    upsampler1_deep_steps: int = 0
    upsampler0_deep_steps: int = 0
    upsampler_deep_depth: int = 8
    upsampler_deep_lr: float = 6e-4
    upsampler_deep_warmup: int = 100
    upsampler_deep_seed: int = 120
    # Then, optionally, the retrained top level's decoder alone (`decoders_only`: its codes kept, so the
    # re-keyed models stay valid) in rounds, each from the one before, with a ten times stronger log-mel
    # term: fitted on real clips, classifiers then name the artist of previews 88.9% of the time instead
    # of 76.4% (83.3% after the first round, docs/MODELS.md); the second round, at half the rate, carries
    # the first on. (): no such stage.
    top_level_decoder_rounds: tuple[DecoderRound, ...] = (
        DecoderRound(4000, seed=17, lr=3e-4),
        DecoderRound(4000, seed=19, lr=1.5e-4),
    )
    top_level_decoder_log_mel: float = 3.0
    top_level_decoder_warmup: int = 100
    # Then, optionally, the bottom decoder alone in rounds, each from the one before, with the reference's
    # objective (`log_mel=0`; its codes kept): grown in the grow stage, it had trained only 2000 steps at
    # its size, and only on the older corpus. Bottom level -20.25 -> -20.54 dB on the card's songs, 0.3 to
    # 0.4 dB better on every held-out set measured; the second round, at half the rate, -20.61 dB; the
    # third, deepened (`decoder_repeats`: its one block runs its dilations twice, the other decoders as
    # they were), 0.14 dB more on 64 fresh songs, the first set to pass there (docs/MODELS.md); the fourth,
    # at half the rate, 0.06 to 0.08 dB more on every set; the fifth, at that rate again, 0.04 to 0.06 dB
    # more on every set. (): no such stage.
    bottom_decoder_rounds: tuple[DecoderRound, ...] = (
        DecoderRound(2000, seed=29, lr=3e-4),
        DecoderRound(1500, seed=31, lr=1.5e-4),
        DecoderRound(2000, seed=37, lr=3e-4, decoder_repeats=(2, 1, 1)),
        DecoderRound(1500, seed=41, lr=1.5e-4),
        DecoderRound(1500, seed=43, lr=1.5e-4),
    )
    bottom_decoder_warmup: int = 100
    batch_size: int | None = None  # None: the preset's
    # Not training: the label guidance the model is measured and sampled with (bundle.json's "guidance",
    # the app's default strength). Chosen on held-out songs of another seed than the card's.
    guidance: float = 2.0
    # Not training either: the share of each upsampler window left for the next window to sample
    # (bundle.json's "upsample_lookahead", engine.sampling.drivers.plan_level), as the renders were measured.
    upsample_lookahead: float = 0.0625
    # Nor this: how each render's band envelope is drawn toward its preview's (bundle.json's "render_guide",
    # engine/render_guide.py), as the renders were measured. None: renders as the bottom decoder makes them.
    render_guide: RenderGuide | None = SHIPPED_RENDER_GUIDE
    # Stages that train on the corpus's first N songs only (None: all of them). Songs are synthesised
    # one by one from (seed, index), so the first N songs of a larger corpus are exactly the N-song corpus.
    # The VQ-VAE and the upsamplers were trained when the corpus had 180 songs; the top prior, which
    # overfitted 180 songs (held-out bits rising while the training loss fell), reads all 720.
    vqvae_songs: int | None = 180
    upsampler_songs: int | None = 180

    @property
    def grows(self) -> bool:
        """Whether the recipe has a grow stage."""
        return self.grow_multipliers is not None and self.grow_steps > 0

    @property
    def trains_top_decoder(self) -> bool:
        """Whether the recipe trains the top decoder alone in rounds (the top_decoder stage)."""
        return len(self.top_decoder_rounds) > 0

    @property
    def top_decoder_block_multipliers(self) -> tuple[int, ...] | None:
        """The top decoder's block multipliers after every round (None: no round widens it)."""
        return _last_set(r.block_multipliers for r in self.top_decoder_rounds)

    @property
    def top_decoder_block_repeats(self) -> tuple[int, ...] | None:
        """The top decoder's block repeats after every round (None: no round deepens it)."""
        return _last_set(r.block_repeats for r in self.top_decoder_rounds)

    @property
    def bottom_decoder_repeats(self) -> tuple[int, ...] | None:
        """Every decoder's repeat counts after the bottom decoder's rounds (None: no round deepens it)."""
        return _last_set(r.decoder_repeats for r in self.bottom_decoder_rounds)

    @property
    def tunes_starts(self) -> bool:
        """Whether the recipe fine-tunes the top prior on songs' starts (the starts stage)."""
        return self.starts_steps > 0

    @property
    def clocks_prior(self) -> bool:
        """Whether the recipe gives the top prior a beat clock (the clock stage)."""
        return self.clock_steps > 0

    @property
    def shipped_prior_steps(self) -> int:
        """The step the shipped top prior's checkpoint records: its last stage's."""
        if self.tunes_duets:
            return self.duets_steps
        if self.tunes_more:
            return self.more_steps
        if self.retrains_top_level:
            return self.prior_rekey_steps
        if self.clocks_prior:
            return self.clock_steps
        return self.starts_steps if self.tunes_starts else self.prior_steps

    @property
    def tunes_duets(self) -> bool:
        """Whether the recipe fine-tunes the top prior on duets (the duets stage)."""
        return self.duets_steps > 0

    @property
    def tunes_more(self) -> bool:
        """Whether the recipe fine-tunes the top prior on the corpus and more songs (the prior_more stage)."""
        return self.more_steps > 0

    @property
    def retrains_top_level(self) -> bool:
        """Whether the recipe retrains the top level (the top_level stage) and re-keys the models that read
        its codes (prior_rekey, upsampler1_rekey)."""
        return self.top_level_steps > 0

    @property
    def tunes_top_level_decoder(self) -> bool:
        """Whether the recipe trains the retrained top level's decoder alone (the top_level_decoder stage)."""
        return self.retrains_top_level and len(self.top_level_decoder_rounds) > 0

    @property
    def tunes_bottom_decoder(self) -> bool:
        """Whether the recipe trains the bottom decoder alone at the end (the bottom_decoder stage)."""
        return len(self.bottom_decoder_rounds) > 0

    @property
    def tunes_upsamplers(self) -> bool:
        """Whether the recipe fine-tunes both upsamplers on every song (the upsampler*_tune stages)."""
        return len(self.upsampler_tune_rounds) > 0

    def deep_upsampler_steps(self, level: int) -> int:
        """Steps of the level-`level` upsampler's deepened fine-tune (the upsampler{level}_deep stage)."""
        return (self.upsampler0_deep_steps, self.upsampler1_deep_steps)[level]

    def shipped_upsampler_steps(self, level: int) -> int:
        """The step the shipped level-`level` upsampler's checkpoint records: its last stage's."""
        if (deep := self.deep_upsampler_steps(level)) > 0:
            return deep
        if level == 1 and self.retrains_top_level:
            return self.upsampler1_rekey_steps
        return self.upsampler_tune_rounds[-1] if self.tunes_upsamplers else self.upsampler_steps

    def songs_for(self, stage: str) -> int | None:
        """How many of the corpus's first songs a stage trains on; None: all of them (the decoder
        fine-tune and the top prior)."""
        subsets = {"vqvae": self.vqvae_songs, "upsampler1": self.upsampler_songs,
                   "upsampler0": self.upsampler_songs}  # fmt: skip
        subset = subsets.get(stage)
        return None if subset is None or subset >= self.songs else subset


RECIPES = {
    "default": Recipe(),
    # The same pipeline in seconds, for the test suite: tiny models, a handful of short songs.
    "tiny": Recipe(
        preset="tiny",
        songs=4,
        seconds=12.0,
        sample_rate=22050,
        vqvae_steps=2,
        prior_steps=2,
        upsampler_steps=2,
        decoder_steps=2,
        decoder_warmup=1,
        grow_steps=2,
        grow_warmup=1,
        top_decoder_rounds=(DecoderRound(2, seed=3, block_multipliers=(1, 2, 2)),),
        top_decoder_warmup=1,
        starts_steps=2,
        starts_warmup=1,
        clock_steps=2,
        clock_beat_bins=8,
        clock_bar_beats=4,
        clock_input_noise=0.1,
        clock_warmup=1,
        upsampler_tune_rounds=(2, 2),
        upsampler_tune_warmup=1,
        top_level_steps=0,  # the stage's own test turns it on: with it, the stages above ship nothing
        top_level_warmup=1,
        prior_rekey_steps=2,
        prior_rekey_warmup=1,
        upsampler1_rekey_steps=2,
        upsampler1_rekey_warmup=1,
        duets_steps=0,  # as top_level_steps: the stage's own test turns it on
        more_steps=0,  # likewise
        more_depth=0,
        more_songs=2,
        more_seconds=12.0,
        more_warmup=1,
        duet_songs=2,
        duet_seconds=19.0,
        duets_warmup=1,
        top_level_decoder_rounds=(DecoderRound(2, seed=17), DecoderRound(2, seed=19, lr=1e-4)),
        top_level_decoder_warmup=1,
        bottom_decoder_rounds=(),  # as top_level_steps: the stage's own tests turn it on
        bottom_decoder_warmup=1,
        batch_size=2,
        guidance=1.5,
        upsample_lookahead=0.125,
        render_guide=RenderGuide(bands=12, limit_db=9.0),
        vqvae_songs=None,
        upsampler_songs=None,
    ),
}


def _last_set(sizes) -> tuple[int, ...] | None:
    """The last of `sizes` that is not None (growth only ever goes up, so the last one set stands)."""
    return next((size for size in reversed(tuple(sizes)) if size is not None), None)
