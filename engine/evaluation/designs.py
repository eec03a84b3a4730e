"""Classifiers of other designs, for checking that a conditioning figure is not one feature set's verdict.

The issue's test is "a classifier fitted on real corpus clips (audio features such as log-mel
statistics)", and acceptance is measured "with a separately written classifier". Features differ in what
a codec's losses cost them: the card's (`features.py`) read frame-to-frame detail (each band's spread and
change over a clip), which a dull decoder flattens; a long-term spectrum reads the average colour of the
sound, which it keeps better. Each design here is fitted on the same real clips and judges the same test
clips, so a table over designs shows how much a figure depends on the choice:

- `log-mel statistics`: the card's features and classifier (artist: all of them; genre: their rhythm);
- `cepstral statistics`: 20 mel-frequency cepstral coefficients (64 bands, 32 ms frames), their means,
  spreads and mean frame-to-frame change, the usual timbre summary of speaker and instrument recognition;
- `long-term spectrum`: levels in third-octave bands from 50 Hz, each one's mean and spread over the
  frames in dB relative to the clip's mean level, and the spectral centroid and flatness (mean, spread);
- `onset rhythm`: the autocorrelation of the whole-band spectral flux at 10 ms frames, lags 0.1-2 s
  (a design for the genre only, written apart from the card's).

Artist designs have no rhythm and the genre one no timbre, as the card's genre classifier. Every design
fits `classifier.fit_classifier` (standardised logistic regression) so that only the features differ.
All features are numpy float64 pure functions of (clip, rate); the new ones are unchanged by the clip's
loudness (the card's read mean log energies: the corpus levels every song, and so do its decoders).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.evaluation.classifier import Classifier, fit_classifier
from engine.evaluation.conditioning import TASK_FEATURES
from engine.evaluation.features import FeatureConfig, feature_matrix, log_mel

CEPSTRAL = FeatureConfig(n_mels=64, window_s=0.032)
N_CEPSTRA = 20
THIRD_OCTAVES_FROM_HZ = 50.0
FLUX_FRAME_S = 0.01
FLUX_LAGS_S = (0.1, 2.0)


def _frames_power(
    clip: np.ndarray, rate: int, window_s: float, hop_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """(frames, bins) power spectrum (Hann window of window_s rounded to a power of two) and bin freqs."""
    n_fft = 1 << max(6, round(np.log2(window_s * rate)))
    hop = max(1, round(hop_s * rate))
    x = np.asarray(clip, dtype=np.float64)
    if x.ndim != 1 or len(x) < 2 * n_fft:
        raise ValueError(f"a clip must be mono and at least {2 * n_fft} samples long, got shape {x.shape}")
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft)
    return np.abs(np.fft.rfft(frames, axis=1)) ** 2, np.fft.rfftfreq(n_fft, 1.0 / rate)


def _levelled(clip: np.ndarray) -> np.ndarray:
    """The clip at unit RMS, so that the log floors sit at the same depth below any clip's level."""
    x = np.asarray(clip, dtype=np.float64)
    return x / max(float(np.sqrt(np.mean(x**2))), 1e-12)


def cepstral_statistics(clip: np.ndarray, rate: int) -> np.ndarray:
    """(3 * N_CEPSTRA,) means, spreads and mean absolute frame-to-frame change of the MFCCs of the
    levelled clip; the 0th coefficient's mean (the overall level) is left at 0."""
    mel = log_mel(_levelled(clip), rate, CEPSTRAL)
    n = mel.shape[1]
    k = np.arange(N_CEPSTRA)[:, None]
    basis = np.cos(np.pi * k * (np.arange(n)[None, :] + 0.5) / n)  # DCT-II rows
    basis[0] *= np.sqrt(0.5)
    cepstra = mel @ (basis * np.sqrt(2.0 / n)).T
    means = cepstra.mean(axis=0)
    means[0] = 0.0
    return np.concatenate([means, cepstra.std(axis=0), np.abs(np.diff(cepstra, axis=0)).mean(axis=0)])


def spectrum_statistics(clip: np.ndarray, rate: int) -> np.ndarray:
    """Third-octave band levels' means and spreads over the frames (dB, relative to the clip's mean
    level), then the spectral centroid's and flatness's mean and spread."""
    power, freqs = _frames_power(_levelled(clip), rate, 0.064, 0.016)
    edges = THIRD_OCTAVES_FROM_HZ * 2.0 ** (np.arange(0, 40) / 3.0)
    edges = edges[edges <= rate / 2]
    bands = [(freqs >= lo) & (freqs < hi) for lo, hi in itertools.pairwise(edges)]
    levels = 10.0 * np.log10(np.stack([power[:, b].sum(axis=1) for b in bands if b.any()], axis=1) + 1e-12)
    levels -= levels.mean()
    total = power.sum(axis=1) + 1e-20
    centroid = (power * freqs).sum(axis=1) / total / (rate / 2)
    flatness = np.exp(np.log(power + 1e-20).mean(axis=1)) / (power.mean(axis=1) + 1e-20)
    shape = [centroid.mean(), centroid.std(), flatness.mean(), flatness.std()]
    return np.concatenate([levels.mean(axis=0), levels.std(axis=0), shape])


