"""The preview guides the render: an upsampled render's coarse band envelope drawn toward its preview's.

A render (the bottom decoder's audio of codes two upsamplers drew) has the detail a preview lacks, but
the default model's upsamplers lose part of what the top level says: their renders are duller than the
songs and flatten each genre's drum sound, so classifiers fitted on real songs name a render's genre and
artist less often than its preview's (docs/MODELS.md). The preview (the top decoder's audio of the same
top codes) is what the musician listened to and picked, and its envelope is nearer the song's.

So each short frame of the render is scaled, band by band, toward the preview's energy in that band and
frame: the gain in decibels is the preview's level minus the render's, limited to +/- `limit_db`, spread
back over the frequency bins through the same triangular mel bands. What is finer than a band and a frame
(the harmonics, the attacks inside a frame, the noise of a hit) stays the render's.

Pure function of the two signals. Each output sample depends only on the input within one frame length
on either side, so a render decoded as it grows can be guided as it grows (`GuidedTail`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from functools import lru_cache

import numpy as np
import torch

from engine.analysis.mel import mel_filters

_POWER_FLOOR = 1e-10  # keeps silent bands finite in decibels; digital silence sits far below it


@dataclass(frozen=True)
class RenderGuide:
    """How strongly and how finely the preview guides the render."""

    bands: int = 48  # triangular mel bands from 0 Hz to Nyquist
    limit_db: float = 12.0  # the largest cut or boost of any band in any frame
    frame_seconds: float = 0.032  # analysis frame (rounded to a power of two in samples); hop a quarter

    def __post_init__(self) -> None:
        if isinstance(self.bands, bool) or not isinstance(self.bands, int) or not 2 <= self.bands <= 256:
            raise ValueError(f"a render guide's bands must be a whole number, 2 to 256, got {self.bands!r}")
        for name in ("limit_db", "frame_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"a render guide's {name} must be a number above 0, got {value!r}")
        if self.frame_seconds > 1.0:
            raise ValueError(f"a render guide's frame_seconds must be at most 1, got {self.frame_seconds!r}")

    def frame_length(self, sample_rate: int) -> int:
        """Samples per analysis frame: the power of two nearest frame_seconds (512 at 16 kHz)."""
        return 1 << max(4, round(np.log2(self.frame_seconds * sample_rate)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RenderGuide:
        names = [f.name for f in fields(cls)]
        if not isinstance(data, dict) or set(data) - set(names):
            raise ValueError(f"a render guide is {{{', '.join(names)}}}, got {data!r}")
        return cls(**data)


@lru_cache(maxsize=8)
def _bands(sample_rate: int, n_fft: int, bands: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(filters (bands, bins); their transpose normalised per bin; for each bin, the nearest bin a band
    covers, so that 0 Hz and Nyquist, which no triangle reaches, follow their neighbours)."""
    filters = torch.from_numpy(mel_filters(sample_rate, n_fft, bands, 0.0).astype(np.float32))
    weight = filters.sum(dim=0)
    covered = torch.nonzero(weight > 0).squeeze(1)
    spread = filters.t() / torch.where(weight > 0, weight, torch.ones_like(weight)).unsqueeze(1)
    bins = torch.arange(len(weight))
    nearest = covered[(bins.unsqueeze(1) - covered.unsqueeze(0)).abs().argmin(dim=1)]
    return filters, spread, nearest


@torch.no_grad()
def guide_render(render: np.ndarray, preview: np.ndarray, sample_rate: int, guide: RenderGuide) -> np.ndarray:
    """`render` (mono float32) with its band envelope drawn toward `preview`'s, frame by frame.

    The two are aligned from their first sample; where the preview is shorter, the render keeps its own
    envelope (it is guided against silence nowhere). Returns float32 audio as long as `render`."""
    render = np.asarray(render, np.float32)
    n = len(render)
    n_fft = guide.frame_length(sample_rate)
    if n < n_fft:  # shorter than one frame: nothing to measure an envelope on
        return render.copy()
    hop = n_fft // 4
    guide_audio = np.zeros(n, np.float32)
    m = min(n, len(preview))
    guide_audio[:m] = np.asarray(preview[:m], np.float32)
    window = torch.hann_window(n_fft)

    def stft(x: np.ndarray) -> torch.Tensor:
        # Zero padding at the ends: the frames keep the whole render's grid whatever its length.
        x = torch.from_numpy(x)
        return torch.stft(x, n_fft, hop, window=window, pad_mode="constant", return_complex=True)

    spec_render, spec_guide = stft(render), stft(guide_audio)
    filters, spread, nearest = _bands(sample_rate, n_fft, guide.bands)

    def level_db(spec: torch.Tensor) -> torch.Tensor:
        return 10.0 * torch.log10(filters @ spec.abs().square() + _POWER_FLOOR)

    gain_db = (level_db(spec_guide) - level_db(spec_render)).clamp(-guide.limit_db, guide.limit_db)
    if m < n:  # a frame that reaches past the preview's end would be guided toward its silence
        reaches_past = torch.arange(spec_render.shape[1]) * hop + n_fft // 2 > m
        gain_db[:, reaches_past] = 0.0
    gain = (spread @ torch.pow(10.0, gain_db / 20.0))[nearest]  # (bins, frames)
    out = torch.istft(spec_render * gain, n_fft, hop, window=window, center=True, length=n)
    return out.numpy().astype(np.float32)


class GuidedTail:
    """Guides a render decoded as it grows, re-guiding only what new audio can change.

    `update(audio, preview, unchanged)`: the whole render so far, the preview (the same at every call),
    and how many of the render's first samples are the same as at the last call. Returns the guided
    render, equal (up to float rounding) to `guide_render` of the whole, having guided only the tail."""

    def __init__(self, sample_rate: int, guide: RenderGuide) -> None:
        self.sample_rate, self.guide = sample_rate, guide
        self.n_fft = guide.frame_length(sample_rate)
        self.guided = np.zeros(0, np.float32)

    def update(self, audio: np.ndarray, preview: np.ndarray, unchanged: int) -> np.ndarray:
        n_fft, hop = self.n_fft, self.n_fft // 4
        # Samples within a frame of the old end, or of a change, heard padding or the old audio there.
        kept = max(0, min(unchanged, len(self.guided)) - n_fft)
        start = (max(0, kept - n_fft) // hop) * hop  # on the whole render's frame grid
        if start == 0:
            self.guided = guide_render(audio, preview, self.sample_rate, self.guide)
            return self.guided
        tail = guide_render(audio[start:], preview[start:], self.sample_rate, self.guide)
        # A tail's first frame length heard the padding before `start`; from there on it is exact.
        keep_from = start + n_fft
        self.guided = np.concatenate([self.guided[:keep_from], tail[keep_from - start :]])
        return self.guided
