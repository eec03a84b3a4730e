"""Compose one song (a plan of notes, words and drum hits) and render it to audio.

`compose_song` is pure bookkeeping on a seeded generator; `render_song` turns the plan into samples.
Keeping them apart lets tests inspect what was meant (sections, sung vowels) next to what was rendered,
and render stems separately (for instance without the voice).

A duet (`compose_song(..., duet=True)`) is the same song whose artist part passes to a second artist at a
bar start in the body: the prior learns from it to switch artist where its label changes mid-song. Up to
the hand-off it is the solo song note for note, and its voice, drums, lyrics and form are the solo song's
throughout; the second artist and the hand-off bar are drawn from their own streams (DUET_STREAM).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import soxr

from engine.data.synth import dsp, lyrics
from engine.data.synth.artists import ARTISTS, Artist, BarContext, ending_notes
from engine.data.synth.drums import make_kit, render_drums
from engine.data.synth.events import Hit, Note, SungNote
from engine.data.synth.form import Section, min_seconds, plan_form
from engine.data.synth.genres import GENRES, Genre
from engine.data.synth.instruments import render_part
from engine.data.synth.theory import Chord, Key
from engine.data.synth.voice import render_voice

# The rate the synthesiser's sounds were voiced at (its default); lower rates are rendered at it, then
# resampled (render_song).
VOICING_RATE = 22050

# Stem levels relative to the artist's part (by RMS): the artist's timbre must dominate the mix.
VOICE_LEVEL = 0.55
DRUM_LEVEL = 0.3


def slowest_bar_s() -> float:
    return max(g.beats_per_bar * 60.0 / g.tempo_bpm[0] for g in GENRES)


MIN_SONG_SECONDS = min_seconds(slowest_bar_s())

# Seed stream of the duet draws: whether song `index` is one ([seed, index, DUET_STREAM]), its second
# artist and that artist's playing ([..., 1]), its hand-off bar ([..., 2]). The song's own generator
# ([seed, index]), the voice's noise ([..., 1]) and the room ([..., 2]) never see them.
DUET_STREAM = 3
HANDOFF_MARGIN_BARS = 2  # each artist plays at least this many bars of the body


def handoff_bars(sections: list[Section]) -> range:
    """Bars at whose start a duet may pass the part on: at least HANDOFF_MARGIN_BARS after the first verse
    begins and at least as many before the ending starts (empty when the body is too short)."""
    verse = next(s for s in sections if s.name == "verse")
    return range(verse.start_bar + HANDOFF_MARGIN_BARS, sections[-1].start_bar - HANDOFF_MARGIN_BARS + 1)


def _min_duet_seconds() -> float:
    """Shortest song, in tenths of a second, with a hand-off bar at every genre's slowest tempo."""
    seconds = MIN_SONG_SECONDS
    bars_s = [g.beats_per_bar * 60.0 / g.tempo_bpm[0] for g in GENRES]
    while not all(handoff_bars(plan_form(seconds, bar_s)) for bar_s in bars_s):
        seconds = round(seconds + 0.1, 1)
    return seconds


MIN_DUET_SECONDS = _min_duet_seconds()


def is_duet(seed: int, index: int, share: float) -> bool:
    """Whether song `index` of a corpus with `share` of duets is one (never at share 0, always at 1)."""
    return bool(np.random.default_rng([seed, index, DUET_STREAM]).random() < share)


