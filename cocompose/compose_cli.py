"""`cocompose generate/pick/continue/swap/prime/upsample/export`: co-composing from the command line.

Each command opens the project, loads the model (--model DIR, else the folder the project recorded),
runs its job through the engine service while printing progress, and closes. Ctrl-C cancels the job
(what was drawn is kept) and exits 130. Bad input exits 2 with a message that says what to change.
"""

from __future__ import annotations

import argparse
import secrets
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

# The service pulls in torch; it is imported only by the commands that run a model, so that
# `cocompose new/info/pick` stay instant.
from cocompose.export_metadata import track_metadata
from cocompose.models import model_reference
from cocompose.service.requests import (
    MAX_SEED,
    GenerateRequest,
    RenderRequest,
    SamplingParams,
    UpsampleRequest,
    check_seconds,
)
from cocompose.song import Codes, ModelInfo
from cocompose.song.records import ArtistBlend
from cocompose.store import Project

if TYPE_CHECKING:
    from cocompose.service import ComposeService
    from engine.api import ComposeEngine

PRINT_EVERY_S = 0.5


def load_engine(args: argparse.Namespace, project: Project) -> ComposeEngine:
    from cocompose.models import resolve_model
    from engine.api import ComposeEngine

    folder, top = args.model, args.top
    if folder is not None:
        folder = resolve_model(folder)
    else:
        recorded = project.song.model.name
        path, _, recorded_top = recorded.partition("#")
        if not recorded:
            raise ValueError("the project names no model folder (none); pass --model DIR")
        try:  # a folder, or a name (`new --model default`) that resolves to one
            folder = resolve_model(path)
        except ValueError as exc:
            raise ValueError(f"the project's model is not available: {exc}; pass --model DIR") from None
        top = top or recorded_top or None
    engine = ComposeEngine.load(folder, top=top)
    info = project.song.model
    if info.hash and info.hash != engine.model_hash:
        print(f"note: this song was made with model {info.hash}; now using {engine.model_hash}")
    if info.hash != engine.model_hash:
        name = model_reference(Path(folder), engine.bundle.top_name)
        project.set_model(ModelInfo(name, engine.model_hash, engine.sample_rate, engine.codes_per_second))
    return engine


@contextmanager
def session(args: argparse.Namespace):
    """(project, service) for one command; both are closed however it ends."""
    from cocompose.service import ComposeService

    with Project.open(args.project) as project:
        service = ComposeService(project, load_engine(args, project))
        try:
            yield project, service
        finally:
            service.close()


def run_job(service: ComposeService, request, what: str):
    """Submit, print progress (at most every PRINT_EVERY_S), return the result; Ctrl-C cancels."""
    handle = service.submit(request)
    printed = 0.0
    try:
        while not handle.done():
            try:
                event = service.events.get(timeout=0.2)
            except Exception:  # queue.Empty: nothing new yet
                continue
            if event.job_id != handle.id or time.monotonic() - printed < PRINT_EVERY_S:
                continue
            printed = time.monotonic()
            eta = f", about {event.eta_s:.0f} s left" if event.eta_s is not None else ""
            note = f" ({event.message})" if event.message and event.message != "sampling" else ""
            print(f"{what}: {event.fraction:4.0%}{eta}{note}", flush=True)
    except KeyboardInterrupt:
        handle.cancel()
        try:
            handle.wait(60)
        finally:
            raise KeyboardInterrupt from None
    result = handle.wait()
    print(f"{what}: done", flush=True)
    return result


def sampling_params(args: argparse.Namespace, recommended_guidance: float = 0.0) -> SamplingParams:
    """The sampling options; without --guidance, the label guidance the model recommends."""
    guidance = recommended_guidance if args.guidance is None else args.guidance
    return SamplingParams(args.temperature, args.top_k, args.top_p, guidance=guidance)


def _say_guidance(args: argparse.Namespace, sampling: SamplingParams) -> None:
    if args.guidance is None and sampling.guidance:  # chosen for the user: say so, and how to change it
        print(f"label guidance {sampling.guidance:g}, as the model recommends (--guidance G to change it)")


def _seed(args: argparse.Namespace) -> int:
    if args.seed is None:
        args.seed = secrets.randbelow(2**31)
        print(f"seed {args.seed} (pass --seed {args.seed} to sample the same branches again)")
    return args.seed


