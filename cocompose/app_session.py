"""What the desktop app holds open: a project, a lazily loaded engine, and the engine service. Qt-free.

The app's GUI thread must never wait on the engine, the disk or audio, so everything here that touches
them runs on a background thread and returns a `concurrent.futures.Future`:

* the io thread: opening, creating, saving and closing projects, every edit, submitting jobs. One thread,
  so edits happen in the order they were asked for (a pick before the continue that follows it);
* the model thread: loading a model (seconds to minutes); the io thread then starts the service on it;
* the export thread: waits for a render job, then writes the file;
* the audio thread: the song up to a take for the player (`play_path`), waiting for previews if need be;
* the lyrics thread: where that song sings in its lyrics (`lyric_progress`; reads the model only).

Whatever happens is also reported through `notify(kind, payload)`, called on whichever thread it happened
on (the app forwards it to the GUI thread):

| kind | payload |
| --- | --- |
| "project" | ProjectSummary of the open project (after open/new/save-as and after every edit), or None |
| "model" | ModelSummary once a model is loaded and ready, or None when none could be |
| "model_loading" | a line saying which model is being loaded |
| "job" | a service JobEvent (also export progress, with kind "export") |
| "changed" | None: the song tree may have changed; take a `snapshot()` |
| "state" | the AppState (recent projects) after it changed |
| "error" | a message for the musician, naming the problem; nothing else happened |

The project is touched only under `self.lock`, which the service shares (the worker writes the project
under it too). The GUI reads the tree with `snapshot()`, which never waits for the lock.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from cocompose import timeline
from cocompose.app_model_folder import NO_MODEL_HELP, ModelMissing, resolve_model_folder
from cocompose.app_model_loading import load_engine
from cocompose.app_reports import ModelSummary, Primed, ProjectSummary, describe_error, unused_path
from cocompose.app_state import AppState, config_dir, load_state, save_state
from cocompose.export_metadata import track_metadata
from cocompose.lyric_progress_cache import LyricProgressCache
from cocompose.models import DEFAULT_MODEL_DIR, model_reference
from cocompose.service.jobs import DONE, FINISHED, PREVIEW_AUDIO, JobEvent, JobHandle, JobStateError
from cocompose.service.requests import GenerateRequest, Priority, RenderRequest, SamplingParams
from cocompose.settings import Settings, load_settings
from cocompose.song import ArtistBlend, Conditioning, ModelInfo
from cocompose.song.records import Tempo
from cocompose.store import Project, ProjectError
from cocompose.take_audio import PathAudio, SongAudio
from cocompose.tree_mirror import TreeSnapshot

DEFAULT_MODEL = DEFAULT_MODEL_DIR  # module-level so that tests can point it elsewhere
PRIORITY_OF_KIND = {"generate": Priority.INTERACTIVE, "preview": Priority.INTERACTIVE,
                    "upsample": Priority.BACKGROUND, "export": Priority.BACKGROUND}  # fmt: skip
RECORDINGS_FOLDER = "recordings"  # under the state folder: every riff primed from is kept there

Notify = Callable[[str, Any], None]


class AppSession:
    def __init__(self, notify: Notify, state_dir: Path | None = None) -> None:
        self._notify = notify
        self.state_dir = state_dir or config_dir()
        self.state = load_state(self.state_dir)
        self.lock = threading.RLock()
        self._io = ThreadPoolExecutor(1, "cocompose-io")
        self._loader = ThreadPoolExecutor(1, "cocompose-model")
        self._exporter = ThreadPoolExecutor(1, "cocompose-export")
        self._audio_pool = ThreadPoolExecutor(1, "cocompose-audio")
        self._lyrics_pool = ThreadPoolExecutor(1, "cocompose-lyrics")
        self._lyrics = LyricProgressCache()
        self.settings: Settings = load_settings(self.state_dir).settings
        self.project: Project | None = None
        self.engine: Any = None  # engine.api.ComposeEngine, imported only on the model thread
        self.model: ModelSummary | None = None
        self.service: Any = None  # cocompose.service.ComposeService
        self.audio: SongAudio | None = None  # the song's audio for the player, while a service runs
        self._loaded: tuple[Path, str, tuple[str, str]] | None = None  # folder, top, (device, precision)
        self._handles: dict[int, JobHandle] = {}
        self._pick_when_done: set[int] = set()
        self._export_ids = itertools.count(-1, -1)  # export "jobs" are the session's, numbered below 0
        self._closed = False

    # -- plumbing ----------------------------------------------------------------------------------
    def _call(self, executor: ThreadPoolExecutor, fn: Callable[[], Any]) -> Future:
        """Run fn on `executor`; a failure is reported as an "error" and also left in the future."""

        def run() -> Any:
            try:
                return fn()
            except BaseException as exc:
                self._notify("error", describe_error(exc))
                raise

        return self._background(executor, run)

    def _background(self, executor: ThreadPoolExecutor, fn: Callable[[], Any]) -> Future:
        """Submit fn to `executor`; once the session has shut down, hand back a cancelled future instead.
        A widget answering a result that arrives while the app closes may ask again (the lyrics follower
        does); nothing should run then, and the bridge drops cancelled futures silently."""
        if not self._closed:
            try:
                return executor.submit(fn)
            except RuntimeError:  # shut down between the check and the submit
                if not self._closed:
                    raise
        cancelled: Future = Future()
        cancelled.cancel()
        return cancelled

    def _save_state(self, state: AppState) -> None:
        self.state = state
        try:
            save_state(state, self.state_dir)
        except OSError as exc:  # remembering is a convenience: say so, never stop the work
            self._notify("error", f"Could not remember recent projects in {self.state_dir}: {exc}")
        self._notify("state", state)

    def _summary(self) -> ProjectSummary | None:
        project = self.project
        if project is None:
            return None
        with self.lock:
            return ProjectSummary(project.path, project.song, project.undo_label, project.redo_label)

    def _announce_project(self) -> None:
        self._notify("project", self._summary())
        self._notify("changed", None)

    def snapshot(self) -> TreeSnapshot | None:
        """The song tree now, or None when there is no project or the lock is busy (try again soon)."""
        if self.project is None or not self.lock.acquire(blocking=False):
            return None
        try:
            return TreeSnapshot.of(self.project.tree) if self.project is not None else None
        finally:
            self.lock.release()

    def job_priority(self, event: JobEvent) -> Priority:
        handle = self._handles.get(event.job_id)
        if handle is not None:
            return handle.request.priority
        return PRIORITY_OF_KIND.get(event.kind, Priority.INTERACTIVE)

    # -- projects ------------------------------------------------------------------------------------
    def open_project(self, path: str | Path) -> Future:
        return self._call(self._io, lambda: self._open(Project.open, Path(path)))

    def new_project(self, path: str | Path, conditioning: Conditioning, planned_seconds: float,
                    title: str = "") -> Future:  # fmt: skip
        def create(target: Path) -> Project:
            if self.engine is not None:
                self._check_names(conditioning)
            return Project.create(target, conditioning=conditioning, planned_seconds=planned_seconds,
                                  model=self._model_info(), title=title)  # fmt: skip

        return self._call(self._io, lambda: self._open(create, Path(path)))

    def _open(self, opener: Callable[[Path], Project], path: Path) -> ProjectSummary:
        self._close_project()
        project = opener(path)
        with self.lock:
            self.project = project
        self._save_state(replace(self.state.with_recent(path), open_project=str(path.resolve())))
        self._announce_project()
        recorded = project.song.model.name.partition("#")
        wanted = model_reference(Path(recorded[0]), recorded[2]) if recorded[0] else None
        if wanted and Path(recorded[0]).is_dir() and (self.model is None or self.model.reference != wanted):
            self.load_model(recorded[0], recorded[2] or None)  # the song's own model, in the background
        elif self.engine is not None:
            self._start_service()
        return self._summary()

    def save_as(self, path: str | Path) -> Future:
        def save() -> ProjectSummary:
            if self.project is None:
                raise ProjectError("There is no open song to save.")
            with self.lock:
                self.project.save_as(path)
            self._save_state(replace(self.state.with_recent(path), open_project=str(Path(path).resolve())))
            self._announce_project()
            return self._summary()

        return self._call(self._io, save)

    def close_project(self) -> Future:
        def close() -> None:
            self._close_project()
            self._save_state(replace(self.state, open_project=None))
            self._announce_project()

        return self._call(self._io, close)

    def _close_project(self) -> None:
        self._stop_service()
        with self.lock:
            if self.project is not None:
                self.project.close()
            self.project = None

    # -- the model -----------------------------------------------------------------------------------
    def load_model(self, name_or_folder: str | Path | None = None, top: str | None = None) -> Future:
        """Load a model on the model thread (None: the default one), then run the service on it."""

        def load() -> ModelSummary:
            folder = resolve_model_folder(name_or_folder, DEFAULT_MODEL)
            self._notify("model_loading", f"Loading the model in {folder}…")
            settings = self.settings
            try:
                engine, summary = load_engine(folder, top, settings)
            except BaseException:
                self._notify("model", self.model)  # the old one (or none) stays
                raise
            self._loaded = (folder, engine.bundle.top_name, (settings.device, settings.precision))
            self._io.submit(self._attach_engine, engine, summary).result()
            if name_or_folder is not None:
                self._save_state(replace(self.state, model=str(folder.resolve())))
            return summary

        return self._call(self._loader, load)

    def _attach_engine(self, engine: Any, summary: ModelSummary) -> None:
        self._stop_service()
        self.engine, self.model = engine, summary
        self._lyrics.clear()
        if self.project is not None:
            self._start_service()
        self._notify("model", summary)

    def _model_info(self) -> ModelInfo | None:
        if self.engine is None or self.model is None:
            return None
        return ModelInfo(self.model.reference, self.engine.model_hash, self.engine.sample_rate,
                         self.engine.codes_per_second)  # fmt: skip

    def _start_service(self) -> None:
        from cocompose.service import ComposeService

        with self.lock:
            service = ComposeService(self.project, self.engine, on_event=self._on_job_event)
            # One lock for the project, whoever touches it: the worker (through service.read), the io
            # thread and the GUI's snapshots. No job can run before this line: none was submitted yet.
            service.lock = self.lock
            self.service = service
            self.audio = SongAudio(service)
            info = self._model_info()
            if self.project.song.model.hash != info.hash:
                self.project.set_model(info)
        self._notify("project", self._summary())

    def _stop_service(self) -> None:
        service, self.service = self.service, None
        self.audio = None
        if service is not None:
            service.close()

    def _check_names(self, conditioning: Conditioning) -> None:
        from cocompose.service.runners import label_spec

        self.engine.check_names(label_spec(conditioning, 0.0))

    # -- edits ---------------------------------------------------------------------------------------
    def edit(self, change: Callable[[Project], Any]) -> Future:
        """Run change(project) on the io thread under the lock, then tell the app what changed."""

        def run() -> Any:
            if self.project is None:
                raise ProjectError("Open or create a song first.")
            with self.lock:
                result = change(self.project)
            self._announce_project()
            return result

        return self._call(self._io, run)

    def pick(self, node_id: int) -> Future:
        return self.edit(lambda p: p.pick(node_id))

    def rename(self, node_id: int, name: str) -> Future:
        return self.edit(lambda p: p.rename(node_id, name))

    def set_hidden(self, node_id: int, hidden: bool) -> Future:
        return self.edit(lambda p: p.set_hidden(node_id, hidden))

    def undo(self) -> Future:
        return self.edit(lambda p: p.undo())

    def redo(self) -> Future:
        return self.edit(lambda p: p.redo())

    def swap(self, node_id: int, artist: str, genre: str, lyrics: str | None = None,
             blend: ArtistBlend | None = None, tempo: Tempo | None = None) -> Future:  # fmt: skip
        """From `node_id` on, another artist (a duet when it is partway through the song); tempo None is
        the genre's usual one."""

        def change(project: Project) -> Conditioning:
            if node_id not in project.tree:
                raise ProjectError(f"Take {node_id} is not in this song.")
            old = project.tree.conditioning_at(node_id)
            new = Conditioning(artist, genre, old.lyrics if lyrics is None else lyrics, blend, tempo)
            if self.engine is not None:
                self._check_names(new)
            project.set_conditioning(node_id, new)
            return new

        return self.edit(change)

    def change_voice_at(self, leaf_id: int, seconds: float, conditioning: Conditioning, n: int,
                        length_s: float, seed: int | None = None,
                        sampling: SamplingParams | None = None) -> Future:  # fmt: skip
        """A duet: n new takes sung by `conditioning` from `seconds` into the song root..leaf_id on. A take
        under that moment is first cut there (its own undo step; what followed stays a branch of its own).
        The new takes carry the voice, so they are sampled and upsampled with it. -> the JobHandle."""
        seed = secrets.randbelow(2**31) if seed is None else seed

        def run() -> JobHandle:
            if self.project is None:
                raise ProjectError("Open or create a song first.")
            self._need_engine()
            self._check_names(conditioning)
            params = sampling or SamplingParams()
            with self.lock:
                rate = self.project.song.model.codes_per_second
                timeline.check_voice_change(self.project.tree, leaf_id, seconds, conditioning, rate)
                # Built before the cut, so a bad length or count is refused with the song untouched.
                request = GenerateRequest.branches(leaf_id, n, length_s, seed, sampling=params,
                                                   conditioning=conditioning)  # fmt: skip
                parent = timeline.branch_point(self.project, leaf_id, seconds, rate, timeline.VOICE_CUT_LABEL)
            self._announce_project()
            return self._submit_now(replace(request, parent_id=parent))

        return self._call(self._io, run)

    def prime(self, audio_path: str | Path, max_seconds: float | None = None) -> Future:
        """Start the song from an audio file: its codes become the start (only before any take), and for
        a beat-clock model its tempo the one heard in it unless the song names one; -> Primed."""

        return self._call(self._io, lambda: self._prime_now(Path(audio_path), max_seconds))

    def _prime_now(
        self, path: Path, max_seconds: float | None, counted: tuple[float, float] | None = None
    ) -> Primed:
        import soundfile as sf

        engine = self._need_engine()
        try:
            audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except (OSError, RuntimeError) as exc:
            raise ValueError(f"Cannot read {path.name} as audio: {exc}") from None
        if self.project is None:
            raise ProjectError("Open or create a song first, then drop audio on it to prime it.")
        codes = engine.encode_prime(audio, rate, max_seconds=max_seconds)
        from cocompose.riff_tempo import primed_conditioning
        from cocompose.song import Codes

        with self.lock:
            start = self.project.tree.root.conditioning
        conditioning, heard = primed_conditioning(engine, audio, rate, start, max_seconds, counted)
        with self.lock:
            self.project.set_prime(Codes.of(codes), path.read_bytes(), path.name, conditioning)
        self._announce_project()
        return Primed(len(codes), len(codes) / engine.codes_per_second, heard)

    def prime_recording(self, take: Any) -> Future:
        """Prime the song from a recorded riff (a cocompose.recording.Take). The riff is first saved as a
        WAV in the state folder's recordings/ and stays there, whatever happens next. A riff recorded to a
        count-in takes the count-in's tempo (for a beat-clock model, unless the song names one); -> Primed."""

        def run() -> Primed:
            from cocompose.recording import RecordingError

            folder = self.state_dir / RECORDINGS_FOLDER
            try:
                folder.mkdir(parents=True, exist_ok=True)
                path = take.save_wav(unused_path(folder / f"riff-{time.strftime('%Y%m%d-%H%M%S')}.wav"))
            except (OSError, RecordingError) as exc:
                raise OSError(f"Could not keep the recording: {exc}") from None
            try:
                counted = None if take.click_bpm is None else (take.click_bpm, take.click_start_seconds)
                return self._prime_now(path, None, counted)
            except (ProjectError, ValueError) as exc:
                raise type(exc)(f"{exc}\n(The recording is kept in {path}.)") from None

        return self._call(self._io, run)

    def reconstruct(self, audio: Any, sample_rate: int) -> tuple[Any, int]:
        """The VQ-VAE's rendering of `audio`: encoded to top-level codes and decoded again, as a prime
        would be heard. Blocks for a moment (call it off the GUI thread); -> (mono float32 audio, rate)."""
        engine = self._need_engine()
        codes = engine.encode_prime(audio, sample_rate)
        return engine.decode_preview(codes)

    # -- hearing the song ----------------------------------------------------------------------------
    def play_path(self, node_id: int, device_rate: int | None = None, prefetch: bool = False,
                  quality: str = "preview") -> Future:  # fmt: skip
        """-> PathAudio: the song up to the end of `node_id` (growing while a take on it is sampled),
        already converted to `device_rate` when one is given, so that the player's switch is instant.
        prefetch: gathered in case it is wanted; a failure (the take was undone meanwhile) is only left
        in the future, not reported, since nobody asked to hear it.
        quality: "preview" (the fast top-level decode), or "rendered": the upsampled render as far as it
        has been saved, then the preview (`PathAudio.rendered` says how many seconds are rendered)."""
        if quality not in ("preview", "rendered"):
            raise ValueError(f"quality must be 'preview' or 'rendered', not {quality!r}")

        def run() -> PathAudio:
            audio = self.audio
            if audio is None:
                raise ModelMissing("Load a model and open a song to hear it." if self.engine is None
                                   else "Open or create a song first.")  # fmt: skip
            found = audio.path(node_id) if quality == "preview" else audio.rendered(node_id)
            if device_rate:
                found.source.at_rate(device_rate)
            return found

        def unless_gone() -> PathAudio:
            try:
                return run()
            except Exception as exc:
                # A take undone or deleted since it was asked for: the cursor has moved on, so the
                # failure stays in the future; anything else is worth a message.
                if not self._take_gone(node_id):
                    self._notify("error", describe_error(exc))
                raise

        return self._background(self._audio_pool, run if prefetch else unless_gone)

    def _take_gone(self, node_id: int) -> bool:
        with self.lock:
            return self.project is not None and node_id not in self.project.tree

    def lyric_progress(self, node_id: int) -> Future:
        """-> engine.api.LyricProgress of the song up to the end of `node_id` (where each top-level code
        sings in the lyrics in force over it), or None when the model sings no lyrics. Computed on the
        lyrics thread and cached per path codes and conditioning, so asking again for a path that has not
        changed costs nothing. A failure is left in the future and not reported: the caller shows it."""

        def run() -> Any:
            return self._lyrics.progress(self._need_engine(), self.project, self.lock, node_id)

        return self._background(self._lyrics_pool, run)

    # -- settings ------------------------------------------------------------------------------------
    def apply_settings(self, settings: Settings) -> Future | None:
        """Use new settings: the next model loads with them, and the loaded model is loaded again when
        its device or precision changed (in the background; the old one serves until then)."""
        self.settings = settings
        loaded = self._loaded
        if loaded is not None and loaded[2] != (settings.device, settings.precision):
            return self.load_model(loaded[0], loaded[1])
        if settings.cpu_threads and self.engine is not None:

            def set_threads() -> None:
                import torch

                torch.set_num_threads(settings.cpu_threads)

            return self._call(self._loader, set_threads)
        return None

    # -- jobs ----------------------------------------------------------------------------------------
    def _need_engine(self) -> Any:
        if self.engine is None:
            raise ModelMissing(NO_MODEL_HELP if self.model is None else "The model is still loading.")
        return self.engine

    def submit(self, request: Any) -> Future:
        """Queue a service request (GenerateRequest, UpsampleRequest, RenderRequest...); -> JobHandle."""
        return self._call(self._io, lambda: self._submit_now(request))

    def _submit_now(self, request: Any, pick_when_done: bool = False) -> JobHandle:
        self._need_engine()
        if self.service is None:
            raise ProjectError("Open or create a song first.")
        handle = self.service.submit(request)
        self._handles[handle.id] = handle
        if pick_when_done:
            self._pick_when_done.add(handle.id)
        return handle

    def generate(self, parent_id: int | None, n: int, seconds: float, seed: int | None = None,
                 sampling: SamplingParams | None = None,
                 conditioning: Conditioning | None = None) -> Future:  # fmt: skip
        """n branches after `parent_id` (None: after the song's end); one branch from the end is picked
        when it finishes, so the song simply grows. Seeds are seed, seed + 1, ...; None draws one.
        `conditioning`: a voice for the new takes (None, or the one in force there: they inherit it)."""
        seed = secrets.randbelow(2**31) if seed is None else seed

        def run() -> JobHandle:
            parent = parent_id
            if parent is None:
                if self.project is None:
                    raise ProjectError("Open or create a song first.")
                with self.lock:
                    parent = self.project.tree.current_id
            params = sampling or SamplingParams()
            if conditioning is not None:
                self._check_names(conditioning)
            request = GenerateRequest.branches(parent, n, seconds, seed, sampling=params,
                                               conditioning=conditioning)  # fmt: skip
            return self._submit_now(request, pick_when_done=parent_id is None and n == 1)

        return self._call(self._io, run)

    def cancel(self, job_id: int) -> None:
        handle = self._handles.get(job_id)
        if handle is not None:
            handle.cancel()
        elif self.service is not None:  # a job the worker queued itself (a preview)
            found = self.service._handles.get(job_id)
            if found is not None:
                found.cancel()

    def pause_job(self, job_id: int) -> Future:
        """Hold a job aside, keeping what it drew (ComposeService.pause), on the io thread: it writes the
        jobs table. A finished or unknown job fails the Future with a message (also sent as "error")."""
        return self._call(self._io, lambda: self._job_service(job_id, "pause").pause(job_id))

    def resume_job(self, job_id: int) -> Future:
        """Put a paused job back in the queue in its old place; it goes on from where it stopped."""
        return self._call(self._io, lambda: self._job_service(job_id, "resume").resume(job_id))

    def _job_service(self, job_id: int, verb: str) -> Any:
        if job_id < 0:
            raise JobStateError(f"An export cannot {verb} by itself; {verb} the render job it waits for.")
        if self.service is None:
            raise JobStateError(f"There is no job {job_id} to {verb}: no song is open with a model.")
        return self.service

    def _on_job_event(self, event: JobEvent) -> None:
        audio = self.audio
        if audio is not None and event.kind == "generate":
            if event.state in FINISHED:
                audio.job_ended(event.node_ids)
            elif event.message == PREVIEW_AUDIO:
                audio.grew(event.node_ids)
        self._notify("job", event)
        self._notify("changed", None)
        if event.state in FINISHED:
            self._handles.pop(event.job_id, None)
            if event.job_id in self._pick_when_done:
                self._pick_when_done.discard(event.job_id)
                if event.state == DONE and len(event.node_ids) == 1:
                    self.pick(event.node_ids[0])

    # -- export --------------------------------------------------------------------------------------
    def export(self, out: str | Path, settings: Any, quality: str = "preview") -> Future:
        """Render the current song (fast preview or upsampled) and write it with cocompose.export."""

        def run() -> Any:
            from cocompose.export import TrackTags, export_track

            job_id = next(self._export_ids)
            handle = self.submit(RenderRequest(None, None, None, quality)).result()
            self._notify("job", JobEvent(job_id, "export", "queued", message=f"waiting for job {handle.id}"))
            try:
                audio, rate = handle.wait()
                with self.lock:
                    project = self.project
                    tags, sidecar = track_metadata(project, project.song.model.codes_per_second, quality)

                def progress(fraction: float, stage: str) -> None:
                    self._notify("job", JobEvent(job_id, "export", "running", fraction, message=stage))

                result = export_track(audio, rate, out, settings, tags=TrackTags(**tags),
                                      sidecar_data=sidecar, progress=progress)  # fmt: skip
            except BaseException as exc:
                self._notify("job", JobEvent(job_id, "export", "failed", message=describe_error(exc)))
                raise
            self._notify("job", JobEvent(job_id, "export", "done", 1.0, message=str(result.path)))
            return result

        return self._call(self._exporter, run)

    # -- the end -------------------------------------------------------------------------------------
    def shutdown(self, timeout: float = 30.0) -> None:
        """Cancel running jobs, close the project and forget the "open" mark (this was a clean exit)."""
        if self._closed:
            return
        self._closed = True
        if self.service is not None:
            self.service.cancel_all()

        def finish() -> None:
            self._close_project()
            self._save_state(replace(self.state, open_project=None))

        try:
            self._io.submit(finish).result(timeout)
        finally:
            for executor in (self._io, self._loader, self._exporter, self._audio_pool, self._lyrics_pool):
                executor.shutdown(wait=False, cancel_futures=True)
