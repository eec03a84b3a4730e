"""The model card: frozen results of `cocompose evaluate`, as a text table or JSON.

The targets are the issue's: spectral convergence at or below -20 / -12 / -8 dB for the bottom /
middle / top level (the paper's Table 1 reports -21.4 / -12.4 / -8.3 dB), and codebook usage entropy
at least 80% of log2(K) bits at every level.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

SC_TARGETS_DB = {3: (-20.0, -12.0, -8.0)}  # per level count: bottom first
LEVEL_NAMES = {3: ("bottom", "middle", "top")}
USAGE_TARGET = 0.8
CARD_FORMAT = "cocompose-model-card"
CARD_VERSION = 1


def level_name(level: int, levels: int) -> str:
    names = LEVEL_NAMES.get(levels)
    return names[level] if names else f"level {level}"


def sc_target_db(level: int, levels: int) -> float | None:
    targets = SC_TARGETS_DB.get(levels)
    return targets[level] if targets else None


@dataclass(frozen=True)
class LevelMetrics:
    level: int
    name: str
    spectral_convergence_db: float
    target_db: float | None
    entropy_bits: float
    max_entropy_bits: float  # log2(K)

    @property
    def usage(self) -> float:
        return self.entropy_bits / self.max_entropy_bits

    @property
    def sc_pass(self) -> bool | None:
        return None if self.target_db is None else self.spectral_convergence_db <= self.target_db

    @property
    def usage_pass(self) -> bool:
        return self.usage >= USAGE_TARGET


@dataclass(frozen=True)
class PriorMetrics:
    role: str  # "top" or "upsampler"
    name: str
    level: int
    bits_per_token: float | None  # None when no song was long enough for one window
    unigram_bits: float | None
    windows: int
    # Extra bits per code when a window gets another song's artist / genre (prior_metrics.py); None for
    # a prior without labels or a held-out set with a single artist / genre.
    artist_gain_bits: float | None = None
    genre_gain_bits: float | None = None


@dataclass(frozen=True)
class ModelCard:
    model: str
    corpus: str
    songs: int
    seconds: float  # held-out audio measured
    sample_rate: int
    levels: tuple[LevelMetrics, ...]
    priors: tuple[PriorMetrics, ...]

    def to_dict(self) -> dict:
        data = {"format": CARD_FORMAT, "version": CARD_VERSION} | asdict(self)
        for row, level in zip(data["levels"], self.levels, strict=True):
            row |= {"usage": level.usage, "usage_target": USAGE_TARGET}
            row |= {"sc_pass": level.sc_pass, "usage_pass": level.usage_pass}
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        lines = [
            f"model {self.model}",
            f"held-out corpus {self.corpus}: {self.songs} songs, {self.seconds:.1f} s "
            f"at {self.sample_rate} Hz",
            "",
            "VQ-VAE        SC dB   target  pass   entropy bits  usage  (target >= 80%)",
        ]
        for m in self.levels:
            target = "   -  " if m.target_db is None else f"{m.target_db:6.1f}"
            sc_pass = "-" if m.sc_pass is None else _yes(m.sc_pass)
            lines.append(
                f"  {m.name:<9} {m.spectral_convergence_db:7.2f}  {target}  {sc_pass:<5}  "
                f"{m.entropy_bits:5.2f} / {m.max_entropy_bits:5.2f}  {m.usage:5.1%}  {_yes(m.usage_pass)}"
            )
        lines += [
            "",
            "priors                    level  bits/token  unigram bits  windows  wrong artist  wrong genre",
        ]
        for p in self.priors:
            lines.append(
                f"  {p.role + ' ' + p.name:<23} {p.level:>5}  {_num(p.bits_per_token):>10}  "
                f"{_num(p.unigram_bits):>12}  {p.windows:>7}  {_gain(p.artist_gain_bits):>12}  "
                f"{_gain(p.genre_gain_bits):>11}"
            )
        lines.append("  (wrong artist / genre: bits per code added when a window gets another song's label)")
        return "\n".join(lines)


def _yes(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def _gain(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
