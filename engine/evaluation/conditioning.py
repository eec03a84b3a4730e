"""Does conditioning do what it says? Generated songs, classified by ear-like features (issue 4).

1. Reference. Songs of the synthetic corpus are rendered at the model's rate from a held-out seed, and
   clips are cut from their bodies (verses and choruses: the intro has only hats, the ending fades).
   Each clip is also passed through the model's VQ-VAE top level (encode, then the top decoder the app's
   previews use). Artist and genre classifiers are fitted on half of the songs and tested on the other
   half, on real audio and on reconstructions. The ones used on generated audio are fitted on
   reconstructions: generated codes reach the ear through the same decoder, so its artefacts are then
   held constant, and what is left to measure is whether the prior's codes carry the label. A classifier
   fitted on real audio would also charge the prior for the codec's losses (the `real->recon` column
   shows how much that would be).
2. Artist and genre. For each artist the model knows, `songs_per_artist` songs are generated from
   nothing (no prime: a real prime would carry its own artist, and the test is of the label alone),
   spread over `genres_per_artist` genres (artist a, round r: genre a + r), so the genres are covered
   evenly across artists. The labels announce a song of `song_seconds` (the training corpus's length),
   so the model plays an intro first; clips are taken from `listen_from_seconds` on, past the longest
   intro of such a song.
3. Artist change. For each (artist, genre) label, its first song is cut at `change_at_seconds` and
   continued, history kept, with the label of another artist (round r: artist a + 1 + r) and the same
   genre, as the app's swap does, once per song of the label with that song's change seed. The clip
   from `after_change_seconds` after the change is classified, and the share named as the new artist
   counted.

Generation goes through `ComposeEngine.generate` (windowed, so songs may exceed the context) with fixed
seeds derived from `seed`; songs that share their labels are sampled as one batch (a batch of 3 costs
about 1.1 times one song on the CPU), which gives the codes they would get one by one (seeds are per
branch). With the same model, settings and thread count the report is the same, except
its wall time.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from engine.api import ComposeEngine, LabelSpec
from engine.data.synth import ARTISTS, GENRES, MIN_SONG_SECONDS, compose_song, render_song
from engine.evaluation.classifier import Classifier, accuracy, confusion_matrix, fit_classifier
from engine.evaluation.conditioning_report import (
    ARTIST_TARGET,
    CHANGE_TARGET,
    GENRE_TARGET,
    ClassifierCheck,
    ConditioningMetric,
    ConditioningReport,
    FittedOnReal,
    Variety,
)
from engine.evaluation.features import FeatureConfig, feature_matrix
from engine.prior.sampler import MAX_GUIDANCE, SamplingSettings
from engine.vqvae.encdec import decoder_context_frames

MIN_REFERENCE_SONGS = 2 * len(ARTISTS)  # every artist twice: once to fit on, once to test
# Artist: every feature (timbre, and the playing style's rhythm). Genre: rhythm only. The corpus's
# genres differ in tempo, metre, swing and groove, and the artist's instrument dominates the spectrum;
# with timbre included, a genre classifier fitted on a few dozen songs learns which artists happened to
# play each genre (held-out genre accuracy 77% against 95% from rhythm alone, 48 songs at 16 kHz).
TASK_FEATURES = {"artist": slice(None), "genre": FeatureConfig().rhythm}
SEED_STRIDE = 1 << 20  # song seeds: seed * SEED_STRIDE + index; change continuations add half of it


@dataclass(frozen=True)
class ConditioningConfig:
    songs_per_artist: int = 6  # --cond-songs
    genres_per_artist: int = 2  # --cond-genres: songs of an artist are spread over this many genres
    seconds: float = 14.0  # --cond-seconds: length of each generated song
    seed: int = 90210  # --seed: reference corpus and generation seeds
    listen_from_seconds: float = 8.0
    clip_seconds: float = 3.0
    change_at_seconds: float = 8.0
    after_change_seconds: float = 2.0
    song_seconds: float = 30.0  # song length the labels announce (timing conditioning)
    temperature: float = 0.98  # the app's default
    guidance: float = 0.0  # --cond-guidance: label guidance strength (`engine.prior.sampler`)
    # Synthetic songs for the classifiers, half to fit and half to test. 240 is every artist x genre pair
    # 8 times: with 48 the classifiers were short of data (genre ceiling 52.6% against 66.9% with 240).
    reference_songs: int = 240
    reference_seconds: float = 20.0

    def __post_init__(self) -> None:
        if self.songs_per_artist < 1 or self.genres_per_artist < 1:
            raise ValueError(
                f"--cond-songs and --cond-genres must be at least 1, got {self.songs_per_artist} "
                f"and {self.genres_per_artist}"
            )
        if not self.clip_seconds > 0 or not self.temperature > 0 or self.seed < 0:
            raise ValueError("clip length and temperature must be positive and the seed 0 or more")
        if self.seconds < self.listen_from_seconds + self.clip_seconds:
            raise ValueError(
                f"--cond-seconds must be at least {self.listen_from_seconds + self.clip_seconds:g}: clips "
                f"of {self.clip_seconds:g} s are heard from {self.listen_from_seconds:g} s on (past the "
                f"intro), got {self.seconds:g}"
            )
        if not 0 < self.change_at_seconds <= self.seconds or self.after_change_seconds < 0:
            raise ValueError(
                f"the artist change must come inside the song (0 < {self.change_at_seconds:g} <= "
                f"{self.seconds:g} s) and be heard after it"
            )
        if self.reference_songs < MIN_REFERENCE_SONGS:
            raise ValueError(
                f"the classifiers need at least {MIN_REFERENCE_SONGS} reference songs, "
                f"got {self.reference_songs}"
            )
        if self.reference_seconds < MIN_SONG_SECONDS:
            raise ValueError(f"reference songs must last at least {MIN_SONG_SECONDS} s")
        if not 0.0 <= self.guidance <= MAX_GUIDANCE:
            raise ValueError(f"--cond-guidance must lie in [0, {MAX_GUIDANCE:g}], got {self.guidance}")


@dataclass(frozen=True)
class SongJob:
    """One generated song and its mid-song artist change."""

    artist: str
    genre: str
    seed: int
    new_artist: str
    change_seed: int


# ------------------------------------------------------------------------------------------ names


def corpus_labels(engine: ComposeEngine) -> tuple[list[str], list[str]]:
    """The corpus artists and genres the model's top prior knows, in corpus order; ValueError, naming
    both sides, when it knows fewer than two of either (then nothing can be classified)."""
    bundle = engine.bundle
    if bundle.label_config(bundle.top) is None:
        raise ValueError(f"model {engine.name}: the top prior takes no artist or genre labels")
    names = bundle.names[bundle.top.config.level]
    artists = [a.name for a in ARTISTS if a.name in names.artists]
    genres = [
        g.name for g in GENRES if all(names.genres.id_of_key(word) != 0 for word in names.genre_words(g.name))
    ]
    for what, known, corpus, model in (
        ("artists", artists, ARTISTS, engine.artists()),
        ("genres", genres, GENRES, engine.genres()),
    ):
        if len(known) < 2:
            shown = [m for m in model if m != "unknown"]
            raise ValueError(
                f"the conditioning evaluation classifies against the synthetic corpus's {what} "
                f"({', '.join(c.name for c in corpus)}), and model {engine.name} knows "
                f"{len(known)} of them (its {what}: {', '.join(shown[:12]) or 'none'}"
                f"{', ...' if len(shown) > 12 else ''}); it can only evaluate a model trained on "
                "`cocompose synth` songs"
            )
    return artists, genres


def plan_songs(config: ConditioningConfig, artists: Sequence[str], genres: Sequence[str]) -> list[SongJob]:
    """songs_per_artist songs per artist, spread over genres_per_artist genres: song j of artist a is in
    round r = j mod R, with genre a + r and, after the change, artist a + 1 + r (mod the counts). Songs of
    one round share their labels, so they are sampled, and changed, as one batch."""
    rounds = min(config.genres_per_artist, config.songs_per_artist, len(genres))
    jobs = []
    for a, artist in enumerate(artists):
        for j in range(config.songs_per_artist):
            r = j % rounds
            new_artist = artists[(a + 1 + r % (len(artists) - 1)) % len(artists)]
            seed = config.seed * SEED_STRIDE + len(jobs)
            jobs.append(
                SongJob(artist, genres[(a + r) % len(genres)], seed, new_artist, seed + SEED_STRIDE // 2)
            )
    return jobs


def label_groups(jobs: Sequence[SongJob]) -> list[list[int]]:
    """Indices of the jobs that share their labels (artist, genre and new artist), in order."""
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for i, job in enumerate(jobs):
        groups[job.artist, job.genre, job.new_artist].append(i)
    return list(groups.values())


# ------------------------------------------------------------------------------------------ audio


def frames(engine: ComposeEngine, seconds: float) -> int:
    return round(seconds * engine.codes_per_second)


def preview_clips(
    engine: ComposeEngine, codes: np.ndarray, starts: Sequence[int], n_frames: int
) -> list[np.ndarray]:
    """The audio of codes[s : s + n_frames] for each start s, as the app's preview of the whole song plays
    it: the top-level decoder over the clip plus its reach either side gives the same samples."""
    hop = engine.bundle.vqvae.hop_lengths[-1]
    margin = decoder_context_frames(engine.bundle.vqvae.decoders[-1])
    clips = []
    for s in starts:
        if s < 0 or s + n_frames > len(codes):
            raise ValueError(f"clip {s}..{s + n_frames} lies outside the song's {len(codes)} codes")
        lo, hi = max(0, s - margin), min(len(codes), s + n_frames + margin)
        audio, _ = engine.decode_preview(codes[lo:hi])
        clips.append(audio[(s - lo) * hop : (s - lo + n_frames) * hop])
    return clips


@torch.no_grad()
def encode_song(engine: ComposeEngine, audio: np.ndarray, levels: Sequence[int]) -> dict[int, torch.Tensor]:
    """Level -> the codes (K_level,) of a whole song at the model's rate, for each of `levels`, on the
    VQ-VAE's device."""
    vqvae = engine.bundle.vqvae
    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
    codes = vqvae.encode_levels(x.to(next(vqvae.parameters()).device), levels)
    return {level: level_codes[0] for level, level_codes in codes.items()}


