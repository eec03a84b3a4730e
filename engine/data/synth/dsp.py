"""Small vectorised building blocks: wavetables, envelopes, FFT convolution, a room reverb, mixing.

Everything is plain numpy on float64 buffers. Tones are played from single-cycle wavetables built with
an inverse FFT from harmonic amplitudes: that keeps every note band-limited (no aliasing) and costs a
table lookup per sample instead of one sine per harmonic per sample, which is what makes a 30 s song
render in a fraction of a second.
"""

from __future__ import annotations

import numpy as np

TABLE_SIZE = 2048
NYQUIST_MARGIN = 0.45  # keep partials below 0.45 * sample rate


def harmonic_count(freq: float, sr: int, cap: int = 64) -> int:
    """How many harmonics of `freq` fit under the Nyquist margin (at least 1)."""
    return int(max(1, min(cap, NYQUIST_MARGIN * sr // max(freq, 1.0))))


def table_from_harmonics(amps: np.ndarray) -> np.ndarray:
    """One cycle (TABLE_SIZE samples) of sum_k amps[k-1] * sin(2 pi k x)."""
    spectrum = np.zeros(TABLE_SIZE // 2 + 1, dtype=np.complex128)
    count = min(len(amps), TABLE_SIZE // 2 - 1)
    # irfft of -j*A/2*N at bin k gives A*sin; the scale makes amplitudes come out as given.
    spectrum[1 : count + 1] = -0.5j * TABLE_SIZE * np.asarray(amps[:count], dtype=np.float64)
    return np.fft.irfft(spectrum, n=TABLE_SIZE)


def play_table(table: np.ndarray, phase_cycles: np.ndarray) -> np.ndarray:
    """Read a wavetable at a running phase (in cycles) with linear interpolation."""
    position = (phase_cycles % 1.0) * TABLE_SIZE
    index = position.astype(np.int64)
    frac = position - index
    return table[index % TABLE_SIZE] * (1.0 - frac) + table[(index + 1) % TABLE_SIZE] * frac


def steady_phase(freq: float, n: int, sr: int, start: float = 0.0) -> np.ndarray:
    return start + freq * np.arange(n) / sr


def vibrato_phase(freq: float, n: int, sr: int, rate_hz: float, depth_semitones: float, delay_s: float):
    """Phase of a tone whose vibrato fades in after `delay_s`, as singers and lead players do."""
    t = np.arange(n) / sr
    depth = depth_semitones * np.clip((t - delay_s) / max(delay_s, 1e-3), 0.0, 1.0)
    inst_freq = freq * 2.0 ** (depth * np.sin(2 * np.pi * rate_hz * t) / 12.0)
    return np.cumsum(inst_freq) / sr


def adsr(
    n: int, sr: int, attack: float, decay: float, sustain: float, release: float, gate: int
) -> np.ndarray:
    """Attack-decay-sustain envelope held for `gate` samples, then a linear release to 0 over the rest.

    `n` is the rendered length (gate + release tail)."""
    t = np.arange(n) / sr
    rise = np.clip(t / max(attack, 1e-4), 0.0, 1.0)
    fall = sustain + (1.0 - sustain) * np.exp(-np.maximum(t - attack, 0.0) / max(decay, 1e-4))
    env = np.where(t < attack, rise, fall)
    if gate < n:
        tail = np.linspace(1.0, 0.0, n - gate)
        env[gate:] *= tail
    return env


def _fft_size(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n: pocketfft is fast on these, and they waste far less padding than a
    power of two (a 30 s song would otherwise be padded by half)."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            size = p35
            while size < n:
                size *= 2
            best = min(best, size)
            p35 *= 3
        p5 *= 5
    return best


def fft_convolve(signal: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Linear convolution, truncated to the length of `signal`."""
    size = _fft_size(len(signal) + len(kernel) - 1)
    out = np.fft.irfft(np.fft.rfft(signal, size) * np.fft.rfft(kernel, size), size)
    return out[: len(signal)]


def room_reverb(signal: np.ndarray, sr: int, rng: np.random.Generator, seconds: float, wet: float):
    """A small room: exponentially decaying noise as impulse response, mixed under the dry signal.

    The tail is smoothed (darker late reflections) with a short moving average, as real rooms absorb
    highs faster than lows."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / seconds)  # -60 dB at `seconds`
    ir = np.convolve(ir, np.ones(4) / 4.0, mode="same")
    ir[: int(0.01 * sr)] = 0.0  # pre-delay: first reflections arrive ~10 ms late
    ir /= np.sqrt(np.sum(ir**2)) + 1e-12
    return (1.0 - wet) * signal + wet * fft_convolve(signal, ir)


def add_at(track: np.ndarray, sound: np.ndarray, start: int) -> None:
    """Mix `sound` into `track` from sample `start`, cutting whatever falls outside."""
    if start >= len(track) or start + len(sound) <= 0:
        return
    lo = max(start, 0)
    hi = min(start + len(sound), len(track))
    track[lo:hi] += sound[lo - start : hi - start]


def peak_normalise(signal: np.ndarray, peak: float = 0.89) -> np.ndarray:
    """Scale so the loudest sample sits at `peak` (about -1 dBFS): loud, but never clipped."""
    top = np.max(np.abs(signal))
    return signal * (peak / top) if top > 0 else signal
