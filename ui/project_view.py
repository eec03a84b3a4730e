"""What the Qt song tree model reads of a project, on the GUI thread: the mirror of its tree, its song
facts, and a rename that goes to the session (which writes it on its io thread; the mirror then shows it).
The model only ever touches `tree`, `song` and `rename`, so this stands in for the Project itself."""

from __future__ import annotations

from cocompose.app_session import AppSession
from cocompose.song import SongInfo, SongTree


class ProjectView:
    def __init__(self, session: AppSession, tree: SongTree, song: SongInfo) -> None:
        self._session = session
        self.tree = tree
        self.song = song

    def rename(self, node_id: int, name: str) -> None:
        self._session.rename(node_id, name)  # a refusal comes back as the session's "error" report