def _generate(args, project, service, parent: int, conditioning=None) -> tuple[int, ...]:
    sampling = sampling_params(args, service.engine.recommended_guidance)
    request = GenerateRequest.branches(parent, args.branches, args.seconds, _seed(args),
                                       sampling=sampling, conditioning=conditioning)  # fmt: skip
    _say_guidance(args, sampling)
    ids = run_job(service, request, f"sampling {args.branches} x {args.seconds:g} s")
    for node_id in ids:
        node = project.tree.node(node_id)
        print(f"take {node_id}: seed {node.sampling.seed}, {len(node.codes)} codes")
    return ids


# Options of one mode of `generate`, named as the user typed them, for a clear error in the other mode.
ONESHOT_ONLY = {
    "out": "--out",
    "prime": "--prime",
    "prime_seconds": "--prime-seconds",
    "change": "--change",
    "upsample": "--upsample",
    "upsample_seed": "--upsample-seed",
    "overwrite": "--overwrite",
}
PROJECT_ONLY = {"parent": "--from", "at": "--at"}


def _given(args: argparse.Namespace, options: dict[str, str]) -> list[str]:
    return [flag for name, flag in options.items() if getattr(args, name) not in (None, False, [])]


def cmd_generate(args: argparse.Namespace) -> int:
    """Branches in a project (PROJECT), or one-shot songs written to a folder (--out DIR)."""
    if args.project is not None and args.out is not None:
        raise ValueError("give either a project file (new takes in it) or --out DIR (one-shot songs), "
                         "not both")  # fmt: skip
    if args.project is None and args.out is None:
        raise ValueError("give a project file to add takes to, or --out DIR to write one-shot songs")
    if args.out is not None:
        return cmd_generate_oneshot(args)
    wrong = _given(args, ONESHOT_ONLY)
    if wrong:
        verb = "applies" if len(wrong) == 1 else "apply"
        raise ValueError(f"{', '.join(wrong)} only {verb} with --out DIR (one-shot songs); in a project, "
                         "use `cocompose new` and `prime` for the start")  # fmt: skip
    with session(args) as (project, service):
        parent = project.tree.current_id if args.parent is None else args.parent
        if args.at is not None:
            parent = _cut(project, service, parent, args.at)
        _generate(args, project, service, parent, _new_voice(args, project, service, parent))
    return 0


def _new_voice(args: argparse.Namespace, project: Project, service, parent: int):
    """The conditioning the new takes carry when --artist/--genre/--lyrics ask for a change, else None."""
    if args.artist is None and args.genre is None and args.lyrics is None and args.tempo is None:
        return None
    if parent not in project.tree:
        raise ValueError(f"take {parent} is not in this song")
    old = project.tree.conditioning_at(parent)
    new = replace(old, artist=args.artist or old.artist, genre=args.genre or old.genre,
                  lyrics=old.lyrics if args.lyrics is None else args.lyrics,
                  blend=None if args.artist else old.blend, tempo=args.tempo or old.tempo)  # fmt: skip
    from cocompose.service.runners import label_spec

    service.engine.check_names(label_spec(new, project.song.planned_seconds))
    return new


def _cut(project: Project, service, node_id: int, seconds: float) -> int:
    """Continue from inside a take: split it `seconds` in (the rest becomes its own take) and return the
    take that now ends there."""
    from cocompose.timeline import cut_take

    rate = service.engine.codes_per_second
    cut = service.read(lambda p: cut_take(p, node_id, seconds, rate))
    print(f"cut take {node_id} at {cut.at / rate:.2f} s; the rest is its own take")
    return node_id


def cmd_generate_oneshot(args: argparse.Namespace) -> int:
    from cocompose.models import DEFAULT_MODEL, resolve_model
    from cocompose.oneshot import OneShotRequest, check_out_folder, generate_oneshot
    from cocompose.song import Conditioning

    wrong = _given(args, PROJECT_ONLY)
    if wrong:
        raise ValueError(f"{', '.join(wrong)} only applies to a project; a one-shot song starts from scratch "
                         "or from --prime FILE")  # fmt: skip
    missing = [flag for name, flag in (("artist", "--artist"), ("genre", "--genre"))
               if not getattr(args, name)]  # fmt: skip
    if missing:
        raise ValueError(f"one-shot songs need {' and '.join(missing)} (the names the model is told)")
    model = args.model or DEFAULT_MODEL
    folder = resolve_model(model)  # before loading anything: a bad name fails at once
    request = OneShotRequest(
        out=Path(args.out),
        conditioning=Conditioning(args.artist, args.genre, args.lyrics or "", tempo=args.tempo),
        seconds=args.seconds,
        branches=args.branches,
        seed=_seed(args),
        sampling=sampling_params(args),
        changes=tuple(args.change or ()),
        prime=Path(args.prime) if args.prime else None,
        prime_seconds=args.prime_seconds,
        upsample=bool(args.upsample),
        upsample_seed=args.upsample_seed or 0,
        overwrite=bool(args.overwrite),
        model_label=str(model),
    )
    from engine.api import ComposeEngine

    check_out_folder(request.out, request.overwrite)  # before the model loads
    engine = ComposeEngine.load(folder, top=args.top)
    # The request was checked before the model loaded; only now is its recommended guidance known.
    request = replace(request, sampling=sampling_params(args, engine.recommended_guidance))
    _say_guidance(args, request.sampling)
    result = generate_oneshot(request, engine, runner=run_job, say=lambda m: print(m, flush=True))
    print(f"{len(result.branches)} song(s) and {result.manifest.name} in {request.out}")
    return 0