def assignment(index: int) -> tuple[Artist, Genre]:
    """Artist and genre of song `index`: every run of len(ARTISTS) songs has each artist once, and every
    run of len(ARTISTS) * len(GENRES) songs has each (artist, genre) pair exactly once."""
    a, g = len(ARTISTS), len(GENRES)
    return ARTISTS[index % a], GENRES[(index + index // a) % g]


@dataclass(frozen=True)
class Part:
    """One artist's stretch of the artist part: `notes` played from `start_s` until `end_s`."""

    artist: Artist
    start_s: float
    end_s: float
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class SongPlan:
    seed: int
    index: int
    seconds: float
    artist: Artist
    genre: Genre
    tempo_bpm: int
    key: Key
    sections: list[Section]
    lyrics: str
    notes: list[Note]  # the opening artist's part: all of it in a solo song, up to the first change in a duet
    sung: list[SungNote]
    hits: list[Hit]
    fade_start_s: float  # the final chord is struck here and the mix fades to silence by the end
    # Later artists, in time order, each from its hand-off (a bar start) on, ending's cadence included;
    # () for a solo song.
    changes: tuple[Part, ...] = ()

    def parts(self) -> list[Part]:
        """Who plays the artist part when: the opening artist from 0 s, each change's artist from its
        start, each until the next change or the end of the song."""
        opening_end = self.changes[0].start_s if self.changes else self.seconds
        return [Part(self.artist, 0.0, opening_end, tuple(self.notes)), *self.changes]


def _dominant(key: Key, genre: Genre) -> Chord:
    """The chord the genre's cadence leans on before home: the last non-tonic chord of its progression."""
    offset, shape = next((o, s) for o, s in reversed(genre.progression) if o != 0)
    return key.chord(offset, shape)


class _Melody:
    """The sung line. Each (section kind, bar of the progression) gets one phrase, reused every time it
    comes back, so choruses repeat their tune and words; verses repeat the tune with new words."""

    def __init__(self, key: Key, genre: Genre, rng: np.random.Generator) -> None:
        self.key, self.genre, self.rng = key, genre, rng
        self._pitches: dict[tuple[str, int], list[int]] = {}
        self._chorus_words: dict[int, list[str]] = {}
        self.last = key.tonic + 12

    def _range(self, kind: str) -> list[int]:
        low = self.key.tonic + (3 if kind == "verse" else 7)  # choruses sit higher
        return self.key.scale(low, low + 12)

    def phrase(self, kind: str, bar: int, chord: Chord, n_notes: int) -> list[int]:
        slot = (kind, bar)
        if slot not in self._pitches:
            scale = self._range(kind)
            chord_pcs = {(chord.root + s) % 12 for s in chord.shape}
            targets = [m for m in scale if m % 12 in chord_pcs]
            pitch = min(targets, key=lambda m: abs(m - self.last))
            pitches = [pitch]
            for i in range(1, n_notes):
                if i == n_notes - 1:  # land on a chord tone at the end of the bar
                    pitch = targets[int(self.rng.integers(len(targets)))]
                else:
                    j = scale.index(pitch) + int(self.rng.choice((-2, -1, 1, 2)))
                    pitch = scale[int(np.clip(j, 0, len(scale) - 1))]
                pitches.append(pitch)
            self._pitches[slot] = pitches
            self.last = pitches[-1]
        return self._pitches[slot]

    def words(self, kind: str, bar: int, n_words: int) -> list[str]:
        if kind == "chorus":
            if bar not in self._chorus_words:
                self._chorus_words[bar] = lyrics.make_line(n_words, self.rng)
            return self._chorus_words[bar]
        return lyrics.make_line(n_words, self.rng)


def compose_song(seed: int, index: int, seconds: float, duet: bool = False) -> SongPlan:
    """Song `index` of corpus `seed`, `seconds` long; with `duet`, its part passes to a second artist at a
    bar start in the body (ValueError if the song is too short to have one, see MIN_DUET_SECONDS)."""
    rng = np.random.default_rng([seed, index])
    artist, genre = assignment(index)
    tempo = int(rng.integers(genre.tempo_bpm[0], genre.tempo_bpm[1] + 1))
    beat_s = 60.0 / tempo
    bar_s = genre.beats_per_bar * beat_s
    key = Key(48 + int(rng.integers(12)), genre.mode)
    sections = plan_form(seconds, bar_s)
    scale = key.scale(24, 96)
    melody = _Melody(key, genre, rng)
    handoff = _draw_handoff(seed, index, seconds, artist, sections) if duet else None

    notes: list[Note] = []
    second_notes: list[Note] = []
    sung: list[SungNote] = []
    hits: list[Hit] = []
    lyric_blocks: list[list[list[str]]] = []
    for section in sections[:-1]:
        sung_lines: list[list[str]] = []
        for j in range(section.n_bars):
            bar = section.start_bar + j
            offset, shape = genre.progression[j % len(genre.progression)]
            ctx = BarContext(
                start_s=bar * bar_s,
                beat_s=beat_s,
                beats=genre.beats_per_bar,
                swing=genre.swing,
                chord=key.chord(offset, shape),
                scale=scale,
                section=section.name,
                rng=rng,
            )
            # The opening artist plays every bar, even after a hand-off, where its bar is dropped: the song's
            # generator then advances exactly as in the solo song, so the melody and lyrics stay the same.
            solo_bar = artist.play_bar(ctx)
            if handoff is None or bar < handoff.bar:
                notes += solo_bar
            else:
                second_notes += handoff.artist.play_bar(replace(ctx, rng=handoff.rng))
            hits += _drum_bar(ctx, genre, section, j)
            if section.name in ("verse", "chorus"):
                rhythms = genre.verse_rhythms if section.name == "verse" else genre.chorus_rhythms
                rhythm = rhythms[j % len(rhythms)]
                bar_in_cycle = j % len(genre.progression)
                pitches = melody.phrase(section.name, bar_in_cycle, ctx.chord, len(rhythm))
                words = melody.words(section.name, bar_in_cycle, len(rhythm))
                sung_lines.append(words)
                for (onset, length), midi, word in zip(rhythm, pitches, words, strict=True):
                    sung.append(
                        SungNote(ctx.at(onset), 0.92 * length * beat_s, midi, word, lyrics.sung_vowel(word))
                    )
        if sung_lines:
            lyric_blocks.append(sung_lines)

    ending = sections[-1]
    chord_s = ending.start_s + max(ending.n_bars * bar_s, 0.4 * (ending.end_s - ending.start_s))
    tonic = key.chord(*genre.progression[0])
    closing = artist if handoff is None else handoff.artist
    cadence = ending_notes(closing, tonic, _dominant(key, genre), ending.start_s, chord_s, ending.end_s)
    hits += [Hit(chord_s, "kick", 0.9), Hit(chord_s, "crash", 0.6)]
    changes: tuple[Part, ...] = ()
    if handoff is None:
        notes += cadence
    else:
        changes = (Part(handoff.artist, handoff.bar * bar_s, float(seconds), (*second_notes, *cadence)),)

    text = "\n\n".join(lyrics.format_lines(block) for block in lyric_blocks)
    return SongPlan(
        seed,
        index,
        float(seconds),
        artist,
        genre,
        tempo,
        key,
        sections,
        text,
        notes,
        sung,
        hits,
        chord_s,
        changes,
    )


@dataclass(frozen=True)
class _Handoff:
    artist: Artist  # who takes the part over
    bar: int  # at the start of this bar
    rng: np.random.Generator  # what it plays from, so the song's own generator is left as it is


def _draw_handoff(seed: int, index: int, seconds: float, first: Artist, sections: list[Section]) -> _Handoff:
    """A duet's second artist (never the first) and its hand-off bar (uniform over handoff_bars), each
    from its own stream."""
    bars = handoff_bars(sections)
    if not bars:
        raise ValueError(
            f"a {seconds} s song is too short for a duet: use at least {MIN_DUET_SECONDS} s, so that each "
            f"artist plays {HANDOFF_MARGIN_BARS} bars of the body at the slowest tempo"
        )
    rng = np.random.default_rng([seed, index, DUET_STREAM, 1])
    others = [a for a in ARTISTS if a != first]
    second = others[int(rng.integers(len(others)))]
    bar = bars[int(np.random.default_rng([seed, index, DUET_STREAM, 2]).integers(len(bars)))]
    return _Handoff(second, bar, rng)


def _drum_bar(ctx: BarContext, genre: Genre, section: Section, bar: int) -> list[Hit]:
    """Intro: hats only, so the beat is announced but the groove arrives with the first verse. Body: the
    genre's groove, its fill on the last bar of a long section, a crash opening every chorus."""
    if section.name == "intro":
        pattern = tuple(p for p in genre.drums if p[1] in ("hat", "open_hat"))
    else:
        # Fills close sections of 4+ bars; in shorter ones they would crowd out the groove itself.
        pattern = genre.fill if bar == section.n_bars - 1 and section.n_bars >= 4 else genre.drums
    hits = [Hit(ctx.at(step / 4), drum, velocity) for step, drum, velocity in pattern]
    if section.name == "chorus" and bar == 0:
        hits.append(Hit(ctx.start_s, "crash", 0.4))
    return hits


def render_stems(plan: SongPlan, sr: int) -> dict[str, np.ndarray]:
    """Dry stems at their mix levels: `artist`, `voice`, `drums`, each exactly the song's length."""
    n = round(plan.seconds * sr)
    noise = np.random.default_rng([plan.seed, plan.index, 1])
    voice = render_voice(plan.sung, sr, n, noise)
    drums = render_drums(plan.hits, make_kit(noise, sr, plan.genre.kit), sr, n)
    return {
        "artist": np.sum([render_levelled_part(part, sr, n) for part in plan.parts()], axis=0),
        "voice": VOICE_LEVEL * voice / _rms(voice) if plan.sung else voice,
        "drums": DRUM_LEVEL * drums / _rms(drums),
    }


def render_levelled_part(part: Part, sr: int, n: int) -> np.ndarray:
    """A part on its artist's instrument (tails ringing on past its end), at unit RMS over the span it
    plays: every artist of a duet is where it plays at the level a solo artist has over its song."""
    track = render_part(list(part.notes), part.artist.instrument, sr, n)
    return track / _rms(track[round(part.start_s * sr) : round(part.end_s * sr)])


def render_song(plan: SongPlan, sr: int, voice: bool = True) -> np.ndarray:
    """The finished song: stems summed, a small room, the final fade, peak-normalised (float32).

    Below VOICING_RATE the song is rendered at that rate and resampled, so that it is the same song less
    what lies above the lower rate's Nyquist frequency. Rendered directly at a lower rate it would not
    be: the drums' noise is brightened by differences between neighbouring samples, which brighten
    relative to the rate, so at 16 kHz the hats put twice the share of the song's energy above 4 kHz,
    and the drum stem, levelled by RMS, lost none of its level above 8 kHz and came out louder too."""
    if sr < VOICING_RATE:
        voiced = render_song(plan, VOICING_RATE, voice)
        resampled = soxr.resample(voiced, VOICING_RATE, sr, quality="HQ")  # as audio files are read
        n = round(plan.seconds * sr)
        fitted = np.pad(resampled[:n], (0, max(0, n - len(resampled))))
        return dsp.peak_normalise(fitted.astype(np.float64)).astype(np.float32)
    stems = render_stems(plan, sr)
    mix = stems["artist"] + stems["drums"] + (stems["voice"] if voice else 0.0)
    room = np.random.default_rng([plan.seed, plan.index, 2])
    mix = dsp.room_reverb(mix, sr, room, seconds=0.6, wet=0.18)
    mix *= _final_fade(len(mix), sr, plan.sections[-1].start_s, plan.fade_start_s)
    return dsp.peak_normalise(mix).astype(np.float32)


def _final_fade(n: int, sr: int, ending_s: float, chord_s: float) -> np.ndarray:
    """The ending's dynamics: a decrescendo to 0.75 over the slowing cadence, then the final chord fades
    as (1 - u)^2.5, reaching silence on the last sample (the chord dies away rather than stopping)."""
    gain = np.ones(n)
    start, chord = min(int(ending_s * sr), n - 1), min(int(chord_s * sr), n - 1)
    gain[start:chord] = np.linspace(1.0, 0.75, chord - start)
    gain[chord:] = 0.75 * np.linspace(1.0, 0.0, n - chord) ** 2.5
    return gain


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2))) + 1e-12


def body_excerpt(plan: SongPlan, sr: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """`seconds` of the rendered song from a random point in its body (from the first verse to the
    ending), as a musician might play a riff of it."""
    body_end = next(s.start_s for s in plan.sections if s.name == "ending")
    start = rng.uniform(plan.sections[1].start_s, body_end - seconds)
    return render_song(plan, sr)[round(start * sr) : round((start + seconds) * sr)]