def encode_top(engine: ComposeEngine, audio: np.ndarray) -> np.ndarray:
    """Top-level codes (K,) of a whole song at the model's rate: what priming with it would give."""
    top = engine.bundle.vqvae.config.levels - 1
    return encode_song(engine, audio, [top])[top].cpu().numpy()


def generate_codes(
    engine: ComposeEngine,
    history: np.ndarray,
    n_new: int,
    seeds: Sequence[int],
    spec: LabelSpec,
    settings: SamplingSettings,
) -> list[np.ndarray]:
    """history followed by n_new sampled codes, one array per seed."""
    parts: list[list[np.ndarray]] = [[np.asarray(history, dtype=np.int64)] for _ in seeds]
    for piece in engine.generate(history, n_new, seeds, spec, settings):
        for row, branch in enumerate(piece.branches):
            parts[branch].append(piece.codes[row])
    return [np.concatenate(p) for p in parts]


# ------------------------------------------------------------------------------------------ reference


@dataclass(frozen=True, eq=False)
class Reference:
    """Clips of held-out synthetic songs, real and reconstructed, one row per clip."""

    song: np.ndarray  # (N,) corpus index of the clip's song
    start: np.ndarray  # (N,) first top-level code of the clip
    artist: tuple[str, ...]
    genre: tuple[str, ...]
    real: np.ndarray  # (N, F) features of the real audio
    reconstructed: np.ndarray | None  # (N, F) features of the top-level reconstruction (None: no model)
    code_bits: np.ndarray | None = None  # (N,) each clip's `clip_code_bits` (None: no model)

    def fitting_half(self, task: str) -> np.ndarray:
        """(N,) True for clips of the songs a `task` classifier is fitted on (`fitting_half`)."""
        return fitting_half(self.song, getattr(self, task), task)

    @property
    def songs(self) -> int:
        return len(set(self.song.tolist()))


