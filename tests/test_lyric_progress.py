"""Where a song sings in its lyrics (`ComposeEngine.lyric_progress`): the argmax of the top prior's
alignment computed directly with `get_alignment`, mapped back to the characters the user typed."""

from __future__ import annotations

import numpy as np
import pytest

from engine.api import ALIGNMENT_HOP, ComposeEngine, LabelSpec
from engine.prior.text import lyrics_vocab
from engine.sampling.alignment import get_alignment
from tests.compose_model import write_tiny_bundle

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on shared cores

# Typed lyrics with what cleaning changes: accents (transliterated), "ß" (two letters from one), a dash
# and quotes unidecode rewrites, an emoji and a tab-free symbol it drops, a backslash (a newline).
LYRICS = "Über den Fluß — «naïve» sky ☂ la\\la 🎵 end of line, and the chorus again: oh oh oh!"


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> ComposeEngine:
    return ComposeEngine.load(write_tiny_bundle(tmp_path_factory.mktemp("lyric"), lyric_alignment=True))


def song_codes(engine: ComposeEngine, n: int, seed: int = 0) -> np.ndarray:
    bins = engine.bundle.top.config.l_bins
    return np.random.default_rng(seed).integers(0, bins, n).astype(np.int64)


def direct_argmax(engine: ComposeEngine, codes: np.ndarray, spec: LabelSpec) -> np.ndarray:
    import torch

    weights = get_alignment(
        engine.bundle.top, torch.from_numpy(codes)[None], [engine.label(spec)], ALIGNMENT_HOP
    )
    return weights[0].argmax(axis=1)


def test_source_offsets_round_trip():
    for v3 in (False, True):
        vocab = lyrics_vocab(v3)
        tokens, offsets = vocab.encode(LYRICS), vocab.source_offsets(LYRICS)
        assert len(offsets) == len(tokens)
        assert offsets == sorted(offsets)
        # The tokens of each typed character, in order, are exactly the cleaned text.
        assert "".join(vocab.clean(LYRICS[i]) for i in sorted(set(offsets))) == vocab.clean(LYRICS)
        for j, at in enumerate(offsets):
            before = offsets[:j].count(at)  # a character giving several tokens: which one this is
            assert vocab.decode([tokens[j]]) == vocab.clean(LYRICS[at])[before]
        dropped = set(range(len(LYRICS))) - set(offsets)
        assert {LYRICS[i] for i in dropped} >= {"☂", "🎵"}


def test_progress_is_the_argmax_of_the_alignment(engine):
    cps = engine.codes_per_second
    n = 5 * engine.n_ctx // 2  # several windows, so the lyric window moves through the text
    codes = song_codes(engine, n)
    spec = LabelSpec("Ada Tone", "rock", LYRICS, total_seconds=n / cps)
    progress = engine.lyric_progress(codes, spec)
    expected = direct_argmax(engine, codes, spec)
    np.testing.assert_array_equal(progress.tokens, expected)
    assert len(set(expected.tolist())) > 1

    vocab = lyrics_vocab(engine.bundle.label_config(engine.bundle.top).v3)
    full = engine.label(spec).full_tokens
    offsets = vocab.source_offsets(LYRICS)
    for k in range(n):
        at = int(progress.chars[k])
        assert at == offsets[progress.tokens[k]]
        # The character at the reported offset is the one whose token was attended to.
        assert vocab.decode([full[progress.tokens[k]]]) in vocab.clean(LYRICS[at])
    assert progress.sections == ((0, LYRICS),)
    assert progress.sung(LYRICS) == progress.chars[-1] + 1
    assert progress.char_at(0, LYRICS) == progress.chars[0]
    assert progress.char_at(n, LYRICS) == -1 and progress.char_at(0, "other words") == -1
    assert progress.sung("other words") == 0


def test_each_section_sings_its_own_lyrics(engine):
    cps = engine.codes_per_second
    n, change = 2 * engine.n_ctx, engine.n_ctx + 7
    codes = song_codes(engine, n, seed=1)
    first = LabelSpec("Ada Tone", "rock", LYRICS, total_seconds=n / cps)
    second = LabelSpec("Bo Noise", "jazz", "A second verse, sung by somebody else.", total_seconds=n / cps)
    progress = engine.lyric_progress(codes, [(0, first), (change, second)])
    np.testing.assert_array_equal(progress.tokens[:change], direct_argmax(engine, codes, first)[:change])
    np.testing.assert_array_equal(progress.tokens[change:], direct_argmax(engine, codes, second)[change:])
    assert progress.lyrics_at(change - 1) == LYRICS and progress.lyrics_at(change) == second.lyrics
    assert progress.sung(LYRICS) == progress.chars[change - 1] + 1
    assert progress.sung(second.lyrics) == progress.chars[-1] + 1

    # A section without lyrics sings nothing; the song before it keeps what it sang.
    silent = LabelSpec("Bo Noise", "jazz", "", total_seconds=n / cps)
    quiet = engine.lyric_progress(codes, [(0, first), (change, silent)])
    assert (quiet.chars[change:] == -1).all() and (quiet.tokens[change:] == -1).all()
    np.testing.assert_array_equal(quiet.tokens[:change], progress.tokens[:change])
    assert quiet.sung("") == 0 and quiet.sung(LYRICS) == progress.sung(LYRICS)


def test_a_model_without_alignment_sings_no_lyrics(tmp_path):
    plain = ComposeEngine.load(write_tiny_bundle(tmp_path / "plain", upsamplers=False))
    assert not plain.sings_lyrics
    assert plain.lyric_progress(song_codes(plain, 10), LabelSpec("Ada Tone", "rock", LYRICS)) is None


def test_an_empty_song_has_sung_nothing(engine):
    progress = engine.lyric_progress(np.zeros(0, np.int64), LabelSpec("Ada Tone", "rock", LYRICS))
    assert progress.n_codes == 0 and progress.sung(LYRICS) == 0
