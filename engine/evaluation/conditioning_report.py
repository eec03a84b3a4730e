"""Results of the conditioning evaluation (`cocompose evaluate --conditioning`), as text or JSON.

The targets are the issue's: generated continuations named as the conditioned artist at least 80% of
the time, as the conditioned genre at least 70%, and, after a mid-song artist change, audio from 2 s
after the change named as the new artist at least 70% of the time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

ARTIST_TARGET = 0.8
GENRE_TARGET = 0.7
CHANGE_TARGET = 0.7


@dataclass(frozen=True)
class ClassifierCheck:
    """How well a reference classifier names held-out real synthetic clips: the sanity floor under the
    generation figures (a classifier that cannot tell real artists apart makes them meaningless)."""

    task: str  # "artist" or "genre"
    classes: tuple[str, ...]
    train_clips: int
    test_clips: int
    real: float  # fitted and tested on the real audio
    reconstructed: float  # fitted and tested on top-level reconstructions: the classifier used below
    real_on_reconstructed: float  # fitted on real audio, tested on reconstructions: the codec's domain gap

    @property
    def chance(self) -> float:
        return 1.0 / len(self.classes)


@dataclass(frozen=True)
class ConditioningMetric:
    """Generated clips classified against what they were conditioned on."""

    name: str
    target: float
    classes: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]  # row: conditioned class, column: classified class
    previous: float | None = None  # artist change: share still classified as the artist before the change

    @property
    def clips(self) -> int:
        return sum(map(sum, self.confusion))

    @property
    def accuracy(self) -> float:
        hits = sum(row[i] for i, row in enumerate(self.confusion))
        return hits / self.clips if self.clips else float("nan")

    @property
    def chance(self) -> float:
        return 1.0 / len(self.classes)

    @property
    def passed(self) -> bool:
        return self.accuracy >= self.target


@dataclass(frozen=True)
class Variety:
    """Mean `clip_code_bits` of the classified clips: real held-out songs' top-level codes against the
    generated songs'. Conditioning strength is bought with variety (label guidance trades one for the
    other), so the card shows both."""

    real_bits: float
    generated_bits: float


@dataclass(frozen=True)
class FittedOnReal:
    """Artist and genre accuracy on the same generated clips with classifiers fitted on real clips (the
    issue's wording) instead of reconstructions: bounded by the `real->recon` column, the codec's gap."""

    artist: float
    genre: float


@dataclass(frozen=True)
class ConditioningReport:
    model: str
    sample_rate: int
    settings: dict  # the ConditioningConfig, as a dict
    reference_songs: int  # synthetic songs the classifiers came from (held-out seed)
    classifiers: tuple[ClassifierCheck, ...]
    artist: ConditioningMetric
    genre: ConditioningMetric
    change: ConditioningMetric
    generated_seconds: float  # top-level audio sampled, all songs and continuations together
    wall_seconds: float
    variety: Variety
    fitted_on_real: FittedOnReal

    def metrics(self) -> tuple[ConditioningMetric, ...]:
        return self.artist, self.genre, self.change

    def to_dict(self) -> dict:
        data = asdict(self)
        for row, check in zip(data["classifiers"], self.classifiers, strict=True):
            row["chance"] = check.chance
        for key, metric in zip(("artist", "genre", "change"), self.metrics(), strict=True):
            data[key] |= {"accuracy": metric.accuracy, "chance": metric.chance, "clips": metric.clips}
            data[key]["pass"] = metric.passed
        return data

    def to_text(self) -> str:
        s = self.settings
        lines = [
            f"conditioning: classifiers fitted on {self.reference_songs} held-out synthetic songs "
            f"(seed {s['seed']}), {s['clip_seconds']:g} s clips",
            "  classifier held-out accuracy   real   top-level recon   real->recon   chance",
        ]
        for c in self.classifiers:
            lines.append(
                f"    {c.task + f' ({len(c.classes)})':<26} {c.real:6.1%}   {c.reconstructed:15.1%}   "
                f"{c.real_on_reconstructed:11.1%}   {c.chance:6.1%}"
            )
        lines += [
            f"  generated: {s['songs_per_artist']} songs per artist in {s['genres_per_artist']} genres, "
            f"{s['seconds']:g} s each (clips from {s['listen_from_seconds']:g} s), temperature "
            f"{s['temperature']:g}, label guidance {s.get('guidance', 0.0):g}"
            + (", each genre at its usual tempo (beat clock)" if s.get("beat_clock") else ""),
            f"  artist change at {s['change_at_seconds']:g} s, "
            f"heard from {s['change_at_seconds'] + s['after_change_seconds']:g} s; "
            f"{self.generated_seconds:.0f} s sampled in {self.wall_seconds:.0f} s",
            "                         accuracy  target  chance  clips",
        ]
        for m in self.metrics():
            extra = "" if m.previous is None else f"  (still the artist before: {m.previous:.1%})"
            lines.append(
                f"    {m.name:<20} {m.accuracy:8.1%}  {m.target:6.0%}  {m.chance:6.1%}  {m.clips:5}  "
                f"{'pass' if m.passed else 'FAIL'}{extra}"
            )
        v = self.variety
        lines.append(
            f"  variety: a clip's top-level codes carry {v.generated_bits:.2f} bits generated, "
            f"{v.real_bits:.2f} bits in real songs"
        )
        lines.append(
            f"  with classifiers fitted on real clips instead: artist {self.fitted_on_real.artist:.1%}, "
            f"genre {self.fitted_on_real.genre:.1%} (bounded by real->recon above)"
        )
        for m in self.metrics():
            lines += ["", f"  {m.name}: rows conditioned, columns classified", *confusion_lines(m)]
        return "\n".join(lines)


def confusion_lines(metric: ConditioningMetric) -> list[str]:
    width = max(len(name) for name in metric.classes)
    heads = [f"{i:>4}" for i in range(len(metric.classes))]
    lines = [f"    {'':<{width + 5}}{''.join(heads)}"]
    for i, (name, row) in enumerate(zip(metric.classes, metric.confusion, strict=True)):
        lines.append(f"    {i:>2} {name:<{width}}  {''.join(f'{n:>4}' for n in row)}")
    return lines
