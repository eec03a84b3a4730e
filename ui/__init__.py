"""The desktop app (PySide6). Importing any part of it first guards against PySide6 6.12's reference-count
leak on Python 3.11 (see refcount_guard)."""

from ui.refcount_guard import make_singletons_immortal

make_singletons_immortal()
