"""Menu actions that open the model manager and the settings dialog, for the main window to add in one
line each:

    model_menu.addAction(models_action(self, self.load_model))        # called with the model's folder
    edit_menu.addAction(settings_action(self, self.apply_settings))   # called with the saved Settings

The model manager is created on first use and kept (as the action's `dialog` attribute), so that a
download goes on while the dialog is closed and shows its progress when it is opened again; it is shut
down (the download cancelled, its .part kept) when the application quits. The settings dialog is made
anew each time, from the saved file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from ui.model_manager import ModelManager
from ui.settings_dialog import SettingsDialog


class DialogAction(QAction):
    """A QAction that remembers the dialog it opened last (None before the first trigger)."""

    dialog: Any = None


def models_action(window: QWidget, on_model_chosen: Callable[[Path], Any], **manager_options: Any) -> QAction:
    """'Models…': opens the one ModelManager of `window` (options go to its constructor)."""
    action = DialogAction("&Models…", window)
    action.setObjectName("openModelManager")
    action.setStatusTip("Installed models, the default model, and official models to download")

    def open_manager() -> None:
        if action.dialog is None:
            dialog = ModelManager(window, **manager_options)
            dialog.modelChosen.connect(on_model_chosen)
            app = QCoreApplication.instance()
            if app is not None:
                app.aboutToQuit.connect(dialog.shutdown)
            action.dialog = dialog
        action.dialog.show()
        action.dialog.raise_()
        action.dialog.activateWindow()

    action.triggered.connect(open_manager)
    return action


def settings_action(
    window: QWidget, on_settings_changed: Callable[[Any], Any], **dialog_options: Any
) -> QAction:
    """'Settings…' (the platform's Preferences shortcut): a SettingsDialog read from the saved file."""
    action = DialogAction("&Settings…", window)
    action.setObjectName("openSettings")
    action.setMenuRole(QAction.MenuRole.PreferencesRole)
    action.setShortcut("Ctrl+,")

    def open_settings() -> None:
        dialog = SettingsDialog(parent=window, **dialog_options)
        dialog.settingsChanged.connect(on_settings_changed)
        dialog.finished.connect(dialog.deleteLater)
        action.dialog = dialog
        dialog.open()

    action.triggered.connect(open_settings)
    return action
