"""`cocompose train-default`: the embedded default model, end to end, from nothing.

The recipe (engine/training/default_recipe.py) is the whole story of the shipped model: synthesize the corpus,
train the VQ-VAE, fine-tune its decoders alone (its codes stay the same), optionally grow them and train them
again (all of them, then the top one's low-rate blocks and that decoder alone), train the top prior (then,
optionally, fine-tune it on songs' starts and give it a beat clock) and both upsamplers on its codes (then,
optionally, fine-tune each on every song), optionally retrain the top level with a log-mel term (new top
codes, so the top prior and the middle upsampler are then re-keyed to them and fine-tuned; then its decoder
alone), optionally train the bottom decoder alone once more, optionally fine-tune the top prior on the
corpus and more songs of another seed, then on a corpus of duets (songs whose artist changes mid-song),
optionally grow each upsampler and fine-tune it once more, and put the four into one model folder with a
bundle.json.
Each stage is an ordinary `cocompose train` run in WORK/runs/, so a stopped pipeline picks up where it was
(a finished stage is skipped, an unfinished one resumes exactly), and an ML engineer can rerun or tune any
stage by hand with the command the pipeline prints.

The decoder and prior stages depend only on the VQ-VAE stage (the decoder fine-tune leaves every code as it
was), so on a machine with spare cores they can run at the same time (`--only decoders`, `--only prior`,
`--only upsampler1`, `--only upsampler0` in four processes); `starts` follows `prior`, `clock` follows
`starts`, `grow` follows `decoders`, `top_decoder` (its rounds one after another) follows `grow`, and
`upsampler1_tune` / `upsampler0_tune` follow their upsamplers; `top_level` follows `top_decoder`, and
`top_level_decoder` (which keeps its codes), `prior_rekey` and `upsampler1_rekey` follow it (the last two
also `clock` / `upsampler1_tune`); `bottom_decoder` (which keeps its codes too) follows `top_level_decoder`;
`prior_more` follows `prior_rekey`, and `duets` follows both; `upsampler1_deep` follows `upsampler1_rekey`
and `upsampler0_deep` follows `upsampler0_tune`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from engine import checkpoint
from engine.bundle import BundleManifest
from engine.training.default_corpora import corpus_key, first_songs_metadata, joined_metadata, write_songs
from engine.training.default_recipe import DecoderRound, Recipe
from engine.training.entry import TrainRequest, train

STAGES = ("corpus", "vqvae", "decoders", "grow", "top_decoder", "top_level", "top_level_decoder",
          "bottom_decoder", "prior", "starts", "clock", "prior_rekey", "prior_more",
          "duets", "upsampler1", "upsampler0",
          "upsampler1_tune", "upsampler0_tune", "upsampler1_rekey", "upsampler1_deep", "upsampler0_deep",
          "bundle")  # fmt: skip
MODEL_NAME = "cocompose-default"
TOP_NAME = "default"


def _decayed(seed: int, warmup: int, steps: int, *extra: str) -> tuple[str, ...]:
    """`--set`s of a fine-tune: `extra`, then its own crops, a warm-up, and the rate decayed to zero."""
    return (*extra, f"seed={seed}", f"warmup_steps={warmup}", f"decay_start={warmup}",
            f"decay_steps={steps - warmup}")  # fmt: skip


def _decoders_only(seed: int, warmup: int, steps: int, *extra: str) -> tuple[str, ...]:
    """`--set`s of a decoders-alone fine-tune."""
    return _decayed(seed, warmup, steps, "decoders_only=true", *extra)


def _round_run(stage: str, number: int) -> str:
    """The run of round `number` (from 1) of a stage trained in rounds (top_decoder, top_level_decoder,
    bottom_decoder)."""
    return f"{stage}{number}"


def _tune_run(level: int, round_: int) -> str:
    """The run (and stage name) of round `round_` (from 0) of the level-`level` upsampler's fine-tune."""
    return f"upsampler{level}_tune{round_ + 1}"


def _trained_step(run_dir: Path) -> int:
    pointer = run_dir / "latest.json"
    return json.loads(pointer.read_text())["step"] if pointer.is_file() else 0


