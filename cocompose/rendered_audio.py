"""The song up to a take as far as the upsampled render has reached, with the fast preview after it. Qt-free.

The render of root..take is read from the bottom-level (level 0) windows that upsampling saved for the
stretch of that whole path, the one `UpsampleRequest(leaf_id=take)` resolves to (`resolve_stretch`), in
order up to the first gap (`finished_windows`). Their stretch key hashes the path's codes and the
conditioning along them, so windows saved before a swap, a prime or under another voice never match.
They are decoded with the bottom decoder and, for a model with a render guide, drawn toward the preview's
band envelope (`ComposeEngine.guide_render`); from the last rendered sample on, the preview takes over,
after a short crossfade so the seam does not click. With nothing rendered the result is the preview itself.

Decoding grows with the render: `BottomDecoder` keeps what it decoded of a path and decodes (and guides)
only the new codes, with the decoder's and the guide's context before them, so hearing a render grow costs
about what it adds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cocompose.service.requests import UpsampleRequest
from cocompose.service.upsampling import finished_windows, resolve_stretch
from cocompose.store import Project

CROSSFADE_S = 0.01  # the rendered part fades into the preview over its last 10 ms


@dataclass(frozen=True)
class BottomCodes:
    """The level-0 codes rendered so far of one path, from the start of the song."""

    key: str  # the stretch's key: what the windows were rendered from
    codes: np.ndarray  # (T0,) int64; T0 = 0 when no window is saved yet


def saved_bottom_codes(project: Project, engine, leaf_id: int) -> BottomCodes | None:
    """The level-0 windows saved for root..leaf_id, concatenated; None when the path cannot be
    upsampled at all (a model without upsamplers, or a song shorter than the upsamplers' shortest input).
    Call it with the project lock held."""
    if not engine.can_upsample:
        return None
    try:
        stretch = resolve_stretch(
            project, engine, UpsampleRequest(leaf_id=leaf_id), engine.min_upsample_codes()
        )
    except ValueError:  # too short to upsample: nothing can have been rendered
        return None
    windows = finished_windows(project, stretch, levels=1)[0]
    codes = np.concatenate(windows).astype(np.int64) if windows else np.zeros(0, np.int64)
    return BottomCodes(stretch.key, codes)


def splice(
    rendered: np.ndarray, preview: np.ndarray, sample_rate: int, crossfade_s: float = CROSSFADE_S
) -> np.ndarray:
    """`rendered` from the start, then `preview` from the sample where it ends: as long as `preview`.
    Over the last `crossfade_s` of the rendered part, a linear crossfade goes from one to the other.
    A render that covers the whole preview is returned as it is (no fade at the very end)."""
    preview = np.asarray(preview, np.float32)
    n = min(len(rendered), len(preview))
    if n == len(preview):
        return np.asarray(rendered[:n], np.float32).copy()
    out = preview.copy()
    fade = min(n, round(crossfade_s * sample_rate))
    out[: n - fade] = rendered[: n - fade]
    if fade:
        weight = np.arange(1, fade + 1, dtype=np.float32) / np.float32(fade + 1)  # toward the preview
        out[n - fade : n] = rendered[n - fade : n] * (1 - weight) + preview[n - fade : n] * weight
    return out


def rendered_audio(project: Project, engine, leaf_id: int, preview: np.ndarray) -> tuple[np.ndarray, float]:
    """(audio, seconds rendered) of root..leaf_id: the render decoded in one pass, spliced onto `preview`
    (the path's preview audio at the engine's rate). The reference for what the app plays; the app
    itself decodes as the render grows (`BottomDecoder`)."""
    found = saved_bottom_codes(project, engine, leaf_id)
    if found is None or len(found.codes) == 0:
        return np.asarray(preview, np.float32).copy(), 0.0
    audio, rate = engine.decode_bottom(found.codes)
    audio = engine.guide_render(audio, preview)
    return splice(audio, preview, rate), min(len(audio), len(preview)) / rate


class BottomDecoder:
    """Decodes the level-0 codes of one render as they grow, keeping what it decoded. Samples further
    than the decoder's context from the end do not change when codes are added (the chunked decode's
    own rule, `engine.vqvae.encdec.decoder_context_frames`), so only the rest is decoded again."""

    def __init__(self, engine) -> None:
        from engine.render_guide import GuidedTail
        from engine.vqvae.encdec import decoder_context_frames

        vqvae = engine.bundle.vqvae
        self._engine = engine
        self.hop = int(vqvae.hop_lengths[0])
        self.margin = decoder_context_frames(vqvae.decoders[0])
        self.key: str | None = None
        self.codes = np.zeros(0, np.int64)
        self.audio = np.zeros(0, np.float32)  # decoded, not guided
        guide = engine.bundle.render_guide
        self._guided = None if guide is None else GuidedTail(engine.sample_rate, guide)

    def decode(self, found: BottomCodes, preview: np.ndarray) -> np.ndarray:
        """The audio of `found.codes`, guided by `preview` (the path's preview audio) for a model with a
        render guide; decodes only what is new since the last call for the same render."""
        old = self.codes
        grown = (
            found.key == self.key
            and len(found.codes) >= len(old)
            and np.array_equal(found.codes[: len(old)], old)
        )
        unchanged = 0  # samples of the decoded audio that are as they were at the last call
        if not grown:
            audio, _ = self._engine.decode_bottom(found.codes)
        elif len(found.codes) == len(old):
            audio, unchanged = self.audio, len(self.audio)
        else:
            settled = max(0, len(old) - self.margin)  # frames whose audio no later code can change
            lo = max(0, settled - self.margin)
            tail, _ = self._engine.decode_bottom(found.codes[lo:])
            audio = np.concatenate([self.audio[: settled * self.hop], tail[(settled - lo) * self.hop :]])
            unchanged = settled * self.hop
        self.key, self.codes, self.audio = found.key, found.codes.copy(), audio
        if self._guided is None:
            return audio
        return self._guided.update(audio, np.asarray(preview, np.float32), unchanged)
