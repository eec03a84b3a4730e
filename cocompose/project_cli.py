"""`cocompose new/info/undo/redo/rename/hide/unhide/delete`: the song tree from the command line.

Each command opens the project, makes one edit (one transaction, one undo step), and closes it.
Generation, pick/continue and export come with the engine service.
"""

from __future__ import annotations

import argparse

from cocompose.song import Conditioning, ModelInfo, Node, SongTree
from cocompose.store import Project


def cmd_new(args: argparse.Namespace) -> int:
    conditioning = Conditioning(args.artist, args.genre, args.lyrics)
    with Project.create(
        args.project,
        conditioning=conditioning,
        planned_seconds=args.seconds,
        model=ModelInfo(name=args.model),
    ) as project:
        print(f"created {project.path} ({args.artist}, {args.genre}, {args.seconds:g} s planned)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    with Project.open(args.project) as project:
        for line in describe(project):
            print(line)
    return 0


def describe(project: Project) -> list[str]:
    song, tree = project.song, project.tree
    lines = [
        f"song: {song.title}  ({song.planned_seconds:g} s planned)",
        f"model: {song.model.name or '(not chosen)'} {song.model.hash}  "
        f"{song.model.sample_rate} Hz, {song.model.codes_per_second:g} top-level codes/s",
        f"current path: {' > '.join(str(i) for i in tree.current_path)}  "
        f"({_seconds(project, len(tree.path_codes(tree.current_id)))} s)",
        f"undo: {project.undo_label or '-'}   redo: {project.redo_label or '-'}",
        "takes (* = on the current path):",
    ]
    lines += _tree_lines(project, tree)
    jobs = project.jobs()
    if jobs:
        lines.append("jobs:")
        lines += [f"  #{j.id} {j.kind} {j.state} {j.progress:.0%} node {j.node_id}" for j in jobs]
    return lines


def _tree_lines(project: Project, tree: SongTree) -> list[str]:
    on_path = set(tree.current_path)
    lines = []
    for node in tree.nodes():
        depth = len(tree.path_to(node.id)) - 1
        marker = "*" if node.id in on_path else " "
        lines.append(f"  {marker} {'  ' * depth}{node.id} {_node_summary(project, node)}")
    return lines


def _node_summary(project: Project, node: Node) -> str:
    parts = [f'"{node.name}"' if node.name else "", f"{len(node.codes)} codes"]
    parts.append(f"{_seconds(project, len(node.codes))} s")
    if node.state.value != "done":
        parts.append(node.state.value)
    if node.hidden:
        parts.append("hidden")
    if node.sampling:
        s = node.sampling
        # Shown only when used, so takes sampled without label guidance read as they always did.
        guide = f" guide {s.guidance:g}" if s.guidance else ""
        parts.append(
            f"seed {s.seed} temp {s.temperature:g} top_k {s.top_k} top_p {s.top_p:g}{guide} {s.model}".strip()
        )
    if node.conditioning:
        c = node.conditioning
        artist = c.artist if c.blend is None else f"{c.artist} + {c.blend.weight:g} {c.blend.other_artist}"
        lyrics = f' lyrics "{c.lyrics[:30]}"' if c.lyrics else ""
        tempo = f", {c.tempo}" if c.tempo else ""
        parts.append(f"[from here: {artist}, {c.genre}{tempo}{lyrics}]")
    return " ".join(p for p in parts if p)


def _seconds(project: Project, codes: int) -> str:
    return f"{codes / project.song.model.codes_per_second:.1f}"


def _one_edit(args: argparse.Namespace, edit) -> int:
    with Project.open(args.project) as project:
        message = edit(project)
        print(message)
    return 0


def cmd_undo(args):
    return _one_edit(args, lambda p: f"undid: {p.undo()}" if p.undo_label else "nothing to undo")


def cmd_redo(args):
    return _one_edit(args, lambda p: f"redid: {p.redo()}" if p.redo_label else "nothing to redo")


def cmd_rename(args):
    return _one_edit(
        args, lambda p: p.rename(args.node, args.name) or f"renamed {args.node} to {args.name!r}"
    )


def cmd_hide(args):
    return _one_edit(args, lambda p: p.set_hidden(args.node, True) or f"hid {args.node} and what follows it")


def cmd_unhide(args):
    return _one_edit(args, lambda p: p.set_hidden(args.node, False) or f"unhid {args.node}")


def cmd_delete(args):
    return _one_edit(args, lambda p: p.delete_branch(args.node) or f"deleted {args.node} and what follows it")


def add_project_commands(commands) -> None:
    new = commands.add_parser("new", help="create a project file for a new song")
    new.add_argument("project", help="path of the project file to create (e.g. song.cocompose)")
    new.add_argument("--artist", required=True)
    new.add_argument("--genre", required=True)
    new.add_argument("--lyrics", default="", help="the song's lyrics (default none)")
    new.add_argument("--seconds", type=float, default=60.0, help="planned length of the song (default 60)")
    new.add_argument("--model", default="", help="name of the top-level prior to compose with")
    new.set_defaults(run=cmd_new)

    info = commands.add_parser("info", help="print a project's song tree, settings and jobs")
    info.add_argument("project")
    info.set_defaults(run=cmd_info)

    for name, run, text in (
        ("undo", cmd_undo, "undo the last edit"),
        ("redo", cmd_redo, "redo the last undo"),
    ):
        parser = commands.add_parser(name, help=text)
        parser.add_argument("project")
        parser.set_defaults(run=run)

    rename = commands.add_parser("rename", help="name a take")
    rename.add_argument("project")
    rename.add_argument("node", type=int)
    rename.add_argument("name")
    rename.set_defaults(run=cmd_rename)

    for name, run, text in (
        ("hide", cmd_hide, "hide a take and what follows it"),
        ("unhide", cmd_unhide, "show a hidden take again"),
        ("delete", cmd_delete, "delete a take and what follows it (undo brings it back)"),
    ):
        parser = commands.add_parser(name, help=text)
        parser.add_argument("project")
        parser.add_argument("node", type=int)
        parser.set_defaults(run=run)
