"""What the worker does for each request. Runners run on the worker thread and touch the project only
through `ctx.store` (under the service's lock), one short transaction at a time, so the caller can read
a branch while it is still being sampled."""

from __future__ import annotations

import time

import numpy as np

from cocompose.service.requests import GenerateRequest, PreviewRequest
from cocompose.service.upsampling import run_render, run_upsample
from cocompose.song import Codes, NodeState, Sampling
from cocompose.song.records import Conditioning
from cocompose.store import Project, ProjectError
from engine.api import LabelSpec
from engine.prior.sampler import Cancelled, SamplingSettings

PREVIEW_CONTEXT_S = 1.0  # codes before a take decoded with it, so its preview starts as it sounds in the song


def node_of(request) -> int | None:
    if isinstance(request, GenerateRequest):
        return request.parent_id
    if isinstance(request, PreviewRequest):
        return request.node_id
    return request.leaf_id  # upsample and render


def label_spec(conditioning: Conditioning, total_seconds: float, bar_start_seconds: float = 0.0) -> LabelSpec:
    blend, tempo = conditioning.blend, conditioning.tempo
    return LabelSpec(
        artist=conditioning.artist,
        genre=conditioning.genre,
        lyrics=conditioning.lyrics,
        total_seconds=total_seconds,
        blend_artist=blend.other_artist if blend else None,
        blend_weight=blend.weight if blend else 0.0,
        tempo_bpm=tempo.bpm if tempo else None,
        beats_per_bar=tempo.beats_per_bar if tempo else None,
        bar_start_seconds=bar_start_seconds,
    )


def bar_start_seconds(tree, parent_id: int, conditioning: Conditioning, engine) -> float:
    """Where the beat clock of new takes under `parent_id` starts counting bars: the moment of the song
    since which the beat (the tempo and metre, named or the genre's usual ones) has been the same, so a
    change of tempo starts a new bar where it happens and a change of voice alone keeps the pulse; plus,
    for a riff's tempo, where the riff's first bar line falls after that moment."""
    if not engine.has_beat_clock:
        return 0.0

    def beat(c: Conditioning):
        clock = engine.beat_clock(label_spec(c, 0.0))
        return None if clock is None else clock.slots()[:2]

    def downbeat(c: Conditioning) -> float:
        return c.tempo.downbeat_seconds if c.tempo is not None else 0.0

    at, start, current, in_force, offset = 0, 0, None, None, 0.0
    for node_id in tree.path_to(parent_id):
        node = tree.node(node_id)
        in_force = node.conditioning or in_force  # the root always carries one
        here = beat(in_force)
        if here != current:
            start, current, offset = at, here, downbeat(in_force)
        at += len(node.codes)
    if beat(conditioning) != current:
        start, offset = at, downbeat(conditioning)
    return start / engine.codes_per_second + offset


def _generation_setup(project: Project, request: GenerateRequest, engine):
    tree = project.tree
    if request.parent_id not in tree:
        raise ProjectError(f"Take {request.parent_id} is not in this song (it may have been deleted).")
    history = tree.path_codes(request.parent_id).to_numpy()
    n_new = max(1, round(request.seconds * engine.codes_per_second))
    song_seconds = (len(history) + n_new) / engine.codes_per_second
    inherited = tree.conditioning_at(request.parent_id)
    conditioning = request.conditioning or inherited
    bar_start = bar_start_seconds(tree, request.parent_id, conditioning, engine)
    spec = label_spec(conditioning, max(project.song.planned_seconds, song_seconds), bar_start)
    engine.check_names(spec)
    s = request.sampling
    samplings = [
        Sampling(seed, s.temperature, s.top_k, s.top_p, engine.name, s.guidance) for seed in request.seeds
    ]
    # A new voice is stored on the new takes themselves (a duet from here on), in the same step.
    change = None if conditioning == inherited else conditioning
    ids = project.add_takes(request.parent_id, samplings, conditioning=change)
    return history, n_new, spec, tuple(ids)


def _drawn_codes(project: Project, ids: tuple[int, ...]) -> list[np.ndarray]:
    for node_id in ids:
        if node_id not in project.tree:
            raise ProjectError(
                f"Take {node_id} was deleted while its job was paused, so the job cannot go on."
            )
    return [project.tree.node(i).codes.to_numpy() for i in ids]


