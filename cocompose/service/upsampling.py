"""Upsampling and rendering a stretch of the song.

Each finished window of each level is saved with `save_upsample_window`, keyed by the leaf, the range
[start, end) of top-level codes and a hash of those codes and their conditioning, so a run cancelled,
preempted or killed resumes at the first missing window; the engine's per-window seeds make the resumed
result equal the uninterrupted one. A swap made after some windows were saved changes the key, so stale
windows are never reused. A background upsampling steps aside (Preempted) after any window when an
interactive job is waiting.

The conditioning follows the path: a stretch that crosses a take carrying a swap (or a blend) is
rendered with each upsampler window conditioned on what is in force under it (see
`engine.sampling.upsample`, which picks the conditioning covering most of the window's new codes).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass

import numpy as np

from cocompose.service.jobs import Preempted
from cocompose.service.requests import RenderRequest, UpsampleRequest
from cocompose.song import Codes, Conditioning, SongTree
from cocompose.store import Project, ProjectError, UpsampleWindow, codes_sha256
from engine.api import LabelSpec


@dataclass(frozen=True)
class Stretch:
    """The top-level codes [start, end) of root..leaf_id, and what they are conditioned on:
    `specs[i] = (first code, spec)`, counted from `start`, the first at 0 (more than one when the
    conditioning changes inside the stretch)."""

    leaf_id: int
    start: int
    end: int
    codes: np.ndarray
    specs: tuple[tuple[int, LabelSpec], ...]

    @property
    def key(self) -> str:
        """Identity of what the stretch renders: its codes and the conditioning along them."""
        specs = json.dumps([[at, asdict(spec)] for at, spec in self.specs], sort_keys=True)
        text = f"{codes_sha256(Codes.of(self.codes))}|{specs}"
        return hashlib.sha256(text.encode()).hexdigest()


def conditioning_changes(tree: SongTree, leaf: int, start: int, end: int) -> list[tuple[int, Conditioning]]:
    """(first code counted from `start`, conditioning) along the codes [start, end) of root..leaf: one
    entry per run of codes under the same conditioning, the first at 0."""
    changes: list[tuple[int, Conditioning]] = []
    at = 0
    for node_id in tree.path_to(leaf):
        n = len(tree.node(node_id).codes)
        if n and at + n > start and at < end:
            conditioning = tree.conditioning_at(node_id)
            if not changes or changes[-1][1] != conditioning:
                changes.append((max(at, start) - start, conditioning))
        at += n
    return changes


def resolve_stretch(project: Project, engine, request, minimum: int = 1) -> Stretch:
    """The codes a request covers, widened to at least `minimum` codes (the upsamplers' shortest input)."""
    from cocompose.service.runners import label_spec

    tree = project.tree
    leaf = tree.current_id if request.leaf_id is None else request.leaf_id
    if leaf not in tree:
        raise ProjectError(f"Take {leaf} is not in this song (it may have been deleted).")
    path = tree.path_codes(leaf).to_numpy()
    cps = engine.codes_per_second
    if len(path) < minimum:
        raise ValueError(f"the song is too short to upsample: it needs at least {minimum / cps:.2f} s")
    start = 0 if request.start_s is None else math.floor(request.start_s * cps)
    end = len(path) if request.end_s is None else min(len(path), math.ceil(request.end_s * cps))
    if start >= len(path):
        raise ValueError(
            f"the range starts at {request.start_s:g} s, after the song ends ({len(path) / cps:.2f} s)"
        )
    end = max(end, min(len(path), start + minimum))
    start = min(start, end - minimum)
    seconds = max(project.song.planned_seconds, len(path) / cps)
    specs = tuple((at, label_spec(c, seconds)) for at, c in conditioning_changes(tree, leaf, start, end))
    return Stretch(leaf, start, end, path[start:end].copy(), specs)


def finished_windows(project: Project, stretch: Stretch, levels: int) -> list[list[np.ndarray]]:
    """Saved windows per level, in order, up to the first gap."""
    out = []
    for level in range(levels):
        rows = [
            w
            for w in project.upsample_windows(stretch.leaf_id, stretch.key, level)
            if w.start_code == stretch.start and w.end_code == stretch.end and w.done
        ]
        rows.sort(key=lambda w: w.window_index)
        windows = []
        for index, window in enumerate(rows):
            if window.window_index != index:
                break
            windows.append(window.codes.to_numpy())
        out.append(windows)
    return out


def run_upsample(ctx, request: UpsampleRequest | RenderRequest) -> list[np.ndarray]:
    """Codes of every level below the top for the stretch, index = level."""
    engine = ctx.engine
    if not engine.can_upsample:
        raise ValueError(f"the model {engine.name} has no upsamplers; export with quality 'preview'")
    minimum = engine.min_upsample_codes()
    stretch = ctx.store(lambda p: resolve_stretch(p, engine, request, minimum))
    levels = len(engine.bundle.upsamplers)
    saved = ctx.store(lambda p: finished_windows(p, stretch, levels))
    finished = [np.concatenate(w) if w else None for w in saved]
    already = sum(len(c) for c in finished if c is not None)

    def on_window(level: int, first: int, codes: np.ndarray) -> None:
        index = len(saved[level])
        window = UpsampleWindow(stretch.leaf_id, stretch.key, stretch.start, stretch.end, level, index,
                                Codes.of(codes), True)  # fmt: skip
        ctx.store(lambda p: p.save_upsample_window(window))
        saved[level].append(codes)
        if ctx.should_yield():
            raise Preempted()

    def progress(done: int, total: int) -> bool:
        return ctx.progress((already + done) / max(1, already + total), "upsampling")

    offset = stretch.start * round(engine.sample_rate / engine.codes_per_second)
    return engine.upsample(stretch.codes, stretch.specs, offset, request.seed, finished,
                           on_window=on_window, progress=progress)  # fmt: skip


def run_render(ctx, request: RenderRequest) -> tuple[np.ndarray, int]:
    """(mono float32 audio, rate) of the stretch at the requested quality."""
    engine = ctx.engine
    if request.quality == "upsampled":
        levels = run_upsample(ctx, request)
        rendered, rate = engine.decode_bottom(levels[0])
        # The upsamplers need a minimum stretch, which may be wider than the range asked for: cut it back.
        wide = ctx.store(lambda p: resolve_stretch(p, engine, request, engine.min_upsample_codes()))
        exact = ctx.store(lambda p: resolve_stretch(p, engine, request))
        audio = engine.guide_render(rendered, engine.decode_preview(wide.codes)[0])
        hop = round(rate / engine.codes_per_second)
        return audio[(exact.start - wide.start) * hop : (exact.end - wide.start) * hop], rate
    stretch = ctx.store(lambda p: resolve_stretch(p, engine, request))
    ctx.progress(0.5, "decoding")
    return engine.decode_preview(stretch.codes)
