"""One-shot generation: N songs from names (and optionally a prime) straight to WAV files, no project kept.

`cocompose generate --out DIR` lands here. It runs the very path the app and the project verbs run: a
project in a temporary folder, the `ComposeService`, and the same requests (`GenerateRequest` for each
stretch of music, the project's conditioning change between stretches, `RenderRequest` for the audio).
So the one-shot and a project composed by hand with the same seeds, lengths and changes hold the same
codes, and one fix reaches both. The temporary project is deleted at the end.

A song is cut into sections at the `--change` times. Section k of branch i is one take, generated after
section k - 1 with seed `seed + i` and carrying section k's conditioning (`generate --artist/--genre` in
a project does the same), so it is sampled and later upsampled in that voice. Times of changes count
from the start of the new music (after the prime); the manifest gives every section's times in the
written file too.

Audio: mono 32-bit float WAV at the model's rate, the decoder's output untouched (no loudness change,
no dither, no clipping), written atomically by the export module.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import itertools
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cocompose.service.requests import (
    MAX_BRANCHES,
    GenerateRequest,
    RenderRequest,
    SamplingParams,
    check_seconds,
    check_seed,
)
from cocompose.song import Codes, Conditioning, ModelInfo
from cocompose.song.records import Tempo
from cocompose.store import Project

if TYPE_CHECKING:
    from cocompose.service import ComposeService
    from engine.api import ComposeEngine

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "cocompose-oneshot"
MANIFEST_VERSION = 1

# runner(service, request, what) -> the job's result; the CLI passes one that prints progress.
Runner = Callable[["ComposeService", Any, str], Any]


@dataclass(frozen=True)
class Change:
    """From `at_s` seconds into the new music on, these names (None: keep the one in force)."""

    at_s: float
    artist: str | None = None
    genre: str | None = None
    tempo: Tempo | None = None


def parse_change(text: str) -> Change:
    """'SECONDS:artist=NAME[,genre=NAME][,tempo=BPM[/BEATS]]' (any of the keys) -> Change; ValueError
    saying what is wrong."""
    when, sep, rest = text.partition(":")
    usage = (
        "a change is SECONDS:artist=NAME[,genre=NAME][,tempo=BPM[/BEATS]] (e.g. 12.5:artist=Bo Noise), "
        f"not {text!r}"
    )
    try:
        at_s = float(when)
    except ValueError:
        raise ValueError(usage) from None
    if not sep or not rest.strip():
        raise ValueError(usage)
    names: dict[str, str] = {}
    for item in rest.split(","):
        key, eq, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not eq or key not in ("artist", "genre", "tempo") or not value:
            raise ValueError(f"{usage} ({item.strip()!r} is not artist=NAME, genre=NAME or tempo=BPM)")
        if key in names:
            raise ValueError(f"{usage} ({key} is given twice)")
        names[key] = value
    tempo = Tempo.parse(names["tempo"]) if "tempo" in names else None
    return Change(at_s, names.get("artist"), names.get("genre"), tempo)


@dataclass(frozen=True)
class Section:
    """Codes [start, end) of the new music (0 = the first code after the prime) and their conditioning."""

    start: int
    end: int
    conditioning: Conditioning


def plan_sections(
    base: Conditioning, n_codes: int, codes_per_second: float, changes: tuple[Change, ...]
) -> tuple[Section, ...]:
    """The sections of `n_codes` new codes cut at the changes (each rounded to the nearest code).

    Every change must fall strictly inside the new music and at least one code after the one before it,
    so every section holds at least one code."""
    seconds = n_codes / codes_per_second
    bounds, conditionings = [0], [base]
    for change in sorted(changes, key=lambda c: c.at_s):
        if not 0.0 < change.at_s < seconds:
            raise ValueError(
                f"the change at {change.at_s:g} s is outside the song: changes must lie inside "
                f"(0, {seconds:g}) s, counted from the start of the new music"
            )
        at = round(change.at_s * codes_per_second)
        if at <= bounds[-1] or at >= n_codes:
            where = "the start" if len(bounds) == 1 else "the change before it"
            raise ValueError(
                f"the change at {change.at_s:g} s is less than one code ({1 / codes_per_second:.4f} s) "
                f"from {where} or from the end; move it"
            )
        previous = conditionings[-1]
        conditionings.append(
            replace(
                previous,
                artist=change.artist or previous.artist,
                genre=change.genre or previous.genre,
                tempo=change.tempo or previous.tempo,
            )
        )
        bounds.append(at)
    bounds.append(n_codes)
    return tuple(Section(a, b, c) for a, b, c in zip(bounds[:-1], bounds[1:], conditionings, strict=True))


@dataclass(frozen=True)
class OneShotRequest:
    """Everything one `generate --out` run needs, checked on creation."""

    out: Path
    conditioning: Conditioning
    seconds: float
    branches: int
    seed: int
    sampling: SamplingParams = field(default_factory=SamplingParams)
    changes: tuple[Change, ...] = ()
    prime: Path | None = None
    prime_seconds: float | None = None
    upsample: bool = False
    upsample_seed: int = 0
    overwrite: bool = False
    model_label: str = ""  # what the user called the model (--model), for the manifest

    def __post_init__(self) -> None:
        check_seconds(self.seconds)
        if not 1 <= self.branches <= MAX_BRANCHES:
            raise ValueError(f"ask for 1 to {MAX_BRANCHES} branches, not {self.branches}")
        check_seed(self.seed)
        check_seed(self.seed + self.branches - 1)
        check_seed(self.upsample_seed)
        if self.prime_seconds is not None:
            check_seconds(self.prime_seconds, "--prime-seconds")
            if self.prime is None:
                raise ValueError("--prime-seconds trims a prime; give the audio with --prime FILE")
        times = sorted(c.at_s for c in self.changes)
        for a, b in itertools.pairwise(times):
            if a == b:
                raise ValueError(f"two changes at {a:g} s; give one change per time")

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(self.seed + i for i in range(self.branches))


@dataclass(frozen=True)
class BranchResult:
    path: Path
    seed: int
    duration_s: float
    codes: np.ndarray = field(repr=False)  # the whole song's top-level codes (prime included)


@dataclass(frozen=True)
class OneShotResult:
    branches: tuple[BranchResult, ...]
    manifest: Path


def check_out_folder(out: Path, overwrite: bool) -> None:
    """Refuse a file, or a folder that already holds something (unless overwrite): never clobber."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file; give a folder to write the songs into")
    if out.is_dir() and not overwrite:
        present = sorted(p.name for p in out.iterdir())
        if present:
            shown = ", ".join(present[:3]) + (", ..." if len(present) > 3 else "")
            raise ValueError(
                f"--out {str(out)!r} already has {len(present)} file(s) ({shown}); choose an empty or new "
                "folder, or pass --overwrite to replace files of the same names (others stay)"
            )


