"""The project file: one SQLite database per song, saved as it happens. See docs/PROJECT-FORMAT.md."""

from cocompose.store.errors import ProjectError
from cocompose.store.project import Project
from cocompose.store.schema import APPLICATION_ID, FILE_SUFFIX, SCHEMA_VERSION
from cocompose.store.side_tables import Job, UpsampleWindow, codes_sha256

__all__ = [
    "APPLICATION_ID",
    "FILE_SUFFIX",
    "SCHEMA_VERSION",
    "Job",
    "Project",
    "ProjectError",
    "UpsampleWindow",
    "codes_sha256",
]