class DefaultModelPipeline:
    def __init__(
        self, work: Path, recipe: Recipe, device: str | None = None, say: Callable[[str], None] = print
    ):
        self.work, self.recipe, self.device, self.say = Path(work), recipe, device, say
        self.corpus = self.work / "corpus"
        self.duets = self.work / "duets"
        self.more = self.work / "more"
        self.runs = self.work / "runs"
        self.model_dir = self.work / "model"

    def run(self, only: str | None = None) -> int:
        """Run every stage (or one); returns 0, or the exit code of an interrupted training stage."""
        if only is not None and only not in STAGES:
            raise ValueError(f"unknown stage {only!r}; choose one of {', '.join(STAGES)}")
        for stage in STAGES:
            if only is not None and stage != only:
                continue
            code = getattr(self, f"_stage_{stage}")()
            if code:
                return code
        return 0

    # -- stages -----------------------------------------------------------------------------------
    def _stage_corpus(self) -> int:
        write_songs("corpus", self.corpus, "songs", self._corpus_key(), self.say)
        return 0

    def _stage_vqvae(self) -> int:
        return self._train("vqvae", "vqvae", self.recipe.vqvae_steps)

    def _stage_decoders(self) -> int:
        r = self.recipe
        if r.decoder_steps <= 0:
            self.say("decoders: none in this recipe; the VQ-VAE ships as trained")
            return 0
        settings = _decoders_only(r.decoder_seed, r.decoder_warmup, r.decoder_steps)
        return self._train(
            "decoders", "vqvae", r.decoder_steps, settings=settings, base=self._vqvae_run("decoders")
        )

    def _stage_grow(self) -> int:
        r = self.recipe
        if not r.grows:
            self.say("grow: none in this recipe; the decoders ship at their trained size")
            return 0
        multipliers = ",".join(str(m) for m in r.grow_multipliers)
        settings = _decoders_only(
            r.grow_seed, r.grow_warmup, r.grow_steps, f"decoder_multipliers={multipliers}"
        )
        return self._train("grow", "vqvae", r.grow_steps, settings=settings, base=self._decoders_run("grow"))

    def _stage_top_decoder(self) -> int:
        """Every round of the top decoder alone, in runs top_decoder1, 2, ..."""
        r = self.recipe
        if not r.trains_top_decoder:
            self.say("top_decoder: none in this recipe; the top decoder ships as the grow stage left it")
            return 0
        base = self._grown_run("top_decoder")
        return self._decoder_rounds("top_decoder", r.top_decoder_rounds, r.top_decoder_warmup, base)

    def _decoder_rounds(
        self,
        stage: str,
        rounds: tuple[DecoderRound, ...],
        warmup: int,
        base: Path,
        *extra: str,
        level: int | None = None,
    ) -> int:
        """Train `rounds` of one decoder alone (level `level`, None: the top one; `extra`: --sets of every
        round) in runs `stage`1, 2, ..., each from the one before, the first from `base`."""
        if level is None:
            level = checkpoint.read_settings(base / "model")["config"]["levels"] - 1
        for number, round_ in enumerate(rounds, start=1):
            settings = _decoders_only(round_.seed, warmup, round_.steps, *round_.settings(),
                                      f"decoder_levels={level}", *extra)  # fmt: skip
            run = _round_run(stage, number)
            code = self._train(run, "vqvae", round_.steps, settings=settings, base=base)
            if code:
                return code
            base = self._finished_run(run, round_.steps, f"round {number} of {stage}", "the next round")
        return 0

    def _stage_top_level(self) -> int:
        r = self.recipe
        if not r.retrains_top_level:
            self.say("top_level: none in this recipe; the top level ships with the VQ-VAE stage's codes")
            return 0
        base = self._decoded_run("top_level")
        top_level = checkpoint.read_settings(base / "model")["config"]["levels"] - 1
        settings = _decayed(r.top_level_seed, r.top_level_warmup, r.top_level_steps,
                            f"retrain_levels={top_level}", f"log_mel={r.top_level_log_mel}",
                            f"lr={r.top_level_lr}")  # fmt: skip
        return self._train("top_level", "vqvae", r.top_level_steps, settings=settings, base=base)

    def _stage_top_level_decoder(self) -> int:
        """Every round of the retrained top level's decoder alone, in runs top_level_decoder1, 2, ..."""
        r = self.recipe
        if not r.tunes_top_level_decoder:
            self.say("top_level_decoder: none in this recipe; the retrained top level ships as trained")
            return 0
        base = self._finished_run(
            "top_level", r.top_level_steps, "the retrained top level", "top_level_decoder"
        )
        rounds, warmup = r.top_level_decoder_rounds, r.top_level_decoder_warmup
        log_mel = f"log_mel={r.top_level_decoder_log_mel}"
        return self._decoder_rounds("top_level_decoder", rounds, warmup, base, log_mel)

    def _stage_bottom_decoder(self) -> int:
        """Every round of the bottom decoder alone, in runs bottom_decoder1, 2, ..., with the reference's
        objective (no log-mel term, whatever the stages before used)."""
        r = self.recipe
        if not r.tunes_bottom_decoder:
            self.say(
                "bottom_decoder: none in this recipe; the bottom decoder ships as the stages before left it"
            )
            return 0
        rounds, warmup = r.bottom_decoder_rounds, r.bottom_decoder_warmup
        base = self._top_tuned_vqvae_run("bottom_decoder")
        return self._decoder_rounds("bottom_decoder", rounds, warmup, base, "log_mel=0", level=0)

    def _stage_prior(self) -> int:
        return self._train("prior", "prior", self.recipe.prior_steps)

    def _stage_starts(self) -> int:
        r = self.recipe
        if not r.tunes_starts:
            self.say("starts: none in this recipe; the top prior ships as trained")
            return 0
        settings = _decayed(r.starts_seed, r.starts_warmup, r.starts_steps, f"start_share={r.starts_share}",
                            f"lr={r.starts_lr}")  # fmt: skip
        base = self._finished_run("prior", r.prior_steps, "the trained top prior", "starts")
        return self._train("starts", "prior", r.starts_steps, settings=settings, base=base)

    def _stage_clock(self) -> int:
        r = self.recipe
        if not r.clocks_prior:
            self.say("clock: none in this recipe; the top prior ships without a beat clock")
            return 0
        settings = _decayed(r.clock_seed, r.clock_warmup, r.clock_steps, f"beat_bins={r.clock_beat_bins}",
                            f"bar_beats={r.clock_bar_beats}", f"input_noise={r.clock_input_noise}",
                            f"start_share={r.clock_share}", f"lr={r.clock_lr}")  # fmt: skip
        return self._train(
            "clock", "prior", r.clock_steps, settings=settings, base=self._tuned_prior_run("clock")
        )

    def _stage_prior_rekey(self) -> int:
        r = self.recipe
        if not r.retrains_top_level:
            self.say("prior_rekey: none in this recipe; the top prior ships as its last stage left it")
            return 0
        starts = (f"start_share={r.clock_share}",) if r.clocks_prior else ()
        settings = _decayed(r.prior_rekey_seed, r.prior_rekey_warmup, r.prior_rekey_steps,
                            *self._clock_settings(), *starts, f"lr={r.prior_rekey_lr}")  # fmt: skip
        return self._rekeyed("prior_rekey", "prior", r.prior_rekey_steps, settings, self._clocked_prior_run)

    def _stage_duets(self) -> int:
        """The top prior fine-tuned on a corpus of duets (WORK/duets), written first if missing."""
        r = self.recipe
        if not r.tunes_duets:
            self.say("duets: none in this recipe; the top prior ships as its stages before left it")
            return 0
        base = self._more_prior_run("duets")
        self._write_duets()
        settings = _decayed(r.duets_seed, r.duets_warmup, r.duets_steps, *self._clock_settings(),
                            f"start_share={r.duets_start_share}", f"change_share={r.duets_change_share}",
                            f"lr={r.duets_lr}")  # fmt: skip
        return self._train("duets", "prior", r.duets_steps, settings=settings, base=base,
                           vqvae=self._top_codes_vqvae("duets"), data_dir=self.duets)  # fmt: skip

    def _write_duets(self) -> None:
        r = self.recipe
        key = corpus_key(r.duet_songs, r.duet_seconds, r.duet_corpus_seed, r.sample_rate, duets=1.0)
        write_songs("duets", self.duets, "duets", key, self.say)

    def _stage_prior_more(self) -> int:
        """The top prior fine-tuned on the corpus and more songs of another seed (WORK/more, written first
        if missing), read through one metadata file of both."""
        r = self.recipe
        if not r.tunes_more:
            self.say("prior_more: none in this recipe; the top prior ships as its stages before left it")
            return 0
        base = self._rekeyed_prior_run("prior_more")
        self._write_more()
        starts = (f"start_share={r.clock_share}",) if r.clocks_prior else ()
        deeper = (f"prior_depth={r.more_depth}",) if r.more_depth else ()
        settings = _decayed(r.more_seed, r.more_warmup, r.more_steps, *self._clock_settings(), *starts,
                            *deeper, f"lr={r.more_lr}")  # fmt: skip
        return self._train("prior_more", "prior", r.more_steps, settings=settings, base=base,
                           vqvae=self._top_codes_vqvae("prior_more"), data_dir=self.work,
                           metadata=joined_metadata(self.work, (self.corpus, self.more),
                                                    "metadata-corpus-and-more.jsonl"))  # fmt: skip

    def _write_more(self) -> None:
        r = self.recipe
        key = corpus_key(r.more_songs, r.more_seconds, r.more_corpus_seed, r.sample_rate)
        write_songs("prior_more", self.more, "more songs", key, self.say)

    def _clock_settings(self) -> tuple[str, ...]:
        """The clock stage's settings, kept by the top prior's later fine-tunes (none without a clock)."""
        r = self.recipe
        if not r.clocks_prior:
            return ()
        return (f"beat_bins={r.clock_beat_bins}", f"bar_beats={r.clock_bar_beats}",
                f"input_noise={r.clock_input_noise}")  # fmt: skip

    def _stage_upsampler1_rekey(self) -> int:
        r = self.recipe
        if not r.retrains_top_level:
            self.say(
                "upsampler1_rekey: none in this recipe; the level-1 upsampler ships as its last stage left it"
            )
            return 0
        settings = _decayed(r.upsampler1_rekey_seed, r.upsampler1_rekey_warmup, r.upsampler1_rekey_steps,
                            f"lr={r.upsampler1_rekey_lr}")  # fmt: skip
        return self._rekeyed(
            "upsampler1_rekey", "upsampler", r.upsampler1_rekey_steps, settings,
            lambda needed_by: self._tuned_upsampler_run(1, needed_by), level=1,
        )  # fmt: skip

    def _stage_upsampler1_deep(self) -> int:
        return self._deepen_upsampler(1)

    def _stage_upsampler0_deep(self) -> int:
        return self._deepen_upsampler(0)

    def _deepen_upsampler(self, level: int) -> int:
        """The level-`level` upsampler as its stages before left it, grown to the recipe's depth and
        fine-tuned on every song; it reads the codes of the VQ-VAE the shipped models read."""
        r, stage = self.recipe, f"upsampler{level}_deep"
        steps = r.deep_upsampler_steps(level)
        if steps <= 0:
            self.say(f"{stage}: none in this recipe; the level-{level} upsampler ships as it was")
            return 0
        settings = _decayed(r.upsampler_deep_seed + level, r.upsampler_deep_warmup, steps,
                            f"prior_depth={r.upsampler_deep_depth}", f"lr={r.upsampler_deep_lr}")  # fmt: skip
        vqvae = self._top_codes_vqvae(stage) if level == 1 else None
        return self._train(stage, "upsampler", steps, level=level, settings=settings,
                           base=self._undeepened_upsampler_run(level, stage), vqvae=vqvae)  # fmt: skip

    def _rekeyed(
        self, stage: str, kind: str, steps: int, settings, base_run, level: int | None = None
    ) -> int:
        """Fine-tune the model of `base_run(stage)` on the retrained top level's codes, re-keyed to them."""
        top_level = self._finished_run(
            "top_level", self.recipe.top_level_steps, "the retrained top level", stage
        )
        old = self._vqvae_run(stage) / "model"  # whose codes the base model read
        return self._train(stage, kind, steps, level=level, settings=settings, base=base_run(stage),
                           vqvae=top_level / "model", rekey_from=old)  # fmt: skip

    def _stage_upsampler1(self) -> int:
        return self._train("upsampler1", "upsampler", self.recipe.upsampler_steps, level=1)

    def _stage_upsampler0(self) -> int:
        return self._train("upsampler0", "upsampler", self.recipe.upsampler_steps, level=0)

    def _stage_upsampler1_tune(self) -> int:
        return self._tune_upsampler(1)

    def _stage_upsampler0_tune(self) -> int:
        return self._tune_upsampler(0)

    def _tune_upsampler(self, level: int) -> int:
        """Every fine-tuning round of the level-`level` upsampler, in runs upsampler{level}_tune1, 2, ..."""
        r, name = self.recipe, f"upsampler{level}_tune"
        if not r.tunes_upsamplers:
            self.say(f"{name}: none in this recipe; the level-{level} upsampler ships as trained")
            return 0
        what = f"the trained level-{level} upsampler"
        base = self._finished_run(f"upsampler{level}", r.upsampler_steps, what, name)
        for round_, steps in enumerate(r.upsampler_tune_rounds):
            seed = r.upsampler_tune_seed + level + 10 * round_
            settings = _decayed(seed, r.upsampler_tune_warmup, steps, f"lr={r.upsampler_tune_lr}")
            stage = _tune_run(level, round_)
            code = self._train(stage, "upsampler", steps, level=level, settings=settings, base=base)
            if code:
                return code
            base = self._finished_run(stage, steps, f"round {round_ + 1} of the fine-tune", "the next round")
        return 0

    def _stage_bundle(self) -> int:
        """Copy the four trained models into WORK/model with a bundle.json naming their roles."""
        staging = self.model_dir.with_name(f".{self.model_dir.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        final_runs = {"vqvae": self._final_vqvae_run, f"prior_{TOP_NAME}": self._final_prior_run,
                      "upsampler_level_1": lambda: self._final_upsampler_run(1),
                      "upsampler_level_0": lambda: self._final_upsampler_run(0)}  # fmt: skip
        for stem, final_run in final_runs.items():
            source = final_run() / "model"
            checkpoint.load_model(source)  # refuse to bundle anything that does not load
            for suffix in (".safetensors", ".json"):
                shutil.copyfile(source.with_suffix(suffix), staging / f"{stem}{suffix}")
        BundleManifest(
            name=MODEL_NAME,
            top_priors={TOP_NAME: f"prior_{TOP_NAME}"},
            default_top=TOP_NAME,
            upsamplers={1: "upsampler_level_1", 0: "upsampler_level_0"},
            vocabulary="model",
            sample_rate=self.recipe.sample_rate,
            guidance=self.recipe.guidance,
            upsample_lookahead=self.recipe.upsample_lookahead,
            render_guide=self.recipe.render_guide,
        ).write(staging)
        (staging / "recipe.json").write_text(json.dumps(asdict(self.recipe), indent=2, sort_keys=True))
        shutil.rmtree(self.model_dir, ignore_errors=True)
        staging.rename(self.model_dir)
        self.say(f"bundle: the default model is in {self.model_dir}")
        return 0

    # -- helpers ----------------------------------------------------------------------------------
    def _finished_run(self, stage: str, steps: int, what: str, needed_by: str) -> Path:
        """The run of `stage`, refused unless it has trained its `steps`."""
        run = self.runs / stage
        if _trained_step(run) < steps:
            raise ValueError(f"{needed_by} needs {what} first (stage {stage})")
        return run

    def _vqvae_run(self, needed_by: str) -> Path:
        """The VQ-VAE stage's run; the priors train on its codes (the decoder stage keeps them)."""
        return self._finished_run("vqvae", self.recipe.vqvae_steps, "the trained VQ-VAE", needed_by)

    def _decoders_run(self, needed_by: str) -> Path:
        """The decoder fine-tune's run, or the VQ-VAE's when the recipe has no decoder stage."""
        if self.recipe.decoder_steps <= 0:
            return self._vqvae_run(needed_by)
        return self._finished_run("decoders", self.recipe.decoder_steps, "the fine-tuned decoders", needed_by)

    def _grown_run(self, needed_by: str) -> Path:
        """The grow stage's run, or the one before it when the recipe has no grow stage."""
        r = self.recipe
        if r.grows:
            return self._finished_run("grow", r.grow_steps, "the grown decoders", needed_by)
        return self._decoders_run(needed_by)

    def _final_vqvae_run(self) -> Path:
        """The VQ-VAE that ships: bottom_decoder's last round, or as `_top_tuned_vqvae_run` left it."""
        r = self.recipe
        if r.tunes_bottom_decoder:
            return self._last_round(
                "bottom_decoder", r.bottom_decoder_rounds, "the bottom decoder", "the bundle"
            )
        return self._top_tuned_vqvae_run("the bundle")

    def _last_round(self, stage: str, rounds: tuple[DecoderRound, ...], what: str, needed_by: str) -> Path:
        """The finished run of the last of a stage's `rounds`."""
        return self._finished_run(_round_run(stage, len(rounds)), rounds[-1].steps, what, needed_by)

    def _top_tuned_vqvae_run(self, needed_by: str) -> Path:
        """The VQ-VAE as the last of its stages up to the top level's left it (top_level_decoder,
        top_level, top_decoder's last round, grow, decoders, vqvae)."""
        r = self.recipe
        if r.tunes_top_level_decoder:
            what = "the retrained top level's decoder"
            return self._last_round("top_level_decoder", r.top_level_decoder_rounds, what, needed_by)
        if r.retrains_top_level:
            return self._finished_run("top_level", r.top_level_steps, "the retrained top level", needed_by)
        return self._decoded_run(needed_by)

    def _decoded_run(self, needed_by: str) -> Path:
        """The VQ-VAE as its decoder stages left it (top_decoder's last round, grow, decoders, vqvae): the
        codes are the VQ-VAE stage's."""
        r = self.recipe
        if r.trains_top_decoder:
            return self._last_round("top_decoder", r.top_decoder_rounds, "the trained top decoder", needed_by)
        return self._grown_run(needed_by)

    def _tuned_prior_run(self, needed_by: str) -> Path:
        """The top prior fine-tuned on songs' starts when the recipe says so, else as trained."""
        r = self.recipe
        if r.tunes_starts:
            return self._finished_run("starts", r.starts_steps, "the starts-tuned prior", needed_by)
        return self._finished_run("prior", r.prior_steps, "the trained top prior", needed_by)

    def _clocked_prior_run(self, needed_by: str) -> Path:
        """The top prior with its beat clock, or tuned on songs' starts, or as trained, as the recipe says."""
        r = self.recipe
        if r.clocks_prior:
            return self._finished_run("clock", r.clock_steps, "the prior with its beat clock", needed_by)
        return self._tuned_prior_run(needed_by)

    def _rekeyed_prior_run(self, needed_by: str) -> Path:
        """The top prior re-keyed to the retrained top level, or as `_clocked_prior_run`."""
        r = self.recipe
        if r.retrains_top_level:
            return self._finished_run("prior_rekey", r.prior_rekey_steps, "the re-keyed top prior", needed_by)
        return self._clocked_prior_run(needed_by)

    def _more_prior_run(self, needed_by: str) -> Path:
        """The top prior fine-tuned on the corpus and more songs, or as `_rekeyed_prior_run`."""
        r = self.recipe
        if r.tunes_more:
            what = "the top prior tuned on more songs"
            return self._finished_run("prior_more", r.more_steps, what, needed_by)
        return self._rekeyed_prior_run(needed_by)

    def _final_prior_run(self) -> Path:
        """The top prior that ships: fine-tuned on duets, or as `_more_prior_run`."""
        r = self.recipe
        if r.tunes_duets:
            return self._finished_run("duets", r.duets_steps, "the top prior tuned on duets", "the bundle")
        return self._more_prior_run("the bundle")

    def _top_codes_vqvae(self, needed_by: str) -> Path:
        """The VQ-VAE whose top codes the shipped top prior reads: the retrained top level's, or the VQ-VAE
        stage's."""
        if self.recipe.retrains_top_level:
            what = "the retrained top level"
            return self._finished_run("top_level", self.recipe.top_level_steps, what, needed_by) / "model"
        return self._vqvae_run(needed_by) / "model"

    def _final_upsampler_run(self, level: int) -> Path:
        """The level-`level` upsampler that ships: deepened, or as `_undeepened_upsampler_run`."""
        steps = self.recipe.deep_upsampler_steps(level)
        if steps > 0:
            what = f"the deepened level-{level} upsampler"
            return self._finished_run(f"upsampler{level}_deep", steps, what, "the bundle")
        return self._undeepened_upsampler_run(level, "the bundle")

    def _undeepened_upsampler_run(self, level: int, needed_by: str) -> Path:
        """The level-`level` upsampler re-keyed to a retrained top level (level 1), or as
        `_tuned_upsampler_run`."""
        r = self.recipe
        if level == 1 and r.retrains_top_level:
            what = "the re-keyed level-1 upsampler"
            return self._finished_run("upsampler1_rekey", r.upsampler1_rekey_steps, what, needed_by)
        return self._tuned_upsampler_run(level, needed_by)

    def _tuned_upsampler_run(self, level: int, needed_by: str) -> Path:
        """The level-`level` upsampler fine-tuned on every song when the recipe says so, else as trained."""
        r = self.recipe
        if r.tunes_upsamplers:
            last = _tune_run(level, len(r.upsampler_tune_rounds) - 1)
            return self._finished_run(
                last, r.upsampler_tune_rounds[-1], "the fine-tuned upsamplers", needed_by
            )
        return self._finished_run(
            f"upsampler{level}", r.upsampler_steps, f"the level-{level} upsampler", needed_by
        )

    def _corpus_key(self) -> dict:
        r = self.recipe
        return corpus_key(r.songs, r.seconds, r.corpus_seed, r.sample_rate)

    def _metadata_for(self, stage: str, kind: str) -> Path | None:
        """The metadata file of the songs `stage` trains on: None for the whole corpus, else the corpus's
        first N rows (`first_songs_metadata`)."""
        subset = self.recipe.songs_for(stage)
        return None if subset is None else first_songs_metadata(self.corpus, subset, kind)

    def _train(
        self,
        stage: str,
        kind: str,
        steps: int,
        level: int | None = None,
        settings: tuple[str, ...] = (),
        base: Path | None = None,
        vqvae: Path | None = None,
        rekey_from: Path | None = None,
        data_dir: Path | None = None,
        metadata: Path | None = None,
    ) -> int:
        """Train (or resume) stage `stage`; `base` is a run whose model it fine-tunes with `settings`. A
        prior reads the codes of `vqvae` (default: the VQ-VAE stage's), re-keyed from `rekey_from`'s. It
        trains on `data_dir` (default: the corpus), read through `metadata` (default: as
        `_metadata_for` says)."""
        run_dir = self.runs / stage
        done = _trained_step(run_dir)
        if done >= steps:
            self.say(f"{stage}: trained for {done} steps already")
            return 0
        if kind != "vqvae" and vqvae is None:
            vqvae = self._vqvae_run(stage) / "model"
        from_model = None if base is None or done else base / "model"
        data_dir = data_dir or self.corpus
        metadata = metadata or self._metadata_for(stage, kind)
        request = TrainRequest(
            kind=kind,
            data_dir=data_dir,
            run_dir=run_dir,
            preset=None if done else self.recipe.preset,
            settings=() if done else settings,
            steps=steps,
            batch_size=None if done else self.recipe.batch_size,
            resume=done > 0,
            from_model=from_model,
            vqvae=vqvae,
            rekey_from=None if done else rekey_from,
            level=level,
            metadata=metadata,
            device=self.device,
        )
        command = f"cocompose train {kind} --data {data_dir} --run {run_dir} --preset {self.recipe.preset}"
        if from_model is not None:
            command += f" --from {from_model}"
        command += "".join(f" --set {setting}" for setting in settings)
        if vqvae is not None:
            command += f" --vqvae {vqvae}"
        if rekey_from is not None and not done:
            command += f" --rekey {rekey_from}"
        if level is not None:
            command += f" --level {level}"
        if metadata is not None:
            command += f" --metadata {metadata}"
        self.say(
            f"{stage}: {'resuming at step ' + str(done) if done else 'training'} to step {steps}: {command}"
        )
        return train(request, say=self.say)