def branch_file_name(index: int, seed: int) -> str:
    return f"branch-{index + 1:02d}-seed-{seed}.wav"


def wait_for(service: ComposeService, request, what: str) -> Any:
    """The plain runner: wait for the job; Ctrl-C cancels it (what was drawn is kept) and is re-raised."""
    handle = service.submit(request)
    try:
        return handle.wait()
    except KeyboardInterrupt:
        handle.cancel()
        with contextlib.suppress(Exception):  # JobCancelled, or a timeout: the interrupt is what counts
            handle.wait(60)
        raise


def generate_oneshot(
    request: OneShotRequest,
    engine: ComposeEngine,
    *,
    runner: Runner = wait_for,
    say: Callable[[str], None] = lambda message: None,
) -> OneShotResult:
    """Sample the branches, render each (preview decode, or all three levels with upsample) to a WAV in
    request.out, then write the manifest. Bad input raises ValueError before any work is done."""
    from cocompose.service.runners import label_spec

    check_out_folder(request.out, request.overwrite)
    cps = engine.codes_per_second
    n_codes = max(1, round(request.seconds * cps))  # as the service rounds a take's length
    sections = plan_sections(request.conditioning, n_codes, cps, request.changes)
    for section in sections:
        engine.check_names(label_spec(section.conditioning, request.seconds))
    if request.upsample and not engine.can_upsample:
        raise ValueError(f"the model {engine.name} has no upsamplers; leave out --upsample")

    prime_codes, kept_audio, kept_name, prime_notes = Codes(), None, "", ()
    if request.prime is not None:
        from cocompose.audio_import import import_audio

        # The importer `cocompose prime` and the app use: same samples, so the same codes.
        prime = import_audio(request.prime, engine.sample_rate, max_seconds=request.prime_seconds)
        for note in prime.notes:
            say(f"note: {note}")
        codes = engine.encode_prime(prime.samples, prime.sample_rate)
        if len(codes) == 0:
            raise ValueError(f"the prime {str(request.prime)!r} is shorter than one code; use a longer file")
        prime_codes, kept_audio, kept_name = Codes.of(codes), prime.kept_audio, prime.kept_name
        prime_notes = prime.notes
        say(f"primed with {request.prime.name}: {len(codes)} codes, {len(codes) / cps:.2f} s")
        from cocompose.riff_tempo import primed_conditioning

        start, heard = primed_conditioning(engine, prime.samples, prime.sample_rate, request.conditioning)
        if heard:
            say(heard)
        if start is not None:  # the riff's tempo holds for the whole song, through changes of voice
            sections = plan_sections(start, n_codes, cps, request.changes)

    request.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cocompose-oneshot-") as scratch:
        project = Project.create(
            Path(scratch) / "oneshot.cocompose",
            conditioning=sections[0].conditioning,
            planned_seconds=(len(prime_codes) + n_codes) / cps,
            model=ModelInfo(engine.name, engine.model_hash, engine.sample_rate, cps),
            prime_codes=prime_codes if len(prime_codes) else None,
            prime_audio=kept_audio,
            prime_audio_name=kept_name,
        )
        with project:
            from cocompose.service import ComposeService

            service = ComposeService(project, engine)
            try:
                leaves = _sample(service, request, sections, cps, runner)
                branches = _render(service, engine, request, leaves, runner, say)
            finally:
                service.close()
    manifest = _write_manifest(request, engine, sections, len(prime_codes), prime_notes, branches)
    say(f"wrote {manifest}")
    return OneShotResult(tuple(branches), manifest)


