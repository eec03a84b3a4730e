"""The song's audio for the player: every take's preview as an AudioSource, and the song up to a take
(root..take) as one AudioSource that keeps growing while a take on it is still being sampled. Qt-free.

Where a take's audio comes from:

* a take still being sampled: `ComposeService.live`, pulled whenever the worker reports new preview audio
  (`grew(node_ids)`), and finished when its job ends (`job_ended(node_ids)`);
* a finished take: the project's preview cache, else decoded here, on the caller's thread, and cached
  (not as a PreviewRequest job: that would wait behind the very generation whose take is to be heard).

Every take's preview is exactly len(codes) x hop samples long, so root..take is the concatenation of the
takes' previews, and one playhead position means the same moment in the song on every sibling's path:
that is what lets the player switch between siblings without moving (A/B by ear).

`rendered(leaf)` is the same path as far as its upsampled render has reached (`cocompose.rendered_audio`).

Threads: `path()` and `rendered()` may wait for a preview job or a decode, so the app calls them on a
worker thread; `grew` and `job_ended` arrive on the service's worker thread. One lock guards the
registry, and every append to a source happens under it, so a path never misses or repeats a piece of a
growing take.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from cocompose.playback import AudioSource
from cocompose.rendered_audio import BottomDecoder, saved_bottom_codes, splice
from cocompose.service.runners import preview_audio, preview_inputs
from cocompose.song import NodeState, SongTree

MAX_PATHS = 12  # paths kept ready (a take's and its siblings'); each is as long as the song so far
MAX_RENDERS = 4  # rendered paths kept (with their decoded render, to decode only what a render adds)


@dataclass(frozen=True)
class PathAudio:
    """The song from its start to the end of one take."""

    node_ids: tuple[int, ...]  # root..take
    source: AudioSource  # may still grow (a take on the path is being sampled)
    take_start: float  # seconds into `source` where the take begins
    take_end: float  # seconds where it ends (so far, for a take still being sampled)
    rendered: float = 0.0  # seconds from the start that are the upsampled render, not the preview

    @property
    def node_id(self) -> int:
        return self.node_ids[-1]


@dataclass(frozen=True)
class _Step:
    node_id: int
    codes: int
    growing: bool


class _Follower:
    """A path's source being fed from its takes' sources, in order."""

    def __init__(self, target: AudioSource, takes: list[AudioSource]) -> None:
        self.target = target
        self.takes = deque(takes)
        self.taken = 0  # frames of takes[0] already copied into target

    def advance(self) -> bool:
        """Copy whatever the takes have that the target lacks; True once the target is complete."""
        while self.takes:
            data, frames, complete = self.takes[0].snapshot()
            if frames > self.taken:
                self.target.append(data[self.taken : frames])
                self.taken = frames
            if not complete:
                return False
            self.takes.popleft()
            self.taken = 0
        self.target.finish()
        return True


def path_steps(tree: SongTree, leaf_id: int) -> list[_Step]:
    if leaf_id not in tree:
        raise LookupError(f"Take {leaf_id} is not in this song (it may have been deleted or undone).")
    return [
        _Step(i, len(tree.node(i).codes), tree.node(i).state is NodeState.IN_PROGRESS)
        for i in tree.path_to(leaf_id)
    ]


class SongAudio:
    """Take and path sources for one service (one project with one model); make a new one for another."""

    def __init__(self, service: Any) -> None:
        self._service = service
        self._engine = service.engine
        self.sample_rate = int(self._engine.sample_rate)
        self.codes_per_second = float(self._engine.codes_per_second)
        self._lock = threading.Lock()
        self._takes: dict[int, AudioSource] = {}
        # Codes each finished take had when its audio was gathered; None for a take heard while sampled.
        # A take whose codes changed since (the start of the song, primed later) is gathered again.
        self._codes: dict[int, int | None] = {}
        self._growing: set[int] = set()
        self._ended: set[int] = set()  # takes whose generation job has finished (in this session)
        self._followers: list[_Follower] = []
        self._paths: OrderedDict[tuple[int, ...], PathAudio] = OrderedDict()
        # Rendered paths: ((the preview spliced on, render key, rendered codes), its decoder, what was made).
        self._renders: OrderedDict[tuple[int, ...], tuple[tuple, BottomDecoder, PathAudio]] = OrderedDict()

    # -- what the worker reports (its thread) ------------------------------------------------------
    def grew(self, node_ids: tuple[int, ...]) -> None:
        """New preview audio of these takes is in service.live."""
        with self._lock:
            for node_id in node_ids:
                if node_id in self._growing:
                    self._pull(node_id, self._takes[node_id])
            self._advance_followers()

    def job_ended(self, node_ids: tuple[int, ...]) -> None:
        """The job sampling these takes has finished (done, failed or cancelled): their audio is complete."""
        with self._lock:
            self._ended.update(node_ids)
            for node_id in node_ids:
                if node_id in self._growing:
                    source = self._takes[node_id]
                    self._pull(node_id, source)
                    source.finish()
                    self._growing.discard(node_id)
                    self._codes[node_id] = None
            self._advance_followers()

    # -- what the app asks (a worker thread of its own: these may wait) -----------------------------
    def take(self, node_id: int) -> AudioSource:
        """The take's own audio (growing while it is sampled)."""
        step = self._service.read(lambda p: path_steps(p.tree, node_id))[-1]
        return self._take(step)

    def path(self, leaf_id: int) -> PathAudio:
        """The song from its start to the end of `leaf_id`; the same object while it stays cached."""
        steps = self._service.read(lambda p: path_steps(p.tree, leaf_id))
        ids = tuple(step.node_id for step in steps)
        with self._lock:
            for step in steps:
                self._forget_if_changed(step)
            cached = self._paths.get(ids)
            if cached is not None:
                self._paths.move_to_end(ids)
                return cached
        takes = [self._take(step) for step in steps]
        hop = self.sample_rate / self.codes_per_second
        start = sum(step.codes for step in steps[:-1]) * hop / self.sample_rate
        end = start + steps[-1].codes * hop / self.sample_rate
        with self._lock:
            cached = self._paths.get(ids)  # made by another caller meanwhile
            if cached is not None:
                return cached
            follower = _Follower(AudioSource(self.sample_rate, complete=False), takes)
            if not follower.advance():
                self._followers.append(follower)
            made = PathAudio(ids, follower.target, start, end)
            self._paths[ids] = made
            while len(self._paths) > MAX_PATHS:
                _, dropped = self._paths.popitem(last=False)
                self._followers = [f for f in self._followers if f.target is not dropped.source]
        return made

    def rendered(self, leaf_id: int) -> PathAudio:
        """The song up to the end of `leaf_id` as far as its upsampled render has reached, then the
        preview (`cocompose.rendered_audio`); `rendered` says how many seconds are rendered. The same
        object while nothing new was rendered; the preview path itself while a take on the path is still
        being sampled (nothing of it can be rendered) or nothing is rendered yet."""
        preview = self.path(leaf_id)
        if not preview.source.complete:
            return preview
        engine = self._engine
        found = self._service.read(lambda p: saved_bottom_codes(p, engine, leaf_id))
        if found is None or len(found.codes) == 0:
            return preview
        ids = preview.node_ids
        with self._lock:
            cached = self._renders.get(ids)
        made_from = (preview, found.key, len(found.codes))
        if cached is not None and cached[0] == made_from:
            return cached[2]
        decoder = cached[1] if cached is not None else BottomDecoder(engine)
        preview_audio = preview.source.audio()
        audio = decoder.decode(found, preview_audio)  # outside the lock: decoding takes a while
        seconds = min(len(audio), len(preview_audio)) / self.sample_rate
        source = AudioSource(self.sample_rate, splice(audio, preview_audio, self.sample_rate))
        made = PathAudio(ids, source, preview.take_start, preview.take_end, seconds)
        with self._lock:
            self._renders[ids] = (made_from, decoder, made)
            self._renders.move_to_end(ids)
            while len(self._renders) > MAX_RENDERS:
                self._renders.popitem(last=False)
        return made

    # -- inside ------------------------------------------------------------------------------------
    def _forget_if_changed(self, step: _Step) -> None:
        """Drop a take's audio (and every path through it) gathered when it had other codes (lock held)."""
        node_id = step.node_id
        if node_id not in self._takes or node_id in self._growing:
            return
        known = self._codes.get(node_id)
        if known is None or known == step.codes:
            return
        del self._takes[node_id]
        for ids in [ids for ids in self._paths if node_id in ids]:
            dropped = self._paths.pop(ids)
            self._followers = [f for f in self._followers if f.target is not dropped.source]

    def _take(self, step: _Step) -> AudioSource:
        node_id = step.node_id
        with self._lock:
            self._forget_if_changed(step)
            source = self._takes.get(node_id)
            if source is not None:
                return source
            if step.codes == 0 and not step.growing:  # an empty start of the song: nothing to hear
                source = AudioSource(self.sample_rate)
            elif step.growing and node_id not in self._ended:
                source = AudioSource(self.sample_rate, complete=False)
                self._growing.add(node_id)
                self._pull(node_id, source)
            if source is not None:
                self._takes[node_id] = source
                self._codes[node_id] = None if step.growing else step.codes
                return source
        audio = self._finished_preview(node_id)  # outside the lock: it may wait for a preview job
        with self._lock:
            if node_id not in self._takes:
                self._takes[node_id] = AudioSource(self.sample_rate, audio)
                self._codes[node_id] = step.codes
            return self._takes[node_id]

    def _finished_preview(self, node_id: int) -> np.ndarray:
        engine = self._engine
        cached = self._service.read(lambda p: p.preview(node_id, engine.decoder_hash))
        if cached is not None:
            rate, audio = cached
        else:
            codes, margin, final = self._service.read(lambda p: preview_inputs(p, engine, node_id))
            audio, rate = preview_audio(engine, codes, margin)  # outside the lock: the worker goes on
            if final:
                self._service.read(lambda p: p.put_preview(node_id, engine.decoder_hash, rate, audio))
        if rate != self.sample_rate:
            raise ValueError(f"take {node_id}'s preview is at {rate} Hz, the model at {self.sample_rate} Hz")
        return np.asarray(audio, np.float32)

    def _pull(self, node_id: int, source: AudioSource) -> None:
        """Append what service.live has of the take beyond what `source` holds (lock held)."""
        live = self._service.live.audio(node_id)
        if live is not None and len(live[0]) > source.frames:
            source.append(live[0][source.frames :])

    def _advance_followers(self) -> None:
        self._followers = [f for f in self._followers if not f.advance()]
