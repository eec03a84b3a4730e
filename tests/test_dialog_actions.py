"""The menu actions that open the model manager and the settings dialog, on a real offscreen window."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMainWindow

from cocompose.settings import DeviceChoice, Settings, load_settings
from tests.compose_model import write_tiny_bundle
from ui.dialog_actions import models_action, settings_action
from ui.model_manager import ModelManager
from ui.settings_dialog import SettingsDialog

pytestmark = [pytest.mark.qt, pytest.mark.usefixtures("one_thread")]


@pytest.fixture
def window(qtbot):
    window = QMainWindow()
    qtbot.addWidget(window)
    window.show()
    return window


def test_the_models_action_keeps_one_manager_and_passes_the_chosen_folder_on(qtbot, window, tmp_path):
    default = write_tiny_bundle(tmp_path / "default-model")
    chosen = []
    action = models_action(window, chosen.append, models_dir=tmp_path / "models", default_dir=default)
    window.menuBar().addMenu("&Model").addAction(action)
    assert action.dialog is None  # nothing is read before the musician asks
    action.trigger()
    dialog = action.dialog
    assert isinstance(dialog, ModelManager) and dialog.isVisible() and dialog.parent() is window
    qtbot.waitUntil(lambda: dialog.catalog is not None, timeout=20_000)
    dialog.use_button.click()
    assert chosen == [default]
    dialog.close()
    assert not dialog.isVisible()
    action.trigger()
    assert action.dialog is dialog and dialog.isVisible()


def test_the_settings_action_opens_the_saved_settings_and_reports_ok(qtbot, window, tmp_path):
    changed = []
    choices = (DeviceChoice("auto", "Automatic"), DeviceChoice("cpu", "CPU"))
    action = settings_action(window, changed.append, config_dir=tmp_path, devices=[], compute_choices=choices)
    action.trigger()
    dialog = action.dialog
    assert isinstance(dialog, SettingsDialog) and dialog.isVisible() and dialog.values() == Settings()
    dialog.branches.setValue(7)
    dialog.ok_button.click()
    assert changed == [Settings(branches=7)] and load_settings(tmp_path).settings == Settings(branches=7)
    action.trigger()
    assert action.dialog is not dialog and action.dialog.branches.value() == 7
    action.dialog.reject()