def _sample(service, request: OneShotRequest, sections, cps: float, runner: Runner) -> list[int]:
    """Sample every section of every branch; returns each branch's last take."""
    sampling, n = request.sampling, request.branches
    first = sections[0]
    # Lengths go in as codes / cps, which the service rounds back to exactly that many codes.
    what = f"sampling {n} x {(first.end - first.start) / cps:.2f} s"
    leaves = list(runner(service, GenerateRequest(1, (first.end - first.start) / cps, request.seeds,
                                                  sampling, previews=False), what))  # fmt: skip
    for k, section in enumerate(sections[1:], start=2):
        for i, seed in enumerate(request.seeds):
            take = GenerateRequest(leaves[i], (section.end - section.start) / cps, (seed,), sampling,
                                   previews=False, conditioning=section.conditioning)  # fmt: skip
            what = f"branch {i + 1}/{n}, section {k}/{len(sections)} ({section.conditioning.artist})"
            (leaves[i],) = runner(service, take, what)
    return leaves


def _render(service, engine, request: OneShotRequest, leaves, runner: Runner, say) -> list[BranchResult]:
    from cocompose.export import ExportSettings, TrackTags, export_track

    quality = "upsampled" if request.upsample else "preview"
    # The decoder's output as it is: float samples need no dither or clipping, and no loudness change.
    settings = ExportSettings(format="wav", loudness_lufs=None, true_peak_dbtp=None, bit_depth="float")
    results = []
    for i, (leaf, seed) in enumerate(zip(leaves, request.seeds, strict=True)):
        what = f"rendering branch {i + 1}/{request.branches} ({quality})"
        audio, rate = runner(service, RenderRequest(leaf, quality=quality, seed=request.upsample_seed), what)
        codes = service.read(lambda p, leaf=leaf: p.tree.path_codes(leaf).to_numpy())
        tags = TrackTags(title=f"{request.out.name} branch {i + 1} (seed {seed})",
                         artist=request.conditioning.artist, genre=request.conditioning.genre)  # fmt: skip
        path = request.out / branch_file_name(i, seed)
        written = export_track(audio, rate, path, settings, tags=tags)
        say(f"wrote {path} ({written.duration_s:.2f} s at {written.sample_rate} Hz)")
        results.append(BranchResult(path, seed, written.duration_s, codes))
    return results


