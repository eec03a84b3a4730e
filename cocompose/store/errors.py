"""The one error the project store raises: its message is written for the musician, not the developer."""


class ProjectError(Exception):
    """A project file cannot be created, opened, read or changed. The file is left exactly as it was."""