def cmd_continue(args: argparse.Namespace) -> int:
    with session(args) as (project, service):
        ids = _generate(args, project, service, project.tree.current_id)
        if len(ids) == 1:  # one branch: the song simply grows
            service.read(lambda p: p.pick(ids[0]))
            print(f"picked {ids[0]}: the song is now {' > '.join(map(str, project.tree.current_path))}")
    return 0


def cmd_pick(args: argparse.Namespace) -> int:
    with Project.open(args.project) as project:
        project.pick(args.node)
        print(f"picked {args.node}: the song is now {' > '.join(map(str, project.tree.current_path))}")
    return 0


def parse_blend(text: str | None) -> ArtistBlend | None:
    """`NAME:W` -> ArtistBlend(NAME, W); None when no blend is asked for."""
    if text is None:
        return None
    name, sep, weight = text.rpartition(":")
    try:
        value = float(weight)
    except ValueError:
        value = None
    if not sep or not name.strip() or value is None:
        raise ValueError(
            f"a blend is ARTIST:WEIGHT with WEIGHT from 0 to 1 (e.g. 'Bo Noise:0.3'), not {text!r}"
        )
    return ArtistBlend(name.strip(), value)  # checks 0 <= weight <= 1


def cmd_swap(args: argparse.Namespace) -> int:
    blend = parse_blend(args.blend)
    with session(args) as (project, service):
        old = project.tree.conditioning_at(args.node) if args.node in project.tree else None
        if old is None:
            raise ValueError(f"take {args.node} is not in this song")
        # A swap names the artist anew, so an earlier blend does not carry over unless --blend repeats it.
        new = replace(old, artist=args.artist, genre=args.genre or old.genre, blend=blend,
                      tempo=args.tempo or old.tempo)  # fmt: skip
        if args.lyrics is not None:
            new = replace(new, lyrics=args.lyrics)
        from cocompose.service.runners import label_spec

        service.engine.check_names(label_spec(new, project.song.planned_seconds))
        service.read(lambda p: p.set_conditioning(args.node, new))
        voice = new.artist if blend is None else f"{new.artist} + {blend.other_artist} at {blend.weight:g}"
        beat = "" if new.tempo is None else f", {new.tempo}"
        print(f"from take {args.node} on: {voice}, {new.genre}{beat}")
    return 0


def cmd_prime(args: argparse.Namespace) -> int:
    from cocompose.audio_import import import_audio
    from cocompose.riff_tempo import primed_conditioning

    path = Path(args.audio)
    if args.seconds is not None:
        check_seconds(args.seconds)
    with session(args) as (_, service):
        # Checked, downmixed and resampled in blocks; only the span used is read (see audio_import).
        prime = import_audio(path, service.engine.sample_rate, max_seconds=args.seconds)
        for note in prime.notes:
            print(f"note: {note}")
        codes = service.engine.encode_prime(prime.samples, prime.sample_rate)
        root = service.read(lambda p: p.tree.root)
        conditioning, heard = primed_conditioning(
            service.engine, prime.samples, prime.sample_rate, root.conditioning
        )
        service.read(lambda p: p.set_prime(Codes.of(codes), prime.kept_audio, prime.kept_name, conditioning))
        seconds = len(codes) / service.engine.codes_per_second
        print(f"primed with {path.name}: {len(codes)} codes, {seconds:.2f} s")
        if heard:
            print(heard)
        if conditioning is not None:
            swap = f"cocompose swap {args.project} {root.id} --artist {conditioning.artist!r}"
            print(f"(to name another: {swap} --tempo BPM)")
    return 0