def fitting_half(song: np.ndarray, labels: Sequence[str], task: str) -> np.ndarray:
    """(N,) True for clips (of songs `song`, labelled `labels`) of every other song of each artist (or
    genre), in corpus order, so both halves hold every class (ValueError naming `task` if they cannot)."""
    rank: dict[int, int] = {}
    count: dict[str, int] = defaultdict(int)
    for index, label in zip(song.tolist(), labels, strict=True):
        if index not in rank:
            rank[index] = count[label]
            count[label] += 1
    few = sorted(label for label, n in count.items() if n < 2)
    if few:
        raise ValueError(
            f"too few reference songs: {', '.join(few)}: fewer than two songs (one to fit the {task} "
            "classifier on, one to test it); use more reference songs (--cond-reference-songs)"
        )
    return np.array([rank[index] % 2 == 0 for index in song.tolist()], dtype=bool)


def body_starts(plan, codes_per_second: float, n_frames: int) -> list[int]:
    """Non-overlapping clip starts (in codes) inside the song's verses and choruses."""
    first = math.ceil(plan.sections[1].start_s * codes_per_second)
    last = math.floor(plan.sections[-1].start_s * codes_per_second)
    return list(range(first, last - n_frames + 1, n_frames))


@dataclass(frozen=True, eq=False)
class ReferenceClips:
    """The reference songs' body clips as audio, one row per clip (`build_reference` keeps features)."""

    song: np.ndarray  # (N,) corpus index of the clip's song
    start: np.ndarray  # (N,) first top-level code of the clip
    artist: tuple[str, ...]
    genre: tuple[str, ...]
    real: list[np.ndarray]
    reconstructed: list[np.ndarray] | None  # top-level reconstructions (None: no model)
    code_bits: np.ndarray | None  # (N,) each clip's `clip_code_bits` (None: no model)


