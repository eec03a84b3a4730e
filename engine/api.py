"""The engine's façade for the app (STYLE habit 12): numpy in, numpy (+ sample rate) out.

`ComposeEngine` wraps a `ModelBundle` and offers what co-composition needs: encode a prime, decode a
fast preview, build labels from names (with suggestions for unknown ones), stream N continuations of a
song, upsample a stretch window by window, decode the bottom level. Callers never touch torch.

Streaming generation. The top level is sampled window by window, as the reference's co-composition does:
a window keeps half a context of the song as its prefix and adds up to half a context of new codes.
Inside a window the new codes come out in pieces (`stream_tokens` each) through the sampler's `resume`,
so a branch is playable after its first piece while the window is computed only once. Window w of
branch b draws from a generator seeded by `window_seed(seed_b, level, start_w)`, so a branch's codes
depend only on its seed, the song before it and the settings: the same whatever N it was sampled with,
and whatever batch split an out-of-memory retry chose.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.analysis.beat import MAX_BPM as MAX_RIFF_BPM
from engine.analysis.beat import MIN_BPM as MIN_RIFF_BPM
from engine.analysis.beat import estimate_beat, metre_on_grid
from engine.bundle import ModelBundle
from engine.lyric_progress import LyricProgress
from engine.preview_stream import StreamingPreview
from engine.prior.labels import Label, blend_rows, build_label, check_blend_weight, with_blend
from engine.prior.sampler import Cancelled, SamplingSettings, branch_generators, sample
from engine.prior.tempo import BeatClock
from engine.prior.text import lyrics_vocab
from engine.render_guide import guide_render
from engine.sampling.alignment import get_alignment
from engine.sampling.drivers import window_labels, window_seed
from engine.sampling.upsample import LabelTrack, upsample

Progress = Callable[[int, int], bool | None]  # (done, total) -> False cancels


@dataclass(frozen=True)
class LabelSpec:
    """What the prior is told about the song, in names (the store's Conditioning, flattened).

    blend_artist/blend_weight: an artist blend, the artist embedding (1 - w) * e(artist) + w * e(blend),
    which gives new voices between two known ones; w = 0 is plain `artist`, w = 1 plain `blend_artist`.

    tempo_bpm/beats_per_bar/bar_start_seconds: the beat clock, for a model whose top prior has one
    (`engine.prior.beat_clock`; others ignore it). None is the genre's usual tempo or metre in the model's
    training songs; bar_start_seconds is a moment of the song where a bar starts.
    """

    artist: str
    genre: str
    lyrics: str = ""
    total_seconds: float = 60.0
    blend_artist: str | None = None
    blend_weight: float = 0.0
    tempo_bpm: float | None = None
    beats_per_bar: int | None = None
    bar_start_seconds: float = 0.0


@dataclass(frozen=True)
class RiffBeat:
    """A prime's beat as heard in it, or a count-in's with the metre heard (`ComposeEngine.riff_beat`)."""

    tempo_bpm: float  # as heard, to a tenth of a beat per minute (a count-in's: exactly)
    beats_per_bar: int  # 3 or 4 as heard, the genre's usual metre unless the riff clearly plays another
    downbeat_seconds: float  # the first bar line, from the prime's first sample


def _prime_samples(audio: np.ndarray, sample_rate: int, max_seconds: float | None, dtype) -> np.ndarray:
    """A prime as every reader of it takes it: mono, finite, and only its first max_seconds."""
    audio = np.asarray(audio, dtype=dtype)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if audio.ndim != 1 or audio.size == 0 or not np.isfinite(audio).all():
        raise ValueError("the prime must be non-empty, finite mono or multi-channel audio")
    if max_seconds is not None:
        audio = audio[: int(max_seconds * sample_rate)]
    return audio


SpecChanges = Sequence[tuple[int, LabelSpec]]  # (first top-level code, spec in force from there on)


@dataclass(frozen=True)
class Piece:
    """New codes of some branches: `codes[i]` continues branch `branches[i]`."""

    branches: tuple[int, ...]
    codes: np.ndarray  # (len(branches), k) int64


# The lyric alignment is read window by window with the hop the generation uses (half a context), so
# each code's attention comes from a window like the one it was sampled in.
ALIGNMENT_HOP = 0.5


def is_out_of_memory(exc: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", None)
    return (oom is not None and isinstance(exc, oom)) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc)
    )


def window_schedule(have: int, remaining: int, n_ctx: int) -> tuple[int, int]:
    """(start, new tokens) of the next top-level window when `have` codes exist and `remaining` are wanted.

    The first context fills from 0; after that a window keeps n_ctx - new codes of prefix, and adds at most
    half a context (the reference's hop of 0.5), so every new code sees at least half a window of song.
    """
    hop = max(1, n_ctx // 2)
    if have + remaining <= n_ctx:
        return 0, remaining
    if have < n_ctx - hop:
        return 0, n_ctx - have
    new = min(remaining, hop)
    return have - (n_ctx - new), new


# Top priors up to this width sample fastest on one CPU thread: a KV-cached step is a chain of small
# operations whose cost is per-call overhead, and a second thread only adds synchronisation. Measured with
# the default model (width 192): 4 branches x 10 s in 3.7 s on one thread, 7.6 s on two
# (benchmarks/compose_speed.py, docs/PERFORMANCE.md). It also leaves a core for the GUI and audio.
ONE_THREAD_MAX_WIDTH = 1024


def cpu_threads_for(width: int, device: torch.device) -> int:
    """Threads to use for a top prior of this width: 1 for small models on a CPU, else 0 (torch's own)."""
    return 1 if device.type == "cpu" and width <= ONE_THREAD_MAX_WIDTH else 0


class ComposeEngine:
    def __init__(self, bundle: ModelBundle):
        self.bundle = bundle

    @classmethod
    def load(
        cls, folder: str | Path, top: str | None = None, device=None, dtype=None, threads: int | None = None
    ) -> ComposeEngine:
        """Load a model folder. threads: torch's CPU threads for this process; None picks them for the
        model (see `cpu_threads_for`), 0 leaves torch's setting alone."""
        engine = cls(ModelBundle.load(folder, top=top, device=device, dtype=dtype))
        if threads is None:
            threads = cpu_threads_for(engine.bundle.top.config.width, engine._device())
        if threads:
            torch.set_num_threads(threads)
        return engine

    # -- facts ----------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def sample_rate(self) -> int:
        return self.bundle.sample_rate

    @property
    def codes_per_second(self) -> float:
        return self.bundle.codes_per_second

    @property
    def model_hash(self) -> str:
        return self.bundle.fingerprints["top"]

    @property
    def decoder_hash(self) -> str:
        return self.bundle.fingerprints["vqvae"]

    @property
    def n_ctx(self) -> int:
        return self.bundle.top.config.n_ctx

    @property
    def recommended_guidance(self) -> float:
        """The label guidance the model was measured with (its bundle.json), 0 when it names none: the
        strength to sample the top level with unless the musician chooses another."""
        return self.bundle.recommended_guidance

    @property
    def can_upsample(self) -> bool:
        return self.bundle.upsamplers is not None

    def min_upsample_codes(self) -> int:
        """Fewest top-level codes the upsamplers can render (each needs one full window of its level)."""
        top_hop = self.bundle.vqvae.hop_lengths[-1]
        ups = self.bundle.upsamplers or []
        return max((-(-up.config.n_ctx * up.config.raw_to_tokens // top_hop) for up in ups), default=1)

    def memory_per_branch(self) -> int:
        """Bytes of KV cache one branch holds while the top prior samples (keys + values, every layer)."""
        cfg = self.bundle.top.config.transformer
        itemsize = self.bundle.top.prior.transformer.compute_dtype.itemsize
        return 2 * cfg.depth * cfg.n_ctx * cfg.n_state * itemsize

    def weights_bytes(self) -> int:
        models = [self.bundle.vqvae, self.bundle.top, *(self.bundle.upsamplers or [])]
        return sum(p.numel() * p.element_size() for m in models for p in m.parameters())

    # -- names and labels -------------------------------------------------------------------------
    def _names(self, level: int | None = None):
        return self.bundle.names[self.bundle.top.config.level if level is None else level]

    def artists(self) -> list[str]:
        return sorted(self._names().artists._ids)

    def genres(self) -> list[str]:
        return sorted(self._names().genres._ids)

    def suggest_artist(self, name: str) -> list[str]:
        return self._names().artists.suggest(name)

    def suggest_genre(self, name: str) -> list[str]:
        return self._names().genres.suggest(name)

    def check_names(self, spec: LabelSpec) -> None:
        """ValueError naming the nearest known names when an artist or genre word is unknown."""
        names = self._names()
        for artist in filter(None, (spec.artist, spec.blend_artist)):
            if artist not in names.artists:
                near = names.artists.suggest(artist)
                hint = f"; nearest: {', '.join(near)}" if near else "; see the model's artist list"
                raise ValueError(f"unknown artist {artist!r}{hint}")
        for word in names.genre_words(spec.genre):
            if names.genres.id_of_key(word) == 0 and word != "unknown":
                near = names.genres.suggest(word)
                hint = f"; nearest: {', '.join(near)}" if near else "; see the model's genre list"
                raise ValueError(f"unknown genre {word!r}{hint}")
        check_blend_weight(spec.blend_weight)
        self.beat_clock(spec)  # a tempo or metre out of range says so here

    def label(self, spec: LabelSpec, offset_samples: int = 0, prior=None) -> Label | None:
        """The label of one item for `prior` (default: the top prior) at an offset into the song."""
        prior = prior or self.bundle.top
        config = self.bundle.label_config(prior)
        if config is None:
            return None
        total = int(spec.total_seconds * self.sample_rate)
        timing = prior.config.labels
        if timing.include_timing and timing.max_duration is not None:
            # The timing embedding only covers [min, max] duration; stay inside it as training did.
            low, high = (int(d * self.sample_rate) for d in (timing.min_duration, timing.max_duration))
            total = min(max(total, low), high - 1)
        total = max(total, offset_samples + 1)
        names = self._names(prior.config.level)
        clock = self.beat_clock(spec) if config.beat_clock else None
        label = build_label(config, names, spec.artist, spec.genre, spec.lyrics, total, offset_samples, clock)
        if spec.blend_artist:
            label = with_blend(label, names.artist_id(spec.blend_artist), spec.blend_weight)
        return label

    # -- beat clock -------------------------------------------------------------------------------
    @property
    def has_beat_clock(self) -> bool:
        """The top prior takes a tempo and a metre (`LabelSpec.tempo_bpm`, `beats_per_bar`)."""
        labels = self.bundle.top.config.labels
        return labels is not None and labels.beat_clock

    def genre_tempo(self, genre: str) -> tuple[float, int] | None:
        """(tempo in bpm, beats per bar) the model plays `genre` at when none is named; None if unknown."""
        return self.bundle.genre_tempi.get(genre.lower()) if self.has_beat_clock else None

    def usual_beat(self, genre: str) -> tuple[float | None, int]:
        """(the genre's usual tempo or None, its usual beats per bar, else 4)."""
        return self.genre_tempo(genre) or (None, 4)

    def beat_clock(self, spec: LabelSpec) -> BeatClock | None:
        """The clock a spec's songs are sampled with: its own tempo and metre, else the genre's usual ones;
        None for a model without a clock, or when neither a tempo nor the genre's tempo is known (the
        prior then plays as one that never heard of a clock). ValueError for a tempo out of range."""
        if not self.has_beat_clock:
            return None
        usual_tempo, usual_per_bar = self.usual_beat(spec.genre)
        tempo = usual_tempo if spec.tempo_bpm is None else spec.tempo_bpm
        if tempo is None:
            return None
        per_bar = spec.beats_per_bar or usual_per_bar
        most = self.bundle.top.config.labels.bar_beats
        if per_bar > most:
            raise ValueError(f"this model knows bars of at most {most} beats, not {per_bar}")
        anchor = round(float(spec.bar_start_seconds) * self.sample_rate)
        return BeatClock(tempo, per_bar, anchor)

    # -- lyrics -----------------------------------------------------------------------------------
    @property
    def sings_lyrics(self) -> bool:
        """The top prior is conditioned on lyrics and has an alignment head to say where it sings."""
        cfg = self.bundle.top.config
        return bool(cfg.n_tokens) and cfg.alignment_layer is not None and cfg.labels is not None

    def lyric_progress(self, codes: np.ndarray, spec: LabelSpec | SpecChanges) -> LyricProgress | None:
        """Where in the lyrics each of the top-level codes (K,) sings, from the argmax of the top prior's
        alignment (`engine.sampling.alignment.get_alignment`, one pass per distinct spec over the whole
        song); None for a model that sings no lyrics. spec: as for `upsample` (changes from code 0)."""
        if not self.sings_lyrics:
            return None
        prior = self.bundle.top
        codes = np.asarray(codes, dtype=np.int64)
        changes = self._spec_changes(spec, len(codes))
        vocab = lyrics_vocab(self.bundle.label_config(prior).v3)
        tokens = np.full(len(codes), -1, dtype=np.int64)
        chars = np.full(len(codes), -1, dtype=np.int64)
        ends = [at for at, _ in changes[1:]] + [len(codes)]
        song = torch.from_numpy(codes)[None].to(self._device())
        weights: dict[LabelSpec, np.ndarray] = {}
        for (at, s), end in zip(changes, ends, strict=True):
            label = self.label(s)
            if end <= at or not label.full_tokens:
                continue
            if s not in weights:
                weights[s] = get_alignment(prior, song, [label], ALIGNMENT_HOP)[0]
            attended = weights[s][at:end].argmax(axis=1)
            tokens[at:end] = attended
            chars[at:end] = np.asarray(vocab.source_offsets(s.lyrics), dtype=np.int64)[attended]
        return LyricProgress(tuple((at, s.lyrics) for at, s in changes), tokens, chars)

    # -- audio ------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_prime(
        self, audio: np.ndarray, sample_rate: int, max_seconds: float | None = None
    ) -> np.ndarray:
        """(T,) or (T, C) audio at any rate -> the top-level codes (K,) int64 of its first max_seconds."""
        import soxr

        audio = _prime_samples(audio, sample_rate, max_seconds, np.float32)
        if sample_rate != self.sample_rate:
            audio = soxr.resample(audio, sample_rate, self.sample_rate, quality="VHQ").astype(np.float32)
        x = torch.from_numpy(np.ascontiguousarray(audio))[None].to(self._device())
        return self.bundle.vqvae.encode(x)[-1][0].cpu().numpy()

    def riff_beat(
        self,
        audio: np.ndarray,
        sample_rate: int,
        genre: str,
        max_seconds: float | None = None,
        counted: tuple[float, float] | None = None,
    ) -> RiffBeat | None:
        """The beat of a prime, for a model with a beat clock: its tempo, its metre (the genre's usual one
        unless the riff's bars clearly repeat in the other of 3 and 4 beats), and its first bar line, in
        seconds from the first sample that `encode_prime` (same arguments) encodes. None for a model
        without a clock, or a prime without a steady pulse. `counted`: (bpm, where a beat falls in
        seconds) of a riff played to a count-in: that tempo exactly, a bar line on that beat, and only
        the metre heard."""
        if not self.has_beat_clock:
            return None
        audio = _prime_samples(audio, sample_rate, max_seconds, np.float64)
        usual_tempo, per_bar = self.usual_beat(genre)
        if counted is not None:
            bpm, beat_seconds = counted
            per_bar = metre_on_grid(audio, sample_rate, bpm, beat_seconds, per_bar)
            return RiffBeat(bpm, per_bar, beat_seconds % (per_bar * 60.0 / bpm))
        if usual_tempo is not None and not MIN_RIFF_BPM <= usual_tempo <= MAX_RIFF_BPM:
            usual_tempo = None  # a genre the riff search cannot centre on: search around 120 bpm
        found = estimate_beat(audio, sample_rate, per_bar, usual_tempo, hear_metre=True)
        if found is None:
            return None
        return RiffBeat(round(found.tempo_bpm, 1), found.beats_per_bar, found.downbeat_seconds)

    @torch.no_grad()
    def decode_preview(self, top_codes: np.ndarray) -> tuple[np.ndarray, int]:
        """Top-level codes (K,) -> (mono float32 audio, sample rate) from the fast top decoder (chunked)."""
        return self._decode(top_codes, self.bundle.vqvae.config.levels - 1)

    def preview_stream(self, context: np.ndarray) -> StreamingPreview:
        """A top-level decoder for a take still being sampled; `context` is the song just before it."""
        return StreamingPreview(self.bundle.vqvae, self.bundle.vqvae.config.levels - 1, context)

    @torch.no_grad()
    def decode_bottom(self, bottom_codes: np.ndarray) -> tuple[np.ndarray, int]:
        """Bottom-level codes (the upsampled song) -> (mono float32 audio, sample rate)."""
        return self._decode(bottom_codes, 0)

    def guide_render(self, rendered: np.ndarray, preview: np.ndarray) -> np.ndarray:
        """A render's audio drawn toward its preview's band envelope as the model's makers measured it
        (`engine.render_guide`; the bundle's `render_guide`); a copy of `rendered` for a model without.
        `preview`: the top level's decode of the same codes, from the same first sample."""
        guide = self.bundle.render_guide
        if guide is None:
            return np.asarray(rendered, np.float32).copy()
        return guide_render(rendered, preview, self.sample_rate, guide)

    def _decode(self, codes: np.ndarray, level: int) -> tuple[np.ndarray, int]:
        codes = np.asarray(codes, dtype=np.int64)
        if codes.size == 0:
            return np.zeros(0, np.float32), self.sample_rate
        audio = self.bundle.vqvae.decode(torch.from_numpy(codes)[None].to(self._device()), level)
        return audio[0].float().cpu().numpy().astype(np.float32), self.sample_rate

    def _device(self) -> torch.device:
        return next(self.bundle.vqvae.parameters()).device

    # -- sampling ---------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        history: np.ndarray,
        n_new: int,
        seeds: Sequence[int],
        spec: LabelSpec,
        settings: SamplingSettings,
        *,
        stream_tokens: int | None = None,
        max_batch: int | None = None,
        progress: Progress | None = None,
        on_split: Callable[[int], None] | None = None,
        drawn: Sequence[np.ndarray] | None = None,
    ) -> Iterator[Piece]:
        """Sample n_new top-level codes after `history` (K,) for len(seeds) branches, yielding pieces as
        they are drawn. An out-of-memory error halves the batch and redoes the window (same codes, since
        draws are per branch); on_split(new max batch) reports it. A cancel (progress -> False) yields the
        piece drawn so far and raises Cancelled.

        drawn[b]: the codes branch b already got from a stopped run of the same call (a paused job). They
        are not yielded again: the windows they finish are skipped and the window they end inside is redone
        from its start with its own seeds, so what follows is what the uninterrupted run would have drawn."""
        prior, n = self.bundle.top, len(seeds)
        history = np.asarray(history, dtype=np.int64)
        stream_tokens = stream_tokens or max(1, min(self.n_ctx // 2, round(self.codes_per_second)))
        max_batch = max_batch or n
        total = n * n_new
        label = self.label(spec)
        song = [history.copy() for _ in range(n)]
        if drawn is not None:
            if len(drawn) != n or any(len(d) > n_new for d in drawn):
                raise ValueError(f"drawn must hold at most {n_new} codes for each of the {n} branches")
            song = [np.concatenate([history, np.asarray(d, dtype=np.int64)]) for d in drawn]
        done = [sum(len(s) - len(history) for s in song)]

        def tick(drawn_in_piece: int, rows: int) -> Progress:
            def forward(j: int, _k: int):
                return None if progress is None else progress(done[0] + j * rows, total)

            return forward

        have = len(history)  # codes every branch has once the previous window is complete
        while have - len(history) < n_new:
            start, new = window_schedule(have, n_new - (have - len(history)), self.n_ctx)
            a = 0
            while a < n:
                group = list(range(a, min(n, a + max_batch)))
                if all(len(song[b]) >= have + new for b in group):
                    a += len(group)  # drawn by an earlier run
                    continue
                try:
                    yield from self._window(prior, song, group, seeds, start, have, new, label, settings,
                                            stream_tokens, tick, done)  # fmt: skip
                except Exception as exc:
                    if not is_out_of_memory(exc) or len(group) == 1:
                        raise
                    max_batch = max(1, len(group) // 2)
                    if torch.cuda.is_available():
                        torch.cuda.empty_cache()
                    if on_split is not None:
                        on_split(max_batch)
                    continue  # redo this group's window in smaller batches (already-yielded codes skipped)
                a += len(group)
            have += new

    def _window(self, prior, song, group, seeds, start, have, new, label, settings, stream, tick, done):
        """Sample one window for the branches in `group`, yielding the pieces not yielded before."""
        rows = len(group)
        generators = branch_generators([window_seed(seeds[b], prior.config.level, start) for b in group])
        prefix = torch.from_numpy(np.stack([song[b][start:have] for b in group])).to(self._device())
        y, _ = window_labels(prior, None if label is None else [label], start, rows)
        blend = None if label is None else blend_rows([label] * rows)
        drawn, resume = 0, None
        while drawn < new:
            k = min(stream, new - drawn)
            try:
                if resume is None:
                    result = sample(prior, y, k, seeds=generators, prefix=prefix, settings=settings,
                                    progress=tick(drawn, rows), blend=blend)  # fmt: skip
                else:
                    result = sample(prior, None, k, seeds=generators, resume=resume, settings=settings,
                                    progress=tick(drawn, rows))  # fmt: skip
            except Cancelled as stop:
                if stop.codes is not None and stop.codes.shape[1]:
                    yield from self._emit(song, group, have + drawn, stop.codes.cpu().numpy(), done)
                raise
            resume = result.resume
            yield from self._emit(song, group, have + drawn, result.codes.cpu().numpy(), done)
            drawn += k

    @staticmethod
    def _emit(song, group, at, codes, done) -> Iterator[Piece]:
        """Append a piece to each branch, dropping what an earlier attempt (out of memory, or a stopped run)
        already gave. Branches of a group may be ahead by different amounts after a resume: one piece per
        amount."""
        rows_by_skip: dict[int, list[int]] = {}
        for row, b in enumerate(group):
            skip = max(0, len(song[b]) - at)
            if skip < codes.shape[1]:
                rows_by_skip.setdefault(skip, []).append(row)
        for skip, rows in rows_by_skip.items():
            fresh = codes[rows, skip:]
            for i, row in enumerate(rows):
                song[group[row]] = np.concatenate([song[group[row]], fresh[i]])
            done[0] += fresh.size
            yield Piece(tuple(group[row] for row in rows), fresh)

    @torch.no_grad()
    def upsample(
        self,
        top_codes: np.ndarray,
        spec: LabelSpec | SpecChanges,
        offset_samples: int,
        seed: int,
        finished: Sequence[np.ndarray | None],
        *,
        settings: SamplingSettings | None = None,
        lookahead: float | None = None,
        on_window: Callable[[int, int, np.ndarray], None] | None = None,
        progress: Progress | None = None,
    ) -> list[np.ndarray]:
        """Codes of every lower level for top_codes (K,), index = level. finished[L]: level-L codes already
        made (whole windows, from an interrupted run). on_window(level, first code index, new codes) runs
        after every window, e.g. to save it; raising from it stops the run after that window.

        spec: one LabelSpec for the whole stretch, or its changes [(first top code, spec), ...] starting
        at code 0 (a swap inside the range): each upsampler window is then conditioned on the spec that
        covers most of its new codes (`engine.sampling.upsample.LabelTrack`).
        lookahead: the share of each window left to the next (`engine.sampling.drivers.plan_level`);
        None: the bundle's."""
        if self.bundle.upsamplers is None:
            raise ValueError(f"{self.bundle.folder} has no upsamplers; only previews can be rendered")
        ups, device = self.bundle.upsamplers, self._device()
        changes = self._spec_changes(spec, len(top_codes))
        top_hop = self.bundle.vqvae.hop_lengths[-1]
        labels = [
            LabelTrack(tuple((at * top_hop, [self.label(s, offset_samples, up)]) for at, s in changes))
            if up.config.labels
            else None
            for up in ups
        ]
        codes = [
            None if c is None else torch.from_numpy(np.asarray(c, np.int64))[None].to(device)
            for c in finished
        ]

        def saved(plan, level_codes):
            if on_window is not None:
                new = level_codes[0, plan.tokens_before : plan.tokens_before + plan.new_tokens]
                on_window(plan.level, plan.tokens_before, new.cpu().numpy())

        top = torch.from_numpy(np.asarray(top_codes, np.int64))[None].to(device)
        ahead = self.bundle.upsample_lookahead if lookahead is None else lookahead
        result = upsample(ups, top, labels, seeds=[seed], settings=settings or SamplingSettings(0.99),
                          lookahead_fraction=ahead, codes=codes, progress=progress,
                          on_window=saved)  # fmt: skip
        return [level[0].cpu().numpy() for level in result]

    @staticmethod
    def _spec_changes(spec: LabelSpec | SpecChanges, n_codes: int) -> list[tuple[int, LabelSpec]]:
        if isinstance(spec, LabelSpec):
            return [(0, spec)]
        changes = [(int(at), s) for at, s in spec]
        ats = [at for at, _ in changes]
        if not changes or ats[0] != 0 or ats != sorted(set(ats)) or ats[-1] >= max(1, n_codes):
            raise ValueError(
                f"spec changes must start at code 0 and increase inside the {n_codes} codes: {ats}"
            )
        if not all(isinstance(s, LabelSpec) for _, s in changes):
            raise ValueError("spec changes must be (first code, LabelSpec) pairs")
        return changes
