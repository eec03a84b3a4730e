"""Settings: the JSON file (round trip, atomic replace, unknown keys kept, bad files and values giving the
defaults with warnings) and the settings dialog on a real offscreen event loop."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from cocompose.audio_io import AudioDevice
from cocompose.settings import (
    SETTINGS_FILE,
    DeviceChoice,
    Settings,
    SettingsError,
    device_choices,
    load_settings,
    resolve_compute,
    save_settings,
)
from ui.settings_dialog import SettingsDialog

pytestmark = [pytest.mark.qt, pytest.mark.usefixtures("one_thread")]

CHANGED = Settings(device="cpu", precision="bfloat16", cpu_threads=2, output_device="Studio Out",
                   input_device="Mic In", branches=5, seconds=12.5, temperature=0.9,
                   loudness_lufs=-16.0)  # fmt: skip


def test_saved_settings_load_back_equal(tmp_path):
    assert load_settings(tmp_path).settings == Settings()  # nothing saved yet: the defaults, no warning
    assert load_settings(tmp_path).warnings == ()
    path = save_settings(CHANGED, tmp_path)
    assert path == tmp_path / SETTINGS_FILE
    loaded = load_settings(tmp_path)
    assert loaded.settings == CHANGED and loaded.warnings == ()
    quiet = replace(CHANGED, loudness_lufs=None, output_device=None)
    save_settings(quiet, tmp_path)
    assert load_settings(tmp_path).settings == quiet
    assert json.loads(path.read_text())["format"] == "cocompose-settings"


def test_unknown_keys_are_kept_through_load_and_save(tmp_path):
    path = tmp_path / SETTINGS_FILE
    future = {"ui_theme": "dark", "mixer": {"tracks": [1, 2, 3]}}
    path.write_text(json.dumps({"format": "cocompose-settings", "version": 7, "branches": 6, **future}))
    loaded = load_settings(tmp_path)
    assert loaded.settings.branches == 6 and loaded.settings.extra == future and loaded.warnings == ()
    save_settings(replace(loaded.settings, branches=2), tmp_path)
    data = json.loads(path.read_text())
    assert data["branches"] == 2 and {k: data[k] for k in future} == future


def test_a_corrupt_file_gives_the_defaults_with_a_warning_and_is_kept(tmp_path):
    path = tmp_path / SETTINGS_FILE
    path.write_text('{"branches": 4, oops')
    loaded = load_settings(tmp_path)
    assert loaded.settings == Settings()
    assert (
        len(loaded.warnings) == 1
        and str(path) in loaded.warnings[0]
        and "not valid JSON" in loaded.warnings[0]
    )
    save_settings(CHANGED, tmp_path)
    assert (tmp_path / (SETTINGS_FILE + ".corrupt")).read_text() == '{"branches": 4, oops'
    assert load_settings(tmp_path).settings == CHANGED

    path.write_text(json.dumps(["not", "settings"]))
    assert load_settings(tmp_path).settings == Settings()
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert load_settings(tmp_path).warnings[0].startswith(f"cannot read {path}")


def test_bad_values_fall_back_one_by_one_with_warnings_naming_them(tmp_path):
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({
        "device": "gpu9", "precision": "float8", "cpu_threads": True, "branches": 0, "seconds": 8,
        "temperature": "hot", "loudness_lufs": None, "output_device": "", "input_device": "Mic In",
    }))  # fmt: skip
    loaded = load_settings(tmp_path)
    expected = replace(Settings(), seconds=8.0, loudness_lufs=None, input_device="Mic In")
    assert loaded.settings == expected
    named = [w.split("'")[1] for w in loaded.warnings]
    assert named == sorted(["device", "precision", "cpu_threads", "branches", "temperature", "output_device"])
    assert "'gpu9'; using 'auto'" in " ".join(loaded.warnings)


def test_the_file_is_replaced_atomically_never_rewritten_in_place(tmp_path):
    save_settings(CHANGED, tmp_path)
    path = tmp_path / SETTINGS_FILE
    before = path.read_text()
    (tmp_path / "old-link").hardlink_to(path)  # a second name for the old file's contents
    save_settings(replace(CHANGED, branches=9), tmp_path)
    assert (tmp_path / "old-link").read_text() == before  # the old file was never opened for writing
    assert json.loads(path.read_text())["branches"] == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old-link", SETTINGS_FILE]  # no temporaries left


def test_what_cannot_be_saved_is_said(tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the config folder should be")
    with pytest.raises(SettingsError, match=rf"cannot save the settings to {blocked / SETTINGS_FILE}"):
        save_settings(CHANGED, blocked)
    with pytest.raises(ValueError, match="setting 'branches' cannot be 0"):
        save_settings(replace(CHANGED, branches=0), tmp_path)
    assert not (tmp_path / SETTINGS_FILE).exists()


def test_the_compute_probe_names_what_torch_can_use():
    import torch

    choices = device_choices()
    assert [c.value for c in choices[:2]] == ["auto", "cpu"]
    assert any(c.value.startswith("cuda") for c in choices) == torch.cuda.is_available()
    compute = resolve_compute(Settings(device="cuda:7", precision="float16"))
    if torch.cuda.device_count() <= 7:
        assert compute.device == "cpu" and compute.precision == "float32"
        assert "cuda:7 is not available" in compute.note and "float16 is slow on the CPU" in compute.note
    assert resolve_compute(Settings(device="cpu", precision="bfloat16")) == resolve_compute(
        Settings(device="cpu", precision="bfloat16")
    )
    assert resolve_compute(Settings(device="cpu", precision="bfloat16")).precision == "bfloat16"


DEVICES = [
    AudioDevice(0, "Studio Out", "ALSA", 0, 2, 48_000.0),
    AudioDevice(1, "Mic In", "ALSA", 1, 0, 48_000.0),
    AudioDevice(2, "Duplex", "JACK Audio Connection Kit", 2, 2, 48_000.0),
]
CHOICES = (
    DeviceChoice("auto", "Automatic (GPU 0)"),
    DeviceChoice("cpu", "CPU"),
    DeviceChoice("cuda:0", "GPU 0"),
)


def _dialog(qtbot, tmp_path, **kwargs) -> SettingsDialog:
    dialog = SettingsDialog(
        config_dir=tmp_path, **({"devices": DEVICES, "compute_choices": CHOICES} | kwargs)
    )
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_dialog_edits_are_saved_and_signalled_on_ok(qtbot, tmp_path):
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({"branches": 4, "window": {"w": 800}}))
    dialog = _dialog(qtbot, tmp_path)
    assert dialog.values() == replace(Settings(), branches=4, extra={"window": {"w": 800}})
    assert dialog.branches.value() == 4
    assert [dialog.output_device.itemText(i) for i in range(dialog.output_device.count())] == [
        "System default", "Studio Out (ALSA, 2 output channels)",
        "Duplex (JACK Audio Connection Kit, 2 output channels)",
    ]  # fmt: skip
    assert dialog.input_device.count() == 3  # the default, Mic In, Duplex

    dialog.device.setCurrentIndex(2)
    dialog.precision.setCurrentIndex(1)
    dialog.threads.setValue(2)
    dialog.output_device.setCurrentIndex(1)
    dialog.input_device.setCurrentIndex(2)
    dialog.branches.setValue(5)
    dialog.seconds.setValue(12.5)
    dialog.temperature.setValue(0.9)
    dialog.lufs.setValue(-16.0)
    with qtbot.waitSignal(dialog.settingsChanged) as changed:
        dialog.ok_button.click()
    expected = replace(CHANGED, device="cuda:0", input_device="Duplex", extra={"window": {"w": 800}})
    assert changed.args == [expected]
    assert load_settings(tmp_path).settings == expected and not dialog.isVisible()

    again = _dialog(qtbot, tmp_path)
    assert again.values() == expected
    again.normalise.setChecked(False)
    assert not again.lufs.isEnabled()
    with qtbot.assertNotEmitted(again.settingsChanged):
        again.reject()
    assert load_settings(tmp_path).settings == expected  # Cancel changes nothing


def test_dialog_keeps_devices_that_are_not_there_now(qtbot, tmp_path):
    saved = replace(Settings(), device="cuda:3", output_device="USB Interface", input_device=None)
    save_settings(saved, tmp_path)
    dialog = _dialog(qtbot, tmp_path, devices=[])
    assert "No audio devices: no sound device found" in dialog.audio_note.text()
    assert dialog.output_device.currentText() == "USB Interface (not connected now)"
    assert dialog.input_device.currentText() == "System default" and dialog.input_device.count() == 1
    assert dialog.device.currentText() == "cuda:3 (not found on this machine: the CPU is used)"
    assert dialog.values() == saved  # shown, and saved back, as they were


def test_dialog_shows_a_bad_file_and_says_why_it_cannot_save(qtbot, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / SETTINGS_FILE).write_text(json.dumps({"temperature": -1}))
    dialog = _dialog(qtbot, config)
    assert dialog.warning_label.isVisible()
    assert "'temperature' has the unusable value -1; using 0.98" in dialog.warning_label.text()
    shutil.rmtree(config)
    config.write_text("a file where the config folder should be")
    with qtbot.assertNotEmitted(dialog.settingsChanged):
        dialog.ok_button.click()
    assert dialog.isVisible() and f"cannot save the settings to {config / SETTINGS_FILE}" in (
        dialog.error_label.text()
    )


def test_dialog_probes_compute_devices_off_the_gui_thread(qtbot, tmp_path):
    dialog = _dialog(qtbot, tmp_path, compute_choices=None)
    qtbot.waitUntil(lambda: dialog.probe_done, timeout=20_000)
    shown = [dialog.device.itemText(i) for i in range(dialog.device.count())]
    assert shown == [c.label for c in device_choices()]
    assert dialog.values().device == "auto"


@pytest.mark.audio
def test_dialog_lists_the_real_sound_devices(qtbot, tmp_path, jack_server):
    dialog = _dialog(qtbot, tmp_path, devices=None)
    outputs = [dialog.output_device.itemText(i) for i in range(dialog.output_device.count())]
    inputs = [dialog.input_device.itemText(i) for i in range(dialog.input_device.count())]
    assert any(t.startswith(f"{jack_server.device_name} (JACK") for t in outputs)
    assert any(t.startswith(f"{jack_server.device_name} (JACK") for t in inputs)
    dialog.output_device.setCurrentIndex(
        outputs.index(next(t for t in outputs if jack_server.device_name in t))
    )
    assert dialog.values().output_device == jack_server.device_name
    assert dialog.audio_note.text() == ""