def reference_clips(
    config: ConditioningConfig,
    artists: Sequence[str],
    genres: Sequence[str],
    sample_rate: int,
    hop: int,
    engine: ComposeEngine | None = None,
    say: Callable[[str], None] = print,
) -> ReferenceClips:
    """Clips of the first `reference_songs` corpus songs (seed `config.seed`) whose artist and genre are
    among those given, on a grid of `hop` samples; reconstructed through `engine` when there is one."""
    if engine is not None and (engine.sample_rate, engine.bundle.vqvae.hop_lengths[-1]) != (sample_rate, hop):
        raise ValueError("the clip grid must be the model's: its sample rate and top-level hop")
    n = round(config.clip_seconds * sample_rate / hop)
    rows: dict[str, list] = defaultdict(list)
    real, reconstructed, code_bits = [], [], []
    for index in range(config.reference_songs):
        plan = compose_song(config.seed, index, config.reference_seconds)
        if plan.artist.name not in artists or plan.genre.name not in genres:
            continue
        audio = render_song(plan, sample_rate)
        starts = body_starts(plan, sample_rate / hop, n)
        real += [audio[s * hop : (s + n) * hop] for s in starts]
        if engine is not None:
            codes = encode_top(engine, audio)
            reconstructed += preview_clips(engine, codes, starts, n)
            code_bits += [clip_code_bits(codes[s : s + n]) for s in starts]
        for key, value in (("song", index), ("artist", plan.artist.name), ("genre", plan.genre.name)):
            rows[key] += [value] * len(starts)
        rows["start"] += starts
        if engine is not None and ((index + 1) % 12 == 0 or index + 1 == config.reference_songs):
            say(f"reference: {index + 1}/{config.reference_songs} songs encoded and decoded")
    return ReferenceClips(
        np.asarray(rows["song"], dtype=np.int64),
        np.asarray(rows["start"], dtype=np.int64),
        tuple(rows["artist"]),
        tuple(rows["genre"]),
        real,
        None if engine is None else reconstructed,
        None if engine is None else np.asarray(code_bits),
    )


def build_reference(
    config: ConditioningConfig,
    artists: Sequence[str],
    genres: Sequence[str],
    sample_rate: int,
    hop: int,
    engine: ComposeEngine | None = None,
    say: Callable[[str], None] = print,
) -> Reference:
    """`reference_clips`, as the card's features."""
    clips = reference_clips(config, artists, genres, sample_rate, hop, engine, say)
    return Reference(
        clips.song,
        clips.start,
        clips.artist,
        clips.genre,
        feature_matrix(clips.real, sample_rate),
        None if clips.reconstructed is None else feature_matrix(clips.reconstructed, sample_rate),
        clips.code_bits,
    )


def clip_code_bits(codes: np.ndarray) -> float:
    """Entropy (bits) of the codes' frequencies within one clip: how varied the music is over it.
    Guidance lowers it (a generated clip repeats itself more). Compare clips of equal length only."""
    _, counts = np.unique(np.asarray(codes), return_counts=True)
    share = counts / counts.sum()
    return float(-(share * np.log2(share)).sum())


def held_out(reference: Reference, task: str, fit_on: str, test_on: str) -> tuple[Classifier, np.ndarray]:
    """Fit a `task` ("artist"/"genre") classifier on the `fit_on` features ("real"/"reconstructed") of
    the fitting half; return it and its confusion matrix on the `test_on` features of the other half."""
    labels = np.asarray(getattr(reference, task))
    train = reference.fitting_half(task)
    columns = TASK_FEATURES[task]
    classifier = fit_classifier(getattr(reference, fit_on)[train], list(labels[train]), columns)
    return classifier, held_out_confusion(classifier, reference, task, test_on)