def flux_rhythm(clip: np.ndarray, rate: int) -> np.ndarray:
    """The normalised autocorrelation of the whole-band spectral flux (log-compressed magnitudes) at every
    other lag from 0.1 to 2 s, in 10 ms frames."""
    power, _ = _frames_power(clip, rate, 0.032, FLUX_FRAME_S)
    level = np.log1p(1000.0 * np.sqrt(power) / max(float(np.sqrt(power.max())), 1e-12))
    flux = np.maximum(np.diff(level, axis=0), 0.0).sum(axis=1)
    flux = flux - flux.mean()
    full = np.correlate(flux, flux, "full")[len(flux) - 1 :]
    full = full / max(full[0], 1e-12)
    lo, hi = (round(s / FLUX_FRAME_S) for s in FLUX_LAGS_S)
    lags = np.arange(lo, hi, 2)
    return np.interp(lags, np.arange(len(full)), full, right=0.0)


Features = Callable[[Sequence[np.ndarray], int], np.ndarray]  # clips, rate -> (N, F)


@dataclass(frozen=True)
class ClassifierDesign:
    name: str
    features: Features
    columns: Mapping[str, slice]  # task -> the feature columns its classifier reads (tasks it serves)


def _each(feature: Callable[[np.ndarray, int], np.ndarray]) -> Features:
    """A per-clip feature function as a clips -> rows one."""
    return lambda clips, rate: np.stack([feature(clip, rate) for clip in clips])


DESIGNS = (
    ClassifierDesign("log-mel statistics", feature_matrix, dict(TASK_FEATURES)),
    ClassifierDesign("cepstral statistics", _each(cepstral_statistics), {"artist": slice(None)}),
    ClassifierDesign("long-term spectrum", _each(spectrum_statistics), {"artist": slice(None)}),
    ClassifierDesign("onset rhythm", _each(flux_rhythm), {"genre": slice(None)}),
)


@dataclass(frozen=True)
class Labelled:
    """Clips and the true name of each for one task."""

    clips: Sequence[np.ndarray]
    names: Sequence[str]


@dataclass(frozen=True)
class FittedDesign:
    """One design's classifiers (task -> classifier, fitted on real clips) and its features of every clip
    it has read, so that clips judged twice are featurised once."""

    design: ClassifierDesign
    classifiers: Mapping[str, Classifier]
    rows: _FeatureRows

    def names_given(self, task: str, clips: Sequence[np.ndarray]) -> list[str]:
        """The name the `task` classifier gives each clip."""
        classifier = self.classifiers[task]
        return [classifier.names[i] for i in classifier.predict(self.rows(clips))]


def fit_designs(
    fit_on: Mapping[str, Labelled], rate: int, designs: Sequence[ClassifierDesign] = DESIGNS
) -> list[FittedDesign]:
    """Each design's classifier for every task it serves that fit_on has clips for."""
    fitted = []
    for design in designs:
        rows = _FeatureRows(design, rate)
        classifiers = {
            task: fit_classifier(rows(fit_on[task].clips), list(fit_on[task].names), columns)
            for task, columns in design.columns.items()
            if task in fit_on
        }
        fitted.append(FittedDesign(design, classifiers, rows))
    return fitted


def judge(
    fit_on: Mapping[str, Labelled],
    sources: Mapping[str, Mapping[str, Labelled]],
    rate: int,
    designs: Sequence[ClassifierDesign] = DESIGNS,
) -> dict[str, dict[str, dict[str, float]]]:
    """design name -> source -> task -> share of the source's clips for that task that the design's
    classifier, fitted on fit_on[task], names right. Tasks a design does not serve are left out."""
    return judge_fitted(fit_designs(fit_on, rate, designs), sources)


def judge_fitted(
    fitted: Sequence[FittedDesign], sources: Mapping[str, Mapping[str, Labelled]]
) -> dict[str, dict[str, dict[str, float]]]:
    """`judge` with the designs already fitted (`fit_designs`)."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for design in fitted:
        row: dict[str, dict[str, float]] = {source: {} for source in sources}
        for task, classifier in design.classifiers.items():
            for source, tasks in sources.items():
                if task in tasks:
                    heard = tasks[task]
                    row[source][task] = classifier.share_named(design.rows(heard.clips), list(heard.names))
        table[design.design.name] = row
    return table


class _FeatureRows:
    """One design's features of clips, each clip's computed once: the same clips are heard for several
    tasks and sources (a clip of the fitting half for one task is held out for the other)."""

    def __init__(self, design: ClassifierDesign, rate: int):
        self.design, self.rate = design, rate
        self.known: dict[int, np.ndarray] = {}  # id(clip) -> its row; every clip outlives a `judge` call

    def __call__(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        new = list({id(clip): clip for clip in clips if id(clip) not in self.known}.values())
        if new:
            self.known.update(zip(map(id, new), self.design.features(new, self.rate), strict=True))
        return np.stack([self.known[id(clip)] for clip in clips])


def table_text(table: Mapping[str, Mapping[str, Mapping[str, float]]], title: str) -> str:
    """One line per design and source: the share named right for each task it was judged on."""
    lines = [title]
    width = max((len(source) for row in table.values() for source in row), default=0)
    for design, row in table.items():
        for source, shares in row.items():
            if shares:
                judged = "  ".join(f"{task} {share:6.1%}" for task, share in shares.items())
                lines.append(f"  {design:<20} {source:<{width}} {judged}")
    return "\n".join(lines)
