"""The main window's menu bar and toolbar: every command the window offers, with its shortcut.

The actions are kept on the window (`window.play_action`, `window.undo_action`, ...) because the window
enables and relabels them as the song and the model change; this module only declares them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QToolBar, QWidget

from ui.dialog_actions import models_action, settings_action

if TYPE_CHECKING:
    from ui.main_window import MainWindow


def new_action(parent: QWidget, text: str, slot, shortcut: str | None = None) -> QAction:
    action = QAction(text, parent)
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))  # spelled out: some StandardKeys are empty on Windows
    action.triggered.connect(lambda _=False: slot())
    return action


def build_menus(window: MainWindow) -> None:
    file_menu = window.menuBar().addMenu("&File")
    file_menu.addAction(new_action(window, "&New Song…", window.new_song_dialog, "Ctrl+N"))
    file_menu.addAction(new_action(window, "&Open…", window._choose_project, "Ctrl+O"))
    window.recent_menu = file_menu.addMenu("Open &Recent")
    window.save_as_action = new_action(window, "Save &As…", window._choose_save_as, "Ctrl+Shift+S")
    window.export_action = new_action(window, "&Export…", window.export_dialog, "Ctrl+E")
    window.close_action = new_action(window, "&Close Song", window.close_project, "Ctrl+W")
    for action in (window.save_as_action, window.export_action, window.close_action):
        file_menu.addAction(action)
    file_menu.addSeparator()
    window.record_action = new_action(window, "&Record a Riff…", window.record_dialog, "Ctrl+R")
    window.record_action.setToolTip("Record from the sound input, listen to it, and start the song from it")
    file_menu.addAction(window.record_action)
    file_menu.addSeparator()
    file_menu.addAction(new_action(window, "&Quit", window.close, "Ctrl+Q"))

    edit_menu = window.menuBar().addMenu("&Edit")
    window.undo_action = new_action(window, "&Undo", window.session.undo, "Ctrl+Z")
    window.redo_action = new_action(window, "&Redo", window.session.redo, "Ctrl+Shift+Z")
    edit_menu.addAction(window.undo_action)
    edit_menu.addAction(window.redo_action)
    edit_menu.addSeparator()
    edit_menu.addAction(window.tree_view.show_hidden_action)
    edit_menu.addSeparator()
    window.settings_action = settings_action(
        window, window.apply_settings, config_dir=window.session.state_dir
    )
    edit_menu.addAction(window.settings_action)

    model_menu = window.menuBar().addMenu("&Model")
    window.models_action = models_action(window, window.load_model)
    model_menu.addAction(window.models_action)
    model_menu.addAction(new_action(window, "Open Model &Folder…", window._choose_model))
    model_menu.addAction(new_action(window, "Load the &Default Model", lambda: window.load_model(None)))
    window.upsample_action = new_action(window, "&Upsample the Song", window.upsample, "Ctrl+U")
    model_menu.addAction(window.upsample_action)

    play_menu = window.menuBar().addMenu("&Play")
    window.play_action = new_action(window, "Play", lambda: window.playback.bar.play_pause())
    window.play_action.setToolTip("Play / pause the song up to the take under the cursor (Space)")
    window.render_action = QAction("Hear the &Upsampled Render", window, checkable=True)
    window.render_action.setShortcut(QKeySequence("U"))
    window.render_action.setIconText("Upsampled")  # the toolbar's short name
    window.render_action.setToolTip(
        "Play the upsampled render as far as it goes (Model > Upsample the Song), then the preview; "
        "while the song is upsampled the render is heard growing (U)"
    )
    window.render_action.toggled.connect(window.playback.set_rendered)
    play_menu.addAction(window.play_action)
    play_menu.addAction(window.render_action)

    help_menu = window.menuBar().addMenu("&Help")
    help_menu.addAction(new_action(window, "&About Cocompose", window.show_about))
    window._rebuild_recent()

    toolbar = QToolBar("Song", objectName="songToolbar", movable=False)
    toolbar.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    for action in (window.play_action, window.render_action, window.record_action, window.export_action,
                   window.models_action, window.settings_action):  # fmt: skip
        toolbar.addAction(action)
    window.addToolBar(toolbar)