def held_out_confusion(classifier: Classifier, reference: Reference, task: str, test_on: str) -> np.ndarray:
    """The classifier's confusion matrix on the `test_on` features of the half it was not fitted on."""
    test = ~reference.fitting_half(task)
    truth = [classifier.index(name) for name in np.asarray(getattr(reference, task))[test]]
    predicted = classifier.predict(getattr(reference, test_on)[test])
    return confusion_matrix(truth, predicted, len(classifier.names))


@dataclass(frozen=True, eq=False)
class FittedTask:
    """One task's classifiers, fitted on the reference's fitting half, and how they do on the other."""

    classifier: Classifier  # fitted on reconstructions: what judges generated audio
    on_real: Classifier  # fitted on real clips (the wording; charges the prior for the codec)
    check: ClassifierCheck
    confusion: np.ndarray  # `classifier` on the held-out half's reconstructions


def fit_reference(reference: Reference, task: str) -> FittedTask:
    """The task's classifiers on reconstructions and on real clips, with their held-out check."""
    on_real, real = held_out(reference, task, "real", "real")
    classifier, recon = held_out(reference, task, "reconstructed", "reconstructed")
    gap = held_out_confusion(on_real, reference, task, "reconstructed")
    train = reference.fitting_half(task)
    check = ClassifierCheck(
        task, classifier.names, int(train.sum()), int((~train).sum()),
        accuracy(real), accuracy(recon), accuracy(gap),
    )  # fmt: skip
    return FittedTask(classifier, on_real, check, recon)


# ------------------------------------------------------------------------------------------ scoring


def classify_songs(
    engine: ComposeEngine,
    classifier: Classifier,
    songs: Sequence[np.ndarray],
    starts: Sequence[Sequence[int]],
    n_frames: int,
) -> np.ndarray:
    """The "generated audio" path: top-level codes of songs -> preview clips -> class index per clip
    (songs in order, each song's starts in order)."""
    return classifier.predict(song_features(engine, songs, starts, n_frames))


def song_features(
    engine: ComposeEngine, songs: Sequence[np.ndarray], starts: Sequence[Sequence[int]], n_frames: int
) -> np.ndarray:
    """(clips, F) features of the songs' preview clips, songs in order, each song's starts in order."""
    clips = [
        clip
        for codes, s in zip(songs, starts, strict=True)
        for clip in preview_clips(engine, codes, s, n_frames)
    ]
    return feature_matrix(clips, engine.sample_rate)


def metric(name: str, target: float, classifier: Classifier, truth: Sequence[str], predicted: np.ndarray,
           previous: Sequence[str] | None = None) -> ConditioningMetric:  # fmt: skip
    matrix = confusion_matrix([classifier.index(t) for t in truth], predicted, len(classifier.names))
    stayed = None
    if previous is not None:
        stayed = float(np.mean([classifier.index(p) == q for p, q in zip(previous, predicted, strict=True)]))
    return ConditioningMetric(name, target, classifier.names, tuple(map(tuple, matrix.tolist())), stayed)


def generate_songs(
    engine: ComposeEngine, jobs: Sequence[SongJob], config: ConditioningConfig, say: Callable[[str], None]
) -> list[np.ndarray]:
    """Each job's song, sampled from nothing, a batch per label."""
    settings = SamplingSettings(config.temperature, guidance=config.guidance)
    n_new, total = frames(engine, config.seconds), max(config.song_seconds, config.seconds)
    songs: list[np.ndarray] = [np.zeros(0, np.int64)] * len(jobs)
    groups = label_groups(jobs)
    for done, members in enumerate(groups, 1):
        job = jobs[members[0]]
        spec = LabelSpec(job.artist, job.genre, total_seconds=total)
        seeds = [jobs[i].seed for i in members]
        drawn = generate_codes(engine, np.zeros(0, np.int64), n_new, seeds, spec, settings)
        for i, song in zip(members, drawn, strict=True):
            songs[i] = song
        say(f"songs: {done}/{len(groups)} labels ({len(members)} x {job.artist}, {job.genre})")
    return songs


