"""A guard against a PySide6 6.12 reference-count bug on Python 3.11.

Every `Signal.emit()` made from Python hands back True without owning a reference to it, and reading an
empty QVariant does the same with None; each one drops the singleton's count by one. Python 3.11's
singletons are ordinary objects, so after a few thousand emits (a streamed branch sends that many
progress reports) the count reaches zero and the interpreter aborts ("bool_dealloc" / "none_dealloc").
Python 3.12 made these singletons immortal; `make_singletons_immortal` gives 3.11 the same: it raises
their counts so far (2**40) that no leak can bring them back to zero in any session. Raising a count is
always safe (an object that is never freed is what a singleton is anyway), so this stays harmless once
PySide is fixed. On 3.12 and later it does nothing.
"""

from __future__ import annotations

import ctypes
import sys

HEADROOM = 2**40
_guarded = False


def make_singletons_immortal() -> None:
    global _guarded
    if _guarded or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    for singleton in (True, False, None):
        # ob_refcnt is the first field of every CPython object: a Py_ssize_t at the object's address.
        ctypes.c_ssize_t.from_address(id(singleton)).value += HEADROOM
    _guarded = True