def parse_range(text: str | None) -> tuple[float | None, float | None]:
    if text is None:
        return None, None
    start, sep, end = text.partition(":")
    try:
        values = (float(start) if start else None, float(end) if end else None)
    except ValueError:
        values = None
    if not sep or values is None:
        raise ValueError(f"a range is START:END in seconds (e.g. 10:25 or 30:), not {text!r}")
    return values


def cmd_upsample(args: argparse.Namespace) -> int:
    start, end = parse_range(args.range)
    with session(args) as (_, service):
        levels = run_job(service, UpsampleRequest(None, start, end, args.seed or 0), "upsampling")
        engine = service.engine
        seconds = len(levels[0]) * engine.bundle.vqvae.hop_lengths[0] / engine.sample_rate
        print(f"upsampled: {len(levels[0])} bottom-level codes ({seconds:.2f} s)")
    return 0


def _lufs(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


def cmd_export(args: argparse.Namespace) -> int:
    from cocompose.export import ExportSettings, TrackTags, export_track

    start, end = parse_range(args.range)
    settings = ExportSettings(format=args.format, sample_rate=args.rate, loudness_lufs=args.lufs)
    with session(args) as (project, service):
        request = RenderRequest(None, start, end, args.quality, args.seed or 0)
        audio, rate = run_job(service, request, f"rendering ({args.quality})")
        data, sidecar = track_metadata(project, service.engine.codes_per_second, args.quality, [start, end])
        tags = TrackTags(**data)
        result = export_track(audio, rate, args.out, settings, tags=tags, sidecar_data=sidecar,
                              progress=lambda fraction, stage: None)  # fmt: skip
        loudness = "n/a" if result.integrated_lufs is None else f"{result.integrated_lufs:.1f} LUFS"
        print(f"wrote {result.path}: {result.format}, {result.sample_rate} Hz, ", end="")
        print(f"{result.duration_s:.2f} s, {loudness}")
        for note in result.notes:
            print(f"note: {note}")
    return 0


def _seed_arg(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed must be from 0 to 2**63 - 1, not {text}")
    return value


TEMPO_HELP = (
    "tempo in beats per minute, and beats per bar after a slash (e.g. 96 or 150/3), for models with a beat "
    "clock (others ignore it)"
)


def _tempo_arg(text: str):
    from cocompose.song.records import Tempo

    try:
        return Tempo.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _change_arg(text: str):
    from cocompose.oneshot import parse_change

    try:
        return parse_change(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _model_options(parser: argparse.ArgumentParser, project_help: str | None = None) -> None:
    if project_help is None:
        parser.add_argument("project", help="the project file")
    else:
        parser.add_argument("project", nargs="?", help=project_help)
    parser.add_argument("--model", metavar="NAME|DIR", help="'default', a model folder, or an installed "
                        "model's name (default: the model the project recorded)")  # fmt: skip
    parser.add_argument("--top", metavar="NAME", help="top prior to use when the folder has several")


def _sampling_options(parser: argparse.ArgumentParser, branches: int) -> None:
    parser.add_argument("--branches", type=int, default=branches, help=f"how many takes (default {branches})")
    parser.add_argument("--seconds", type=float, required=True, help="length of each new take")
    parser.add_argument("--seed", type=_seed_arg, help="seed of the first take; take i gets seed + i")
    parser.add_argument("--temperature", type=float, default=0.98, help="default 0.98")
    parser.add_argument("--top-k", type=int, default=0, help="keep the k likeliest codes (0: all)")
    parser.add_argument("--top-p", type=float, default=0.0, help="nucleus sampling mass (0: off)")
    parser.add_argument("--guidance", type=float, metavar="G", help="label guidance from 0 to 10: how "
                        "strongly the artist and genre steer the takes (0: off; higher: more like them, "
                        "less varied, and slower, as each step runs the model twice). Default: the "
                        "strength the model recommends (its bundle.json's 'guidance', else 0)")  # fmt: skip


def add_compose_commands(commands) -> None:
    generate = commands.add_parser(
        "generate",
        help="sample new takes after a take (branches), or one-shot songs into a folder (--out)",
        description="Two modes. With PROJECT: sample new takes in it (--from NODE, default the current "
        "take). With --out DIR: one-shot songs from names, no project: one WAV per branch (mono 32-bit "
        "float at the model's rate) and manifest.json; --model defaults to 'default'.",
    )
    _model_options(generate, project_help="the project file (leave out with --out)")
    generate.add_argument("--from", dest="parent", type=int, help="take to continue (default: current)")
    generate.add_argument("--at", type=float, metavar="SECONDS", help="continue from inside the --from "
                          "take, this many seconds into it (the rest stays a take of its own)")  # fmt: skip
    _sampling_options(generate, branches=3)
    oneshot = generate.add_argument_group("one-shot songs (--out DIR)")
    oneshot.add_argument("--out", metavar="DIR", help="folder to write the songs and manifest.json to")
    generate.add_argument("--artist", help="one-shot: the artist the songs start with; in a project: a new "
                          "artist for the new takes (a duet from --from on)")  # fmt: skip
    generate.add_argument("--genre", help="one-shot: the genre the songs start with; in a project: a new "
                          "genre for the new takes")  # fmt: skip
    generate.add_argument("--lyrics", help="lyrics (for models with a lyrics encoder); in a project: for "
                          "the new takes on")  # fmt: skip
    generate.add_argument("--tempo", type=_tempo_arg, metavar="BPM[/BEATS]",
                          help=TEMPO_HELP + "; default: the genre's usual one, or the take's")  # fmt: skip
    oneshot.add_argument(
        "--prime",
        metavar="AUDIO_FILE",
        help="continue after this audio (WAV, FLAC...), at its tempo unless --tempo",
    )
    oneshot.add_argument("--prime-seconds", type=float, help="use only the first SECONDS of the prime")
    oneshot.add_argument("--change", action="append", type=_change_arg,
                         metavar="SECONDS:artist=NAME[,genre=NAME][,tempo=BPM[/BEATS]]",
                         help="from SECONDS into the new music on, these names (repeatable)")  # fmt: skip
    oneshot.add_argument("--upsample", action="store_true", default=None,
                         help="render all three levels (slow), not the fast top-level decode")  # fmt: skip
    oneshot.add_argument("--upsample-seed", type=_seed_arg, help="upsampling seed (default 0)")
    oneshot.add_argument("--overwrite", action="store_true", default=None,
                         help="write into a folder that has files, replacing same-named ones")  # fmt: skip
    generate.set_defaults(run=cmd_generate)

    cont = commands.add_parser("continue", help="sample after the end of the current song")
    _model_options(cont)
    _sampling_options(cont, branches=1)
    cont.set_defaults(run=cmd_continue)

    pick = commands.add_parser("pick", help="make root..NODE the current song")
    pick.add_argument("project")
    pick.add_argument("node", type=int)
    pick.set_defaults(run=cmd_pick)

    swap = commands.add_parser("swap", help="change the artist (and genre, lyrics) from a take on")
    _model_options(swap)
    swap.add_argument("node", type=int)
    swap.add_argument("--artist", required=True)
    swap.add_argument("--genre", help="default: keep the genre")
    swap.add_argument("--lyrics", help="default: keep the lyrics")
    swap.add_argument(
        "--tempo", type=_tempo_arg, metavar="BPM[/BEATS]", help=f"{TEMPO_HELP} (default: keep it)"
    )
    swap.add_argument(
        "--blend",
        metavar="ARTIST:W",
        help="a new voice between two artists: (1 - W) * artist + W * ARTIST, W from 0 to 1 (default: none)",
    )
    swap.set_defaults(run=cmd_swap)

    prime = commands.add_parser(
        "prime",
        help="start a new song from an audio file",
        description="Start a new song from an audio file. With a beat-clock model and no tempo named, "
        "the song takes the tempo and bar lines heard in the audio.",
    )
    _model_options(prime)
    prime.add_argument("audio", help="audio file (WAV, FLAC, OGG, MP3...)")
    prime.add_argument("--seconds", type=float, help="use only the first SECONDS of it")
    prime.set_defaults(run=cmd_prime)

    upsample = commands.add_parser("upsample", help="render the current song through the upsamplers")
    _model_options(upsample)
    upsample.add_argument("--range", metavar="START:END", help="only these seconds (e.g. 10:25)")
    upsample.add_argument("--seed", type=_seed_arg, help="upsampling seed (default 0)")
    upsample.set_defaults(run=cmd_upsample)

    export = commands.add_parser("export", help="write the current song to an audio file")
    _model_options(export)
    export.add_argument("out", help="output file; the extension picks the format")
    export.add_argument("--format", choices=("wav", "flac", "ogg", "opus", "mp3"))
    export.add_argument("--rate", type=int, help="sample rate (default: the model's, if the format takes it)")
    export.add_argument("--lufs", type=_lufs, default=-14.0, help="loudness target, or 'none' (default -14)")
    export.add_argument("--quality", choices=("preview", "upsampled"), default="preview")
    export.add_argument("--range", metavar="START:END", help="only these seconds")
    export.add_argument("--seed", type=_seed_arg, help="upsampling seed (default 0)")
    export.set_defaults(run=cmd_export)