def generate_changes(
    engine: ComposeEngine,
    jobs: Sequence[SongJob],
    songs: Sequence[np.ndarray],
    config: ConditioningConfig,
    say: Callable[[str], None],
) -> list[np.ndarray]:
    """Per label, its first song cut at the change and continued with the new artist by each of the
    label's jobs (their change seeds, one batch), up to the end of the clip heard after the change."""
    settings = SamplingSettings(config.temperature, guidance=config.guidance)
    change_at = frames(engine, config.change_at_seconds)
    n_new = frames(engine, config.after_change_seconds) + frames(engine, config.clip_seconds)
    heard_until = config.change_at_seconds + config.after_change_seconds + config.clip_seconds
    changed: list[np.ndarray] = [np.zeros(0, np.int64)] * len(jobs)
    groups = label_groups(jobs)
    for done, members in enumerate(groups, 1):
        job = jobs[members[0]]
        spec = LabelSpec(job.new_artist, job.genre, total_seconds=max(config.song_seconds, heard_until))
        history = songs[members[0]][:change_at]
        seeds = [jobs[i].change_seed for i in members]
        for i, codes in zip(
            members, generate_codes(engine, history, n_new, seeds, spec, settings), strict=True
        ):
            changed[i] = codes
        say(f"artist changes: {done}/{len(groups)} labels ({job.artist} -> {job.new_artist})")
    return changed


def evaluate_conditioning(
    engine: ComposeEngine,
    config: ConditioningConfig = ConditioningConfig(),
    say: Callable[[str], None] = print,
) -> ConditioningReport:
    """The whole evaluation (module docstring): reference classifiers, generated songs, artist changes."""
    started = time.monotonic()
    artists, genres = corpus_labels(engine)
    skipped = [a.name for a in ARTISTS if a.name not in artists]
    skipped += [g.name for g in GENRES if g.name not in genres]
    if skipped:
        say(f"model {engine.name} does not know {', '.join(skipped)}: evaluating without them")
    hop = engine.bundle.vqvae.hop_lengths[-1]
    reference = build_reference(config, artists, genres, engine.sample_rate, hop, engine, say)
    absent = [name for name in (*artists, *genres) if name not in {*reference.artist, *reference.genre}]
    if absent:
        raise ValueError(
            f"the {config.reference_songs} reference songs have no song of {', '.join(absent)} in the "
            "artists and genres the model knows; use more reference songs (--cond-reference-songs)"
        )
    fitted = {task: fit_reference(reference, task) for task in ("artist", "genre")}
    artist_clf, genre_clf = fitted["artist"].classifier, fitted["genre"].classifier

    jobs = plan_songs(config, artists, genres)
    songs = generate_songs(engine, jobs, config, say)
    n_song, n_clip = frames(engine, config.seconds), frames(engine, config.clip_seconds)
    starts = list(range(frames(engine, config.listen_from_seconds), n_song - n_clip + 1, n_clip))
    every = [starts] * len(songs)
    features = song_features(engine, songs, every, n_clip)
    truths = {"artist": [job.artist for job in jobs for _ in starts],
              "genre": [job.genre for job in jobs for _ in starts]}  # fmt: skip
    artist = metric("artist", ARTIST_TARGET, artist_clf, truths["artist"], artist_clf.predict(features))
    genre = metric("genre", GENRE_TARGET, genre_clf, truths["genre"], genre_clf.predict(features))
    real_fit = {task: fitted[task].on_real.share_named(features, truth) for task, truth in truths.items()}

    changed = generate_changes(engine, jobs, songs, config, say)
    change_at = frames(engine, config.change_at_seconds)
    heard = change_at + frames(engine, config.after_change_seconds)
    predicted = classify_songs(engine, artist_clf, changed, [[heard]] * len(changed), n_clip)
    change = metric("artist change", CHANGE_TARGET, artist_clf, [job.new_artist for job in jobs], predicted,
                    previous=[job.artist for job in jobs])  # fmt: skip

    sampled = sum(map(len, songs)) + sum(len(c) - change_at for c in changed)
    generated_bits = [clip_code_bits(song[s : s + n_clip]) for song in songs for s in starts]
    return ConditioningReport(
        model=str(engine.bundle.folder),
        sample_rate=engine.sample_rate,
        settings=asdict(config) | {"beat_clock": engine.has_beat_clock},
        reference_songs=reference.songs,
        classifiers=(fitted["artist"].check, fitted["genre"].check),
        artist=artist,
        genre=genre,
        change=change,
        generated_seconds=sampled / engine.codes_per_second,
        wall_seconds=time.monotonic() - started,
        variety=Variety(float(np.mean(reference.code_bits)), float(np.mean(generated_bits))),
        fitted_on_real=FittedOnReal(real_fit["artist"], real_fit["genre"]),
    )
