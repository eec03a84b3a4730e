"""How new takes are sampled: branches, seconds, temperature, top-k, top-p, label strength and the seed.

The seed is always shown, so a take the musician liked can be drawn again: it is a read-only line they can
select and copy (or copy with the button), and "Reuse" keeps it for the next request instead of drawing
a fresh one. Three actions: Generate after the take under the cursor, More variations of it (siblings),
Continue from the end of the song (the picked take).

Label strength (the engine's label guidance) starts at what the loaded model recommends
(`set_recommended_guidance`); the musician may change it for the next requests.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cocompose.service.requests import MAX_BRANCHES, MAX_GUIDANCE, MAX_SECONDS, SamplingParams

SEED_RANGE = 2**31  # fresh seeds stay short enough to read aloud; any seed up to 2**63 - 1 is accepted
GUIDANCE_HELP = (
    "How strongly the chosen artist and genre steer the new takes.\n"
    "0 (off): the model as it was trained.\n"
    "Higher: more like the artist and genre, but less varied.\n"
    "Above 0 the model makes a second pass for every step, so sampling is slower."
)


@dataclass(frozen=True)
class GenerateSettings:
    branches: int
    seconds: float
    seed: int
    sampling: SamplingParams


class GeneratePanel(QWidget):
    # mode is "generate" (after the selected take), "variations" (siblings of it) or "continue" (song end)
    generateRequested = Signal(str, object)  # (mode, GenerateSettings)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.branches = QSpinBox(objectName="branches", minimum=1, maximum=MAX_BRANCHES, value=3)
        self.seconds = QDoubleSpinBox(objectName="seconds", minimum=0.1, maximum=MAX_SECONDS, value=4.0,
                                      decimals=1, singleStep=0.5, suffix=" s")  # fmt: skip
        self.temperature = QDoubleSpinBox(objectName="temperature", minimum=0.01, maximum=10.0, value=0.98,
                                          decimals=2, singleStep=0.01)  # fmt: skip
        self.top_k = QSpinBox(objectName="topK", minimum=0, maximum=100_000, value=0, specialValueText="off")
        self.top_p = QDoubleSpinBox(objectName="topP", minimum=0.0, maximum=1.0, value=0.0, decimals=2,
                                    singleStep=0.05, specialValueText="off")  # fmt: skip
        self.guidance = QDoubleSpinBox(objectName="guidance", minimum=0.0, maximum=MAX_GUIDANCE, value=0.0,
                                       decimals=1, singleStep=0.5, specialValueText="off")  # fmt: skip
        self.guidance.setToolTip(GUIDANCE_HELP)
        self.seed = QLineEdit(objectName="seed", readOnly=True)
        self.seed.setToolTip("The seed of the first new take; take i gets seed + i")
        self.reuse_seed = QCheckBox("Reuse", objectName="reuseSeed")
        self.reuse_seed.setToolTip("Keep this seed for the next request instead of drawing a new one")
        copy = QPushButton("Copy", objectName="copySeed")
        copy.clicked.connect(lambda: QApplication.clipboard().setText(self.seed.text()))
        self._set_seed(secrets.randbelow(SEED_RANGE))

        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(copy)
        seed_row.addWidget(self.reuse_seed)
        form = QFormLayout()
        form.addRow("Branches", self.branches)
        form.addRow("Length", self.seconds)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-k", self.top_k)
        form.addRow("Top-p", self.top_p)
        form.addRow("Label strength", self.guidance)
        form.addRow("Seed", seed_row)

        self.generate_button = QPushButton("&Generate", objectName="generateButton")
        self.generate_button.setToolTip("New takes after the take under the cursor")
        self.variations_button = QPushButton("More &variations", objectName="variationsButton")
        self.variations_button.setToolTip("New siblings of the take under the cursor")
        self.continue_button = QPushButton("C&ontinue", objectName="continueButton")
        self.continue_button.setToolTip("New takes after the end of the song; one take is picked at once")
        for button, mode in ((self.generate_button, "generate"), (self.variations_button, "variations"),
                             (self.continue_button, "continue")):  # fmt: skip
            button.clicked.connect(lambda _=False, mode=mode: self.request(mode))
        buttons = QHBoxLayout()
        for button in (self.generate_button, self.variations_button, self.continue_button):
            buttons.addWidget(button)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addStretch(1)

    def _set_seed(self, seed: int) -> None:
        self.seed.setText(str(seed))

    def current_seed(self) -> int:
        return int(self.seed.text())

    def set_seed(self, seed: int) -> None:
        """Show (and with Reuse, keep) a seed, e.g. one taken from a take the musician liked."""
        self._set_seed(seed)

    def set_recommended_guidance(self, strength: float) -> None:
        """A model was loaded: start from the label strength it recommends (0 when it names none), and
        keep the recommendation in the tooltip, so the musician can find their way back to it."""
        self.guidance.setValue(strength)
        self.guidance.setToolTip(f"{GUIDANCE_HELP}\nThis model recommends {strength:g}.")

    def settings(self) -> GenerateSettings:
        """What the next request will use. Raises ValueError naming a bad value."""
        sampling = SamplingParams(self.temperature.value(), self.top_k.value(), self.top_p.value(),
                                  guidance=self.guidance.value())  # fmt: skip
        return GenerateSettings(self.branches.value(), self.seconds.value(), self.current_seed(), sampling)

    def request(self, mode: str) -> GenerateSettings:
        """Emit a request with the shown seed, then draw the next one unless Reuse is on."""
        settings = self.request_settings()
        self.generateRequested.emit(mode, settings)
        return settings

    def request_settings(self) -> GenerateSettings:
        """The settings for a request made elsewhere (a duet from the timeline): the shown seed is used
        up as by the Generate button, so the next request samples other takes unless Reuse is on."""
        settings = self.settings()
        if not self.reuse_seed.isChecked():
            self._set_seed(secrets.randbelow(SEED_RANGE))
        return settings

    def set_enabled_actions(self, can_sample: bool) -> None:
        for button in (self.generate_button, self.variations_button, self.continue_button):
            button.setEnabled(can_sample)
