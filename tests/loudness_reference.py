"""An independent ITU-R BS.1770-4 meter and true-peak estimate, to check the export against.

cocompose.export measures with pyloudnorm (time-domain biquads designed for any rate). This one shares
no code or method with it: it resamples to 48 kHz, where the standard publishes the K-weighting
coefficients, and applies them in the frequency domain (the FFT of the signal times the filters'
frequency response), then gates with cumulative sums. Two meters built differently agreeing is the test.
"""

from __future__ import annotations

import numpy as np
import soxr

RATE = 48_000
# ITU-R BS.1770-4, Table 1 (stage 1, the head's high-shelf) and Table 2 (stage 2, the RLB high-pass).
SHELF_B = (1.53512485958697, -2.69169618940638, 1.19839281085285)
SHELF_A = (1.0, -1.69065929318241, 0.73248077421585)
HIGHPASS_B = (1.0, -2.0, 1.0)
HIGHPASS_A = (1.0, -1.99004745483398, 0.99007225036621)
BLOCK = int(0.400 * RATE)
STEP = BLOCK // 4  # 75 % overlap
PAD = RATE  # 1 s of zeros after the signal: the filters' tails die out before the FFT wraps round


def biquad_response(b: tuple[float, ...], a: tuple[float, ...], n_fft: int) -> np.ndarray:
    """H(e^jw) = B(z) / A(z) at the rfft bins, z^-1 = e^-jw."""
    z_inv = np.exp(-2j * np.pi * np.arange(n_fft // 2 + 1) / n_fft)
    return (b[0] + b[1] * z_inv + b[2] * z_inv**2) / (a[0] + a[1] * z_inv + a[2] * z_inv**2)


def k_weighted(audio: np.ndarray) -> np.ndarray:
    """(T, C) at 48 kHz through both K-weighting stages."""
    n = audio.shape[0]
    n_fft = 1 << int(np.ceil(np.log2(n + PAD)))
    response = biquad_response(SHELF_B, SHELF_A, n_fft) * biquad_response(HIGHPASS_B, HIGHPASS_A, n_fft)
    spectrum = np.fft.rfft(audio.astype(np.float64), n=n_fft, axis=0)
    return np.fft.irfft(spectrum * response[:, None], n=n_fft, axis=0)[:n]


def integrated_lufs(audio: np.ndarray, rate: int) -> float:
    """Gated integrated loudness of `audio` ((T,) or (T, C), mono or stereo) in LUFS; -inf if gated out."""
    audio = audio[:, None] if audio.ndim == 1 else audio
    if rate != RATE:
        audio = soxr.resample(audio.astype(np.float64), rate, RATE, quality="VHQ")
    weighted = k_weighted(audio)
    n_blocks = (weighted.shape[0] - BLOCK) // STEP + 1
    # Mean square of every 400 ms block, every channel, from cumulative sums of the squares.
    cumulative = np.concatenate([np.zeros((1, weighted.shape[1])), np.cumsum(weighted**2, axis=0)])
    starts = np.arange(n_blocks) * STEP
    mean_square = (cumulative[starts + BLOCK] - cumulative[starts]) / BLOCK  # (blocks, C)
    power = mean_square.sum(axis=1)  # channel weights are 1 for left, right and mono
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10 * np.log10(power)
    above_absolute = power[block_lufs > -70.0]
    if above_absolute.size == 0:
        return float("-inf")
    relative_gate = -0.691 + 10 * np.log10(above_absolute.mean()) - 10.0
    gated = power[(block_lufs > -70.0) & (block_lufs > relative_gate)]
    return float(-0.691 + 10 * np.log10(gated.mean()))


def true_peak_dbtp(audio: np.ndarray, factor: int = 8) -> float:
    """Largest peak of `audio` (T, C) after ideal band-limited oversampling by `factor` (FFT zero-fill)."""
    n = audio.shape[0] + 2 * PAD  # zeros either side, so the FFT's wrap-round adds no false edge
    padded = np.pad(audio.astype(np.float64), ((PAD, PAD), (0, 0)))
    spectrum = np.fft.rfft(padded, axis=0)
    upsampled = np.fft.irfft(spectrum, n=n * factor, axis=0) * factor
    return float(20 * np.log10(np.abs(upsampled).max()))