def manifest_document(
    request: OneShotRequest,
    engine,
    sections,
    prime_codes: int,
    prime_notes: tuple[str, ...],
    branches: list[BranchResult],
) -> dict:
    """What the manifest says: the model, the settings, the prime, and per branch its file, seed, length
    and conditioning sections (times in the written file, where the prime, if any, comes first)."""
    cps = engine.codes_per_second
    hop = round(engine.sample_rate / cps)

    def at(code: int) -> float:
        return (prime_codes + code) * hop / engine.sample_rate

    timeline = [
        {
            "start_s": at(s.start),
            "end_s": at(s.end),
            "artist": s.conditioning.artist,
            "genre": s.conditioning.genre,
            "lyrics": s.conditioning.lyrics,
            **_beat(engine, s.conditioning),
        }
        for s in sections
    ]
    if prime_codes:
        timeline[0]["start_s"] = 0.0  # the prime is conditioned on the base names too
    prime = None
    if request.prime is not None:
        prime = {
            "file": str(request.prime.resolve()),
            "name": request.prime.name,
            "sha256": _sha256(request.prime),
            "seconds": prime_codes * hop / engine.sample_rate,
            "codes": prime_codes,
            "max_seconds": request.prime_seconds,
            "notes": list(prime_notes),
        }
    s = request.sampling
    guide = engine.bundle.render_guide if request.upsample else None
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "model": {
            "requested": request.model_label,
            "name": engine.name,
            "folder": str(Path(engine.bundle.folder).resolve()),
            "top": engine.bundle.top_name,
            "hash": engine.model_hash,
            "decoder_hash": engine.decoder_hash,
            "sample_rate": engine.sample_rate,
            "codes_per_second": cps,
        },
        "settings": {
            "seconds": request.seconds,
            "new_codes": sections[-1].end,
            "branches": request.branches,
            "seed": request.seed,
            "temperature": s.temperature,
            "top_k": s.top_k,
            "top_p": s.top_p,
            "guidance": s.guidance,
            "changes": [
                {"at_s": c.at_s, "artist": c.artist, "genre": c.genre}
                for c in sorted(request.changes, key=lambda c: c.at_s)
            ],
            "render": "upsampled" if request.upsample else "preview",
            "upsample_seed": request.upsample_seed if request.upsample else None,
            "render_guide": guide.to_dict() if guide is not None else None,
            "audio": "WAV, mono, 32-bit float, "
            + (
                "the bottom decoder's output drawn toward its preview's band envelope (render_guide)"
                if guide is not None
                else "the decoder's output unchanged"
            ),
        },
        "notes": [
            "the upsamplers follow the sections: each of their windows takes the names of the section "
            "under most of its new codes, so a render's voice changes within one upsampler window of each "
            "change"
        ]
        if request.upsample and len(sections) > 1
        else [],
        "prime": prime,
        "branches": [
            {
                "file": b.path.name,
                "seed": b.seed,
                "duration_s": b.duration_s,
                "top_codes": len(b.codes),
                "sections": timeline,
            }
            for b in branches
        ],
    }


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _beat(engine, conditioning: Conditioning) -> dict:
    """The tempo and metre a section was sampled at, for a model with a beat clock (named, or its genre's
    usual ones); nothing for other models."""
    from cocompose.service.runners import label_spec

    clock = engine.beat_clock(label_spec(conditioning, 0.0))
    if clock is None:
        return {}
    tempo = conditioning.tempo
    beat = {"tempo_bpm": clock.tempo_bpm, "beats_per_bar": clock.beats_per_bar}
    beat["tempo_named"] = tempo is not None and not tempo.from_riff
    if tempo is not None and tempo.from_riff:
        beat["tempo_from_riff"] = True
        beat["first_bar_line_s"] = tempo.downbeat_seconds
    return beat


def _write_manifest(request: OneShotRequest, engine, sections, prime_codes, prime_notes, branches) -> Path:
    from cocompose.export import atomic

    target = request.out / MANIFEST_NAME
    document = manifest_document(request, engine, sections, prime_codes, prime_notes, branches)
    text = json.dumps(document, indent=2)
    draft = atomic.temporary_beside(target)
    try:
        draft.write_text(text + "\n", encoding="utf-8")
        atomic.make_durable(draft)
        atomic.commit(draft, target)
    except BaseException:
        atomic.discard(draft)
        raise
    return target
