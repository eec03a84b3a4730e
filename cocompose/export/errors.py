"""The one exception the export package raises for anything the caller can fix or should be told about."""


class ExportError(Exception):
    """An export failed or was refused; the message names the problem and, where there is one, the fix.

    Raised only after every temporary file has been removed, so a caught ExportError means the target
    folder is exactly as it was before the call.
    """
