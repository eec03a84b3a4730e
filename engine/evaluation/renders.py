"""Does a classifier fitted on REAL corpus audio recognise the model's upsampled renders? (issue 4's wording)

`evaluate --conditioning` fits its classifiers on top-level reconstructions, the sound generated codes
reach the ear through in the app's previews. This check takes the issue's words literally instead:
artist and genre classifiers fitted on the real clips of held-out synthetic songs judge

- `real`: fresh songs as synthesised (the classifiers' own ceiling on new songs);
- `bottom recon`: the same songs encoded and decoded at the VQ-VAE's bottom level (the codec's ceiling
  for a full render);
- `real codes upsampled`: their top-level codes through both upsamplers, then the bottom decoder (what
  the upsamplers put back);
- `real middle codes upsampled` (only with `bottom_alone`): their own codes of every level above the
  bottom, the bottom upsampler alone drawing the rest (which of the two upsamplers loses the labels);
- `generated upsampled`: songs the top prior samples for each artist, rendered the same way (what an
  exported track sounds like), and `generated previews`, the same codes through the top decoder (what
  the musician heard before picking them);
- `artist changed upsampled` / `artist changed previews` (unless `change_at_seconds` is None): each
  generated song cut at `change_at_seconds` and continued, history kept, with another artist's label
  and the same genre (artist a, round r: artist a + 1 + r, as the card's change), then rendered with
  each upsampler window conditioned on the label under it, as the app renders a duet. Clips are heard
  from `after_change_seconds` after the change on, and the truth is the new artist.

A model whose bundle has a render guide (`engine.render_guide`) renders as the app does, each render
drawn toward its preview's band envelope (the top level's decode of the same top codes); the same renders
are also heard unguided (`..., unguided`), a comparison on the very same draws.

Sources heard on the real songs are also measured against the songs' own clips (`faithfulness`): the
paper's spectral convergence and the log-spectral distance, both over the same STFT, so that a change
which buys labels at the cost of the songs' sound shows it.

Each source is heard on the same clip grid (from `listen_from_seconds`, `clip_seconds` each), and
judged by the card's log-mel classifiers (`accuracy`) and by those of every other design (`by_design`,
`designs.py`), all fitted on the same real clips. Upsampling
is slow on a CPU (about 35 s per 14 s song for the default model, one thread), so the song counts are small.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from engine.api import ComposeEngine, LabelSpec
from engine.data.synth import compose_song, render_song
from engine.evaluation.conditioning import (
    ConditioningConfig,
    corpus_labels,
    encode_song,
    generate_codes,
    reference_clips,
)
from engine.evaluation.designs import DESIGNS, ClassifierDesign, Labelled, judge, table_text
from engine.prior.sampler import SamplingSettings
from engine.vqvae.losses import DEFAULT_STFT, spectral_convergence_db, stft_magnitude

UPSAMPLED = (
    "real codes upsampled",
    "real middle codes upsampled",
    "generated upsampled",
    "artist changed upsampled",
)
UNGUIDED = ", unguided"
PREVIEWS = ("generated previews", "artist changed previews")
SOURCES = ("real", "bottom recon", *(name + tail for name in UPSAMPLED for tail in ("", UNGUIDED)), *PREVIEWS)
CHANGE_SEED_OFFSET = 500  # change seeds: seed * 1000 + 500 + the song's number, apart from the songs'
TASKS = ("artist", "genre")


@dataclass(frozen=True)
class RenderCheckConfig:
    # Generated songs per artist (its genres in turn), and as many fresh real songs in all (the corpus's
    # order spreads them over the artists).
    songs_per_artist: int = 2
    seed: int = 4242  # fresh songs (synthesis seed) and generation seeds
    reference_seed: int = 90210  # the songs the classifiers are fitted on, all of their clips
    reference_songs: int = 240  # as the card's (engine/evaluation/conditioning.py)
    reference_seconds: float = 20.0
    song_seconds: float = 30.0  # fresh songs are composed this long and labels announce it
    render_seconds: float = 14.0  # of each song, upsampled and heard
    listen_from_seconds: float = 8.0  # past the intro
    clip_seconds: float = 3.0
    temperature: float = 0.98
    guidance: float = 0.0
    upsample_temperature: float = 0.99  # the app's, as the reference upsamples
    # The share of each upsampler window left to the next (plan_level's lookahead); None: the model's.
    upsample_lookahead: float | None = None
    bottom_alone: bool = False  # also hear the real songs' middle codes through the bottom upsampler alone
    # Each generated song also changes artist here (None: no change); its clips are heard from
    # after_change_seconds later, so the two must end by listen_from_seconds.
    change_at_seconds: float | None = 6.0
    after_change_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.songs_per_artist < 1:
            raise ValueError(f"need at least one song per artist, got {self.songs_per_artist}")
        if self.change_at_seconds is not None and not (
            0 < self.change_at_seconds
            and self.after_change_seconds >= 0
            and self.change_at_seconds + self.after_change_seconds <= self.listen_from_seconds
        ):
            raise ValueError(
                "the artist change must come after the start and leave after_change_seconds before the "
                f"clips: 0 < change_at + after_change <= listen_from seconds, got {self.change_at_seconds:g} "
                f"+ {self.after_change_seconds:g}, {self.listen_from_seconds:g}"
            )
        if not self.upsample_temperature > 0:
            raise ValueError(f"upsample_temperature must be above 0, got {self.upsample_temperature:g}")
        if not 0 < self.listen_from_seconds + self.clip_seconds <= self.render_seconds <= self.song_seconds:
            raise ValueError(
                "clips must fit in the rendered part of each song: listen_from + clip <= render <= song "
                f"seconds, got {self.listen_from_seconds:g} + {self.clip_seconds:g}, "
                f"{self.render_seconds:g}, {self.song_seconds:g}"
            )


@dataclass(frozen=True)
class RenderCheck:
    accuracy: dict[str, dict[str, float]]  # source -> task -> share of clips named right (card's design)
    clips: dict[str, int] = field(default_factory=dict)  # source -> clips heard
    by_design: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # design -> accuracy
    # source -> (spectral convergence, log-spectral distance) in dB against the real songs' clips
    faithfulness: dict[str, tuple[float, float]] = field(default_factory=dict)
    # source -> task -> the clips heard and their true names, for listening or judging them again
    heard: dict[str, dict[str, Labelled]] = field(default_factory=dict, repr=False, compare=False)

    def to_text(self) -> str:
        width = max(map(len, SOURCES))
        lines = [f"{'classifiers fitted on real clips':<{width + 2}}   artist    genre   clips"]
        for source in SOURCES:
            if source in self.accuracy:
                a = self.accuracy[source]
                lines.append(
                    f"  {source:<{width}} {a['artist']:8.1%} {a['genre']:8.1%} {self.clips[source]:7}"
                )
        if self.faithfulness:
            lines.append(
                "faithful to the real songs (same clips)   spectral convergence   log-spectral distance"
            )
            for source, (sc, lsd) in self.faithfulness.items():
                lines.append(f"  {source:<{width}} {sc:14.2f} dB {lsd:19.2f} dB")
        if self.by_design:
            lines.append(table_text(self.by_design, "the same clips, by classifier design (designs.py)"))
        return "\n".join(lines)


def faithfulness(real: list[np.ndarray], heard: list[np.ndarray]) -> tuple[float, float]:
    """(spectral convergence, log-spectral distance), in dB, of `heard` clips against the `real` ones at
    the same places: the paper's convergence over all the clips at once (`losses.spectral_convergence_db`),
    and the root mean square difference of the two log power spectra per frame, averaged over frames."""
    x = torch.from_numpy(np.stack(real).astype(np.float32))
    x_hat = torch.from_numpy(np.stack(heard).astype(np.float32))
    spec, spec_hat = (stft_magnitude(a, *DEFAULT_STFT).double() for a in (x, x_hat))
    floor = 1e-10 * float(spec.square().mean())  # far below the music: only silence reaches it
    level, level_hat = (10.0 * torch.log10(a.square() + floor) for a in (spec, spec_hat))
    lsd = (level - level_hat).square().mean(dim=1).sqrt().mean()
    return spectral_convergence_db(x, x_hat), float(lsd)


def render_check(
    engine: ComposeEngine,
    config: RenderCheckConfig,
    say: Callable[[str], None] = print,
    designs: tuple[ClassifierDesign, ...] = DESIGNS,
) -> RenderCheck:
    """The sources above, each clip classified by artist and genre classifiers fitted on real clips."""
    if not engine.can_upsample:
        raise ValueError(f"model {engine.name} has no upsamplers, so it cannot render a song")
    artists, genres = corpus_labels(engine)
    vqvae, sr = engine.bundle.vqvae, engine.sample_rate
    hop = vqvae.hop_lengths[-1]
    reference = reference_clips(
        ConditioningConfig(
            seed=config.reference_seed,
            reference_songs=config.reference_songs,
            reference_seconds=config.reference_seconds,
            clip_seconds=config.clip_seconds,
        ),
        artists,
        genres,
        sr,
        hop,
        engine=None,
        say=say,
    )
    fit_on = {task: Labelled(reference.real, getattr(reference, task)) for task in TASKS}
    cps = engine.codes_per_second
    n_clip = round(config.clip_seconds * cps)
    starts = list(
        range(
            round(config.listen_from_seconds * cps), round(config.render_seconds * cps) - n_clip + 1, n_clip
        )
    )
    guided = engine.bundle.render_guide is not None
    changing = config.change_at_seconds is not None
    heard: dict[str, list] = {  # source -> (clip audio, {task: true name})
        source: []
        for source in SOURCES
        if (config.bottom_alone or not source.startswith("real middle codes upsampled"))
        and (guided or not source.endswith(UNGUIDED))
        and (changing or not source.startswith("artist changed"))
    }

    def keep(source: str, audio: np.ndarray, artist: str, genre: str) -> None:
        names = {"artist": artist, "genre": genre}
        heard[source] += [(audio[s * hop : (s + n_clip) * hop], names) for s in starts]

    upsampling = SamplingSettings(config.upsample_temperature)

    def keep_render(
        source: str,
        codes: np.ndarray,
        spec: LabelSpec | list[tuple[int, LabelSpec]],
        seed: int,
        given: list | None = None,
        preview: np.ndarray | None = None,
    ) -> None:
        """Render top `codes` (the levels in `given` as they are) under `spec` (or its changes), as the app
        does and unguided too; the truth is the last spec's names. `preview`: the codes' top-level decode,
        when the caller has it."""
        finished = given or [None] * len(engine.bundle.upsamplers)
        levels = engine.upsample(
            codes, spec, 0, seed, finished, settings=upsampling, lookahead=config.upsample_lookahead
        )
        rendered, _ = engine.decode_bottom(levels[0])
        last = spec if isinstance(spec, LabelSpec) else spec[-1][1]
        if guided:
            keep(source + UNGUIDED, rendered, last.artist, last.genre)
            top_decode = engine.decode_preview(codes)[0] if preview is None else preview
            rendered = engine.guide_render(rendered, top_decode)
        keep(source, rendered, last.artist, last.genre)

    # The songs' own codes encoded below the top: the bottom level's, for its reconstruction, and with
    # bottom_alone those of the levels above it, handed to the render as finished.
    top_level = len(engine.bundle.upsamplers)
    below_top = range(top_level) if config.bottom_alone else range(1)
    wanted = config.songs_per_artist * len(artists)
    if wanted > CHANGE_SEED_OFFSET:
        raise ValueError(f"at most {CHANGE_SEED_OFFSET} generated songs (their seeds), asked for {wanted}")
    index = 0
    while len(heard["real"]) < wanted * len(starts):
        if index >= 100 * wanted:  # the corpus cycles through every artist and genre long before this
            raise ValueError(f"no songs of the model's artists and genres among the first {index}")
        plan = compose_song(config.seed, index, config.song_seconds)
        index += 1
        if plan.artist.name not in artists or plan.genre.name not in genres:
            continue
        audio = render_song(plan, sr)[: round(config.render_seconds * sr)]
        spec = LabelSpec(plan.artist.name, plan.genre.name, total_seconds=config.song_seconds)
        own = encode_song(engine, audio, [*below_top, top_level])
        bottom = vqvae.decode(own[0][None], 0)[0].cpu().numpy()  # decode runs without gradients itself
        top = own[top_level].cpu().numpy()
        for source, sound in (("real", audio), ("bottom recon", bottom)):
            keep(source, sound, plan.artist.name, plan.genre.name)
        keep_render("real codes upsampled", top, spec, index)
        if config.bottom_alone:
            given = [None] + [own[level].cpu().numpy() for level in below_top[1:]]
            keep_render("real middle codes upsampled", top, spec, index, given)
        done = len(heard["real"]) // len(starts)
        say(f"real songs: {done}/{wanted} ({plan.artist.name}, {plan.genre.name})")

    settings = SamplingSettings(config.temperature, guidance=config.guidance)
    n_render = round(config.render_seconds * cps)
    for a, artist in enumerate(artists):
        for r in range(config.songs_per_artist):
            genre = genres[(a + r) % len(genres)]
            spec = LabelSpec(artist, genre, total_seconds=config.song_seconds)
            number = a * config.songs_per_artist + r
            seed = config.seed * 1000 + number
            (codes,) = generate_codes(engine, np.zeros(0, np.int64), n_render, [seed], spec, settings)
            preview = engine.decode_preview(codes)[0]
            keep_render("generated upsampled", codes, spec, seed, preview=preview)
            keep("generated previews", preview, artist, genre)
            say(f"generated songs: {number + 1}/{wanted} ({artist}, {genre})")
            if not changing:
                continue
            new_spec = replace(spec, artist=artists[(a + 1 + r) % len(artists)])
            at = round(config.change_at_seconds * cps)
            change_seed = config.seed * 1000 + CHANGE_SEED_OFFSET + number
            (changed,) = generate_codes(engine, codes[:at], n_render - at, [change_seed], new_spec, settings)
            preview = engine.decode_preview(changed)[0]
            keep_render("artist changed upsampled", changed, [(0, spec), (at, new_spec)], change_seed,
                        preview=preview)  # fmt: skip
            keep("artist changed previews", preview, new_spec.artist, genre)
            say(f"artist changes: {number + 1}/{wanted} ({artist} -> {new_spec.artist}, {genre})")

    sources = {}
    for source, rows in heard.items():
        clips = [clip for clip, _ in rows]
        sources[source] = {task: Labelled(clips, [names[task] for _, names in rows]) for task in TASKS}
    table = judge(fit_on, sources, sr, designs)
    card = table.get(DESIGNS[0].name, {})  # the card's log-mel design
    real = [clip for clip, _ in heard["real"]]
    faithful = {
        source: faithfulness(real, [clip for clip, _ in heard[source]])
        for source in heard
        if source != "real" and (source == "bottom recon" or source.startswith("real"))
    }
    counts = {source: len(rows) for source, rows in heard.items()}
    return RenderCheck(card, counts, table, faithful, sources)
