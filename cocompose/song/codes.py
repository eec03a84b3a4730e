"""Top-level VQ codes as an immutable value: little-endian int16 (or int32) bytes plus the dtype name.

Codes are stored in the project file as BLOBs, never as JSON lists: a three-minute song at the top level is
about 60 000 codes, and a BLOB of them is 120 kB where JSON would be three times that and slow to parse.
Keeping the bytes (not a numpy array) inside a frozen dataclass makes equality and hashing exact and cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

# Name stored in the file -> numpy dtype. Explicitly little-endian so files move between machines.
CODE_DTYPES: dict[str, np.dtype] = {"int16": np.dtype("<i2"), "int32": np.dtype("<i4")}
_INT16 = np.iinfo(np.int16)


@dataclass(frozen=True)
class Codes:
    """A run of top-level codes. `data` holds `len(self)` little-endian integers of `dtype`."""

    data: bytes = b""
    dtype: str = "int16"

    def __post_init__(self) -> None:
        if self.dtype not in CODE_DTYPES:
            raise ValueError(f"codes dtype must be one of {sorted(CODE_DTYPES)}, not {self.dtype!r}")
        if len(self.data) % CODE_DTYPES[self.dtype].itemsize:
            raise ValueError(f"{len(self.data)} bytes is not a whole number of {self.dtype} codes")

    @classmethod
    def of(cls, values: Iterable[int] | np.ndarray) -> Codes:
        """Codes from integers: int16 when every value fits (codebooks have 2048 entries), else int32."""
        array = np.asarray(list(values) if not isinstance(values, np.ndarray) else values)
        if array.size == 0:
            return cls()
        if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"codes must be a 1-D run of integers, got {array.dtype} of shape {array.shape}")
        fits_int16 = _INT16.min <= int(array.min()) and int(array.max()) <= _INT16.max
        name = "int16" if fits_int16 else "int32"
        return cls(array.astype(CODE_DTYPES[name]).tobytes(), name)

    def __len__(self) -> int:
        return len(self.data) // CODE_DTYPES[self.dtype].itemsize

    def to_numpy(self) -> np.ndarray:
        """A fresh native-endian int64 array (the engine's code tensors are int64)."""
        return np.frombuffer(self.data, dtype=CODE_DTYPES[self.dtype]).astype(np.int64)

    def tolist(self) -> list[int]:
        return self.to_numpy().tolist()

    def widened_to(self, dtype: str) -> Codes:
        if dtype == self.dtype:
            return self
        return Codes(self.to_numpy().astype(CODE_DTYPES[dtype]).tobytes(), dtype)

    def __add__(self, other: Codes) -> Codes:
        """Concatenation; the result is int32 if either side needs it."""
        dtype = "int32" if "int32" in (self.dtype, other.dtype) else "int16"
        return Codes(self.widened_to(dtype).data + other.widened_to(dtype).data, dtype)

    def split(self, at: int) -> tuple[Codes, Codes]:
        """(codes[:at], codes[at:]) with 0 < at < len: both halves of a cut must be non-empty."""
        if not 0 < at < len(self):
            raise ValueError(
                f"cannot split {len(self)} codes at {at}: both parts must keep at least one code"
            )
        size = CODE_DTYPES[self.dtype].itemsize
        return Codes(self.data[: at * size], self.dtype), Codes(self.data[at * size :], self.dtype)
