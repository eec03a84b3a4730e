"""The issue's literal test on previews, by classifiers of every design (`designs.py`) fitted on REAL clips.

`evaluate --conditioning` fits its classifiers on top-level reconstructions and reports, on one line,
the card's classifiers fitted on real clips instead. This check asks how much that line depends on the
features: the card's reference songs (`ConditioningConfig`: seed, count, length) are split in two as the card
splits them for each task (`fitting_half`: every other song of each artist, or genre); each design is
fitted on the real clips of one half and judges

- `real`: the other half's real clips (the design's own ceiling on new songs);
- `top-level reconstruction`: the same clips encoded and played by the top decoder, as a preview plays
  (what the codec alone costs the design);
- `generated previews`: the card's generated songs (`plan_songs`, sampled as the card samples them),
  clips from `listen_from_seconds` on, decoded as the app's preview;
- `after an artist change`: the clip `after_change_seconds` after each song's artist change (artist only);
  for these the check also lists each artist design's misses (old artist, new artist, name given), to
  tell a new artist heard as the old one (a slow switch) from one heard as a third;
- with `change_pairs`, `change's pairs from nothing`: songs sampled from nothing with the labels each
  change asks for (its new artist, and the genre of the song it takes over: pairs the previews test may
  never ask for), the same seeds, heard at the same place as after the change (artist only), and their
  misses (artist, genre, name given): a shortfall after a change that these share comes from the pairs,
  not from the change.

The generated songs and changes are the card's own (same seeds and settings) and so are the halves, so
the log-mel design's figures on the generated previews are the card's "fitted on real clips" line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from engine.api import ComposeEngine
from engine.evaluation.conditioning import (
    ConditioningConfig,
    corpus_labels,
    fitting_half,
    frames,
    generate_changes,
    generate_songs,
    plan_songs,
    preview_clips,
    reference_clips,
)
from engine.evaluation.designs import (
    DESIGNS,
    ClassifierDesign,
    Labelled,
    fit_designs,
    judge_fitted,
    table_text,
)

TASKS = ("artist", "genre")
SOURCES = ("real", "top-level reconstruction", "generated previews", "after an artist change")
CHANGE_PAIRS = "change's pairs from nothing"


@dataclass(frozen=True)
class PreviewDesignCheck:
    table: dict[str, dict[str, dict[str, float]]]  # design -> source -> task -> share named right
    clips: dict[str, int]  # source -> clips judged (the fitting half: "fitted on")
    # artist design -> (old artist, new artist, name given) of each clip after a change it names wrong
    change_misses: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    # with change_pairs: artist design -> (artist, genre, name given) of each such clip it names wrong
    pair_misses: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)

    def to_text(self) -> str:
        counts = ", ".join(f"{source} {n}" for source, n in self.clips.items())
        lines = [table_text(self.table, f"classifiers fitted on real clips, by design (clips: {counts})")]
        for title, missed, arrow in (
            ("misses after an artist change (old -> new: heard as, clips)", self.change_misses, " -> "),
            (f"misses on the {CHANGE_PAIRS} (artist, genre: heard as, clips)", self.pair_misses, ", "),
        ):
            if any(missed.values()):
                lines.append(title)
            for design, misses in missed.items():
                for (first, second, heard), n in sorted(Counter(misses).items()):
                    lines.append(f"  {design:<20} {first}{arrow}{second}: {heard} x{n}")
        return "\n".join(lines)


def _picked(clips: list[np.ndarray], names: tuple[str, ...], keep: np.ndarray) -> Labelled:
    picked = np.flatnonzero(keep)
    return Labelled([clips[i] for i in picked], [names[i] for i in picked])


def preview_design_check(
    engine: ComposeEngine,
    config: ConditioningConfig,
    designs: tuple[ClassifierDesign, ...] = DESIGNS,
    say: Callable[[str], None] = print,
    change_pairs: bool = False,
) -> PreviewDesignCheck:
    """Every design, fitted on half the reference songs' real clips, judging the sources above."""
    artists, genres = corpus_labels(engine)
    hop = engine.bundle.vqvae.hop_lengths[-1]
    reference = reference_clips(config, artists, genres, engine.sample_rate, hop, engine, say)
    halves = {task: fitting_half(reference.song, getattr(reference, task), task) for task in TASKS}
    fit_on, real, recon = {}, {}, {}
    for task, fit in halves.items():
        names = getattr(reference, task)
        fit_on[task] = _picked(reference.real, names, fit)
        real[task] = _picked(reference.real, names, ~fit)
        recon[task] = _picked(reference.reconstructed, names, ~fit)

    jobs = plan_songs(config, artists, genres)
    songs = generate_songs(engine, jobs, config, say)
    n_song, n_clip = frames(engine, config.seconds), frames(engine, config.clip_seconds)
    starts = list(range(frames(engine, config.listen_from_seconds), n_song - n_clip + 1, n_clip))
    generated = [clip for codes in songs for clip in preview_clips(engine, codes, starts, n_clip)]
    changed = generate_changes(engine, jobs, songs, config, say)
    heard = frames(engine, config.change_at_seconds) + frames(engine, config.after_change_seconds)
    after = [preview_clips(engine, codes, [heard], n_clip)[0] for codes in changed]

    def per_clip(name_of) -> list[str]:
        return [name_of(job) for job in jobs for _ in starts]

    sources = {
        "real": real,
        "top-level reconstruction": recon,
        "generated previews": {
            "artist": Labelled(generated, per_clip(lambda job: job.artist)),
            "genre": Labelled(generated, per_clip(lambda job: job.genre)),
        },
        "after an artist change": {"artist": Labelled(after, [job.new_artist for job in jobs])},
    }
    if change_pairs:  # the labels each change asks for, sampled from nothing with the songs' own seeds
        pairs = [replace(job, artist=job.new_artist) for job in jobs]
        paired = generate_songs(engine, pairs, config, say)
        from_nothing = [preview_clips(engine, codes, [heard], n_clip)[0] for codes in paired]
        sources[CHANGE_PAIRS] = {"artist": Labelled(from_nothing, [job.artist for job in pairs])}
    say("fitting and judging every design")
    fitted = fit_designs(fit_on, engine.sample_rate, designs)
    table = judge_fitted(fitted, sources)
    clips = {"fitted on (artist)": len(fit_on["artist"].clips)}
    clips |= {source: len(next(iter(tasks.values())).clips) for source, tasks in sources.items()}
    misses, pair_misses = {}, {}
    for design in fitted:
        if "artist" not in design.classifiers:
            continue
        given = design.names_given("artist", after)  # features already read by judge_fitted
        misses[design.design.name] = [
            (job.artist, job.new_artist, name) for job, name in zip(jobs, given, strict=True)
            if name != job.new_artist
        ]  # fmt: skip
        if change_pairs:
            given = design.names_given("artist", from_nothing)
            pair_misses[design.design.name] = [
                (job.artist, job.genre, name) for job, name in zip(pairs, given, strict=True)
                if name != job.artist
            ]  # fmt: skip
    return PreviewDesignCheck(table, clips, misses, pair_misses)