def run_generate(ctx, request: GenerateRequest) -> tuple[int, ...]:
    """Sample the branches into new takes, appending each piece as it is drawn; returns the take ids.

    A pause stops the sampler at its next code and leaves the takes in progress; the job keeps what it
    set up in `handle.carry` (the song before the takes, the label, the preview decoders), so the resumed
    run draws exactly what an uninterrupted one would have, after the codes the takes already hold."""
    engine = ctx.engine
    drawn = None
    if ctx.handle.carry is None:
        history, n_new, spec, ids = ctx.store(lambda p: _generation_setup(p, request, engine))
        ctx.announce(ids)
        streams = _start_streams(ctx, history, ids) if request.previews else None
        ctx.handle.carry = (history, n_new, spec, ids, streams)
    else:
        history, n_new, spec, ids, streams = ctx.handle.carry
        drawn = ctx.store(lambda p: _drawn_codes(p, ids))
    s = request.sampling
    settings = SamplingSettings(s.temperature, s.top_k, s.top_p, guidance=s.guidance)
    steps = [0]
    started = time.monotonic()
    max_batch = ctx.service.max_batch

    def progress(done: int, total: int) -> bool:
        return ctx.progress(done / total, "sampling")

    def on_split(size: int) -> None:
        ctx.service.max_batch = size  # later jobs start at the size that fitted
        ctx.progress(ctx.handle.fraction, f"out of memory: sampling {size} branches at a time")

    state: NodeState | None = NodeState.INTERRUPTED
    try:
        for piece in engine.generate(history, n_new, request.seeds, spec, settings, max_batch=max_batch,
                                     progress=progress, on_split=on_split, drawn=drawn):  # fmt: skip
            ctx.store(lambda p, piece=piece: _append(p, ids, piece))
            steps[0] += piece.codes.shape[1]
            if streams is not None:
                _stream_piece(ctx, ids, piece, streams)
        state = NodeState.DONE
    except Cancelled:
        # Paused: the takes stay in progress until the job goes on. Cancelled: the worker ends them.
        state = None
        raise
    finally:
        # A failure keeps every code already drawn; the takes are marked as cut short.
        if state is not None:
            ctx.store(lambda p: _end(p, ids, state))
    if steps[0]:
        ctx.service.seconds_per_step = (time.monotonic() - started) / (steps[0] / len(request.seeds))
    if streams is not None:
        _finish_streams(ctx, ids, streams)
    return ids


def _start_streams(ctx, history: np.ndarray, ids: tuple[int, ...]) -> list:
    """One streaming decoder per new take, with the same song context as its finished preview gets."""
    engine = ctx.engine
    margin = min(len(history), round(PREVIEW_CONTEXT_S * engine.codes_per_second))
    context = history[len(history) - margin :]
    for node_id in ids:
        ctx.service.live.start(node_id, engine.sample_rate)
    return [engine.preview_stream(context) for _ in ids]


def _stream_piece(ctx, ids: tuple[int, ...], piece, streams: list) -> None:
    for row, branch in enumerate(piece.branches):
        ctx.service.live.add(ids[branch], streams[branch].push(piece.codes[row]))
    ctx.announce_audio(tuple(ids[b] for b in piece.branches))


def _finish_streams(ctx, ids: tuple[int, ...], streams: list) -> None:
    """The takes are complete: hand out their last audio and cache each whole preview in the project."""
    engine = ctx.engine
    for node_id, stream in zip(ids, streams, strict=True):
        ctx.service.live.add(node_id, stream.finish())
        audio, rate = ctx.service.live.audio(node_id)
        ctx.store(lambda p, n=node_id, a=audio, r=rate: p.put_preview(n, engine.decoder_hash, r, a))
    ctx.announce_audio(ids)


def _append(project: Project, ids: tuple[int, ...], piece) -> None:
    for row, branch in enumerate(piece.branches):
        project.append_codes(ids[branch], Codes.of(piece.codes[row]))


def _end(project: Project, ids: tuple[int, ...], state: NodeState) -> None:
    for node_id in ids:
        if node_id in project.tree and project.tree.node(node_id).state is NodeState.IN_PROGRESS:
            project.end_take(node_id, state)


def abandon_generate(project: Project, handle) -> None:
    """A generation that ends without finishing (cancelled, perhaps while paused, or failed) keeps every
    code drawn; its takes are marked as cut short."""
    _end(project, handle.node_ids, NodeState.INTERRUPTED)


def preview_inputs(project: Project, engine, node_id: int) -> tuple[np.ndarray, int, bool]:
    """(codes to decode, leading codes to drop, final) of a take: a second of song before it is decoded
    too (then dropped), so the preview starts the way the take sounds in the song."""
    tree = project.tree
    if node_id not in tree:
        raise ProjectError(f"Take {node_id} is not in this song (it may have been deleted).")
    node = tree.node(node_id)
    path = tree.path_codes(node_id).to_numpy()
    start = len(path) - len(node.codes)
    margin = min(start, round(PREVIEW_CONTEXT_S * engine.codes_per_second))
    return path[start - margin :], margin, node.state is not NodeState.IN_PROGRESS


def preview_audio(engine, codes: np.ndarray, margin: int) -> tuple[np.ndarray, int]:
    audio, rate = engine.decode_preview(codes)  # outside the project lock: the caller keeps reading
    hop = round(rate / engine.codes_per_second)
    return audio[margin * hop :], rate


def run_preview(ctx, request: PreviewRequest) -> tuple[np.ndarray, int]:
    """The take's preview from the cache, else decoded and cached (a take still growing is not cached)."""
    engine = ctx.engine
    cached = ctx.store(lambda p: p.preview(request.node_id, engine.decoder_hash))
    if cached is not None:
        rate, audio = cached
        return audio, rate
    codes, margin, final = ctx.store(lambda p: preview_inputs(p, engine, request.node_id))
    audio, rate = preview_audio(engine, codes, margin)
    if final:
        ctx.store(lambda p: p.put_preview(request.node_id, engine.decoder_hash, rate, audio))
    return audio, rate


RUNNERS = {"generate": run_generate, "preview": run_preview, "upsample": run_upsample, "render": run_render}
# What the worker does for a job that ends other than done, after its runner stopped (or never ran again).
ABANDON = {"generate": abandon_generate}

__all__ = ["ABANDON", "RUNNERS", "Cancelled", "label_spec", "node_of", "preview_audio", "preview_inputs"]
