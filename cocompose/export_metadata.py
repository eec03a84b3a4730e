"""What an exported track says about itself: its tags and its JSON sidecar, the same from the app and
the CLI. A duet is credited to every artist it has ("A & B") and the sidecar lists the sections."""

from __future__ import annotations

from cocompose import timeline
from cocompose.store import Project


def track_metadata(
    project: Project, codes_per_second: float, quality: str, range_s: list | None = None
) -> tuple[dict, dict]:
    """-> (tags for TrackTags, sidecar data) of the current path; read the project under its lock."""
    tree = project.tree
    path = tree.current_path
    sidecar = {"title": project.song.title, "model": project.song.model.name, "quality": quality}
    if range_s is not None:
        sidecar["range_s"] = range_s
    sidecar |= {
        "lineage": list(path),
        "seeds": [tree.node(i).sampling.seed for i in path if tree.node(i).sampling],
        "sections": timeline.sections_json(tree, path, codes_per_second),
    }
    artist, genre = timeline.credits(tree, path, codes_per_second)
    return {"title": project.song.title, "artist": artist, "genre": genre}, sidecar
