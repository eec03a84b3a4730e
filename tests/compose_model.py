"""A tiny model bundle for the service and CLI tests: VQ-VAE, top prior and both upsamplers with fixed random
weights, saved in the project's format with a bundle.json. Untrained (the tests check plumbing, not music);
building and saving it takes well under a second.
"""

from __future__ import annotations

from pathlib import Path

import torch

from engine import checkpoint
from engine.bundle import BundleManifest
from engine.data.vocabulary import Vocabulary
from engine.prior.add_clock import with_beat_clock
from engine.prior.builders import build_prior, layer_kinds, prior_config
from engine.prior.config import ENC_DEC
from engine.render_guide import RenderGuide
from engine.training.config import MODEL_PRESETS
from engine.training.prior_task import init_embeddings_, vqvae_hps
from engine.vqvae import TINY, VQVAE

ARTISTS = ("Ada Tone", "Bo Noise", "Cleo Hum")
GENRES = ("rock", "jazz", "folk")


def tiny_vocabulary() -> Vocabulary:
    artists = {"unknown": 0} | {name.lower().replace(" ", "_"): i + 1 for i, name in enumerate(ARTISTS)}
    genres = {"unknown": 0} | {name: i + 1 for i, name in enumerate(GENRES)}
    return Vocabulary(False, artists, genres)


def _prior(kind: str, level: int, vqvae: VQVAE, vocabulary: Vocabulary, seed: int, alignment: bool = False):
    torch.manual_seed(seed)
    hps = MODEL_PRESETS[kind]["tiny"].to_hps(level, vocabulary.n_genres, vocabulary.n_artists)
    if alignment:
        # The tiny top prior attends to its lyric encoder in one layer: name it the alignment head, as
        # 5b_lyrics names one of its encoder-decoder layers (weights unchanged, only the config says so).
        kinds = layer_kinds(hps["attn_order"], hps["prior_depth"])
        hps |= {"alignment_layer": max(d for d, k in enumerate(kinds) if k == ENC_DEC), "alignment_head": 0}
    return init_embeddings_(build_prior(prior_config(hps, vqvae_hps(vqvae)))).eval()


def write_tiny_bundle(
    folder: Path,
    seed: int = 0,
    upsamplers: bool = True,
    manifest: bool = True,
    vocabulary: Vocabulary | None = None,
    audible: bool = False,
    lyric_alignment: bool = False,
    genre_tempi: dict[str, list] | None = None,
    render_guide: RenderGuide | None = None,
) -> Path:
    """Write the tiny models (and bundle.json) into `folder`; returns the folder. The priors know the
    names of `vocabulary` (default: tiny_vocabulary()).

    audible: random VQ-VAE codebooks. Untrained ones are all zeros, so every code decodes to the same
    sound, and a test comparing audio could not tell two songs apart.
    lyric_alignment: the top prior (which has a small lyric encoder) gets an alignment head, so the app
    can say where in the lyrics a take sings; without it the model counts as one that sings no lyrics.
    genre_tempi: the top prior gets a beat clock (16 phase bins, bars of up to 4 beats) with random
    tables, and these usual tempi ({genre: [bpm, beats per bar]}) in its settings.
    render_guide: how the bundle's previews guide its renders (`engine.render_guide`); None: not at all.
    """
    folder.mkdir(parents=True, exist_ok=True)
    vocabulary = vocabulary or tiny_vocabulary()
    extra = {"vocabulary": vocabulary.to_dict()}
    torch.manual_seed(seed)
    vqvae = VQVAE(TINY).eval()
    if audible:
        generator = torch.Generator().manual_seed(seed)
        for block in vqvae.bottleneck.level_blocks:
            block.k.copy_(torch.randn(block.k.shape, generator=generator))
            block.initialized.fill_(True)
    checkpoint.save_model(folder / "vqvae", vqvae, "vqvae")
    top = _prior("prior", 2, vqvae, vocabulary, seed + 1, lyric_alignment)
    top_extra = dict(extra)
    if genre_tempi is not None:
        top = with_beat_clock(top, beat_bins=16, bar_beats=4)
        with torch.no_grad():
            for table in (top.y_emb.beat_phase_emb, top.y_emb.bar_beat_emb):
                table.emb.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(seed + 7))
        top_extra["genre_tempi"] = genre_tempi
    checkpoint.save_model(folder / "prior_tiny", top, "prior", top_extra)
    ups = {}
    if upsamplers:
        for level in (1, 0):
            model = _prior("upsampler", level, vqvae, vocabulary, seed + 2 + level)
            checkpoint.save_model(folder / f"upsampler_level_{level}", model, "prior", extra)
            ups[level] = f"upsampler_level_{level}"
    if manifest:
        BundleManifest(
            name="tiny-test",
            top_priors={"tiny": "prior_tiny"},
            default_top="tiny",
            upsamplers=ups,
            vocabulary="model",
            sample_rate=TINY.sample_rate,
            render_guide=render_guide,
        ).write(folder)
    return folder


def louden_labels(prior, gain: float = 100.0) -> None:
    """Scale a prior's artist and genre rows in place. An untrained tiny prior hears its labels only
    faintly, so label guidance would change nothing; louder rows make the labels decide some draws."""
    with torch.no_grad():
        for table in (prior.y_emb.artist_emb, prior.y_emb.bow_genre_emb):
            table.emb.weight.mul_(gain)
