"""Streaming previews: the audio handed out piece by piece while a take grows is the audio of decoding the
finished take in one pass, whatever the piece sizes, with or without song context before the take."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.preview_stream import StreamingPreview
from engine.vqvae import TINY, VQVAE

pytestmark = pytest.mark.usefixtures("one_thread")

torch.manual_seed(0)
VQ = VQVAE(TINY).eval()


def _full(codes: np.ndarray, level: int) -> np.ndarray:
    return VQ.decode(torch.from_numpy(codes)[None], level)[0].numpy()


@settings(max_examples=10, deadline=None)
@given(
    level=st.sampled_from([0, 2]),
    context=st.integers(0, 40),
    pieces=st.lists(st.integers(1, 29), min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
)
def test_streamed_audio_equals_one_decode_of_the_whole_take(level, context, pieces, seed):
    rng = np.random.default_rng(seed)
    song = rng.integers(0, TINY.l_bins, size=context + sum(pieces))
    stream = StreamingPreview(VQ, level, song[:context])
    out, at = [], context
    for size in pieces:
        out.append(stream.push(song[at : at + size]))
        at += size
        heard = sum(len(a) for a in out)
        # Nothing is held back longer than the decoder's reach.
        assert heard >= (at - context - stream.margin) * VQ.hop_lengths[level]
    out.append(stream.finish())
    hop = VQ.hop_lengths[level]
    expected = _full(song, level)[context * hop :]
    got = np.concatenate(out)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=0)
    assert stream.frames == sum(pieces)


def test_finish_twice_and_empty_pushes_hand_out_nothing_more():
    stream = StreamingPreview(VQ, 2)
    assert len(stream.push(np.zeros(0, np.int64))) == 0
    first = stream.push(np.arange(30) % TINY.l_bins)
    rest = stream.finish()
    assert len(first) + len(rest) == 30 * VQ.hop_lengths[2]
    assert len(stream.finish()) == 0
