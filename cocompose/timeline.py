"""The song along a path as time: who sings where (sections by conditioning), which take a moment of the
song falls in, and the cut that makes a moment the start of a take, for a duet or a new branch there.

Qt-free: the timeline view and the waveform draw `conditioning_sections`, the app session and the CLI's
`generate --from NODE --at SECONDS` share `cut_take`, and the app's "change the voice here" cuts at
`branch_point` and samples new takes from there in the new voice (they carry it: a duet).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cocompose.song import Conditioning, SongTree
from cocompose.store import Project, ProjectError

VOICE_CUT_LABEL = "Cut for a new voice"  # the undo step of the cut made before a duet's takes


def voice_label(conditioning: Conditioning) -> str:
    """ "Artist · Genre", with a blended second artist after a "+" and a named tempo after the genre."""
    blend = conditioning.blend
    artist = conditioning.artist if blend is None else f"{conditioning.artist} + {blend.other_artist}"
    tempo = "" if conditioning.tempo is None else f" · {conditioning.tempo.bpm:g} bpm"
    return f"{artist} · {conditioning.genre}{tempo}"


@dataclass(frozen=True)
class Section:
    """A stretch of the song under one conditioning, in seconds from the start of the song."""

    start_s: float
    end_s: float
    conditioning: Conditioning

    @property
    def label(self) -> str:
        return voice_label(self.conditioning)

    @property
    def artists(self) -> tuple[str, ...]:
        """Who sings: the artist, then the blended one if any."""
        artist, blend = self.conditioning.artist, self.conditioning.blend
        return (artist,) if blend is None else (artist, blend.other_artist)


def conditioning_sections(tree: SongTree, path: tuple[int, ...], codes_per_second: float) -> list[Section]:
    """The conditioning in force along `path` (root first), one section per run of codes under the same
    conditioning (artist, blend, genre and lyrics all count). A take without codes yet covers no time and
    is skipped; ids no longer in the tree end the path (the caller's copy may be a moment behind)."""
    sections: list[Section] = []
    codes = 0
    for node_id in path:
        if node_id not in tree:
            break
        length = len(tree.node(node_id).codes)
        if length == 0:
            continue
        conditioning = tree.conditioning_at(node_id)
        start, codes = codes, codes + length
        if sections and sections[-1].conditioning == conditioning:
            sections[-1] = replace(sections[-1], end_s=codes / codes_per_second)
        else:
            sections.append(Section(start / codes_per_second, codes / codes_per_second, conditioning))
    return sections


def sections_json(tree: SongTree, path: tuple[int, ...], codes_per_second: float) -> list[dict]:
    """The sections for an export's sidecar: one entry per change, with its start time in the song."""
    entries = []
    for section in conditioning_sections(tree, path, codes_per_second):
        conditioning = section.conditioning
        entry = {"start_s": round(section.start_s, 3), "artist": conditioning.artist,
                 "genre": conditioning.genre, "lyrics": conditioning.lyrics}  # fmt: skip
        if conditioning.blend is not None:
            entry["blend"] = {"artist": conditioning.blend.other_artist, "weight": conditioning.blend.weight}
        entries.append(entry)
    return entries


def credits(tree: SongTree, path: tuple[int, ...], codes_per_second: float) -> tuple[str, str]:
    """(artist, genre) tags for the song: every artist and genre heard, in order of appearance, so a duet
    credits both ("A & B", "techno / waltz"); a song that was never sampled credits its start's voice."""
    sections = conditioning_sections(tree, path, codes_per_second)
    voices = [s.conditioning for s in sections] or [tree.conditioning_at(path[0])]
    artists = list(dict.fromkeys(c.artist for c in voices))
    genres = list(dict.fromkeys(c.genre for c in voices))
    return " & ".join(artists), " / ".join(genres)


def conditioning_changes(sections: list[Section]) -> list[tuple[float, str]]:
    """(seconds, label) where the conditioning changes: the start of every section but the first."""
    return [(section.start_s, section.label) for section in sections[1:]]


def code_index(seconds: float, codes_per_second: float) -> int:
    """The code boundary nearest `seconds`."""
    return round(seconds * codes_per_second)


@dataclass(frozen=True)
class SongPoint:
    """A code boundary of the song: `at` codes into take `node_id` (at == its length: where it ends)."""

    node_id: int
    at: int


def locate(tree: SongTree, leaf_id: int, seconds: float, codes_per_second: float) -> SongPoint:
    """The code boundary nearest `seconds` on the song root..leaf_id. A boundary between two takes is
    given as the end of the earlier one (what music goes on after it); past the song's end raises."""
    if leaf_id not in tree:
        raise ProjectError(f"Take {leaf_id} is not in this song (it may have been deleted).")
    if seconds < 0:
        raise ProjectError(f"A point in the song cannot be before its start ({seconds:g} s).")
    target, start = code_index(seconds, codes_per_second), 0
    for node_id in tree.path_to(leaf_id):
        end = start + len(tree.node(node_id).codes)
        if target <= end:
            if target == start and start == 0 and end > 0:
                raise ProjectError("The song starts with primed audio: choose a moment after it.")
            return SongPoint(node_id, target - start)
        start = end
    raise ProjectError(f"The song ends at {start / codes_per_second:.2f} s: there is nothing at "
                       f"{seconds:.2f} s. Choose a moment inside the song.")  # fmt: skip


@dataclass(frozen=True)
class CutResult:
    """A take cut in two: `node_id` keeps codes[:at], `second_id` holds the rest (and the old children)."""

    node_id: int
    at: int
    second_id: int


def cut_take(project: Project, node_id: int, seconds: float, codes_per_second: float,
             conditioning: Conditioning | None = None, label: str | None = None) -> CutResult:  # fmt: skip
    """Cut take `node_id` at the code boundary nearest `seconds` into it (the CLI's `generate --from NODE
    --at SECONDS`); `conditioning`: the rest starts a change to it, in the same undo step."""
    if node_id not in project.tree:
        raise ProjectError(f"Take {node_id} is not in this song (it may have been deleted).")
    at = code_index(seconds, codes_per_second)
    return CutResult(node_id, at, project.cut(node_id, at, conditioning, label))


def branch_point(project: Project, leaf_id: int, seconds: float, codes_per_second: float,
                 label: str | None = None) -> int:  # fmt: skip
    """The take that ends at the moment nearest `seconds` of the song root..leaf_id, for new takes to
    go on from there: a take under that moment is cut in two (one undo step, `label`); the song's end is
    its last take. The music after the moment stays as it was, a branch of its own."""
    point = locate(project.tree, leaf_id, seconds, codes_per_second)
    if point.at == len(project.tree.node(point.node_id).codes):
        return point.node_id
    return cut_take(
        project, point.node_id, point.at / codes_per_second, codes_per_second, label=label
    ).node_id


def check_voice_change(tree: SongTree, leaf_id: int, seconds: float, conditioning: Conditioning,
                       codes_per_second: float) -> None:  # fmt: skip
    """Refuse, by name, a change to the voice that already sings at that moment (before anything is cut)."""
    point = locate(tree, leaf_id, seconds, codes_per_second)
    if tree.conditioning_at(point.node_id) == conditioning:
        at_s = code_index(seconds, codes_per_second) / codes_per_second
        raise ProjectError(f"{voice_label(conditioning)} already sings at {at_s:.2f} s; "
                           "choose another artist, genre or lyrics in the Conditioning panel.")  # fmt: skip
