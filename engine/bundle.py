"""A model bundle: everything the app composes with, loaded from one folder.

A folder holds models in the project's format (`engine.checkpoint`): one VQ-VAE, one or more top priors
(a converted official folder has prior_5b, prior_5b_lyrics and prior_1b_lyrics), optionally the two
upsamplers, and the artist/genre names. `bundle.json` says which file plays which role:

    {"format": "cocompose-bundle", "version": 1, "name": "my-model", "sample_rate": 44100,
     "vqvae": "vqvae", "top_priors": {"5b_lyrics": "prior_5b_lyrics"}, "default_top": "5b_lyrics",
     "upsamplers": {"1": "upsampler_level_1", "0": "upsampler_level_0"}, "vocabulary": "ids"}

Without a manifest the conventional names are used: `vqvae`, every prior at the top level (a converted
folder's `prior_*`, a training run's `model`), `upsampler_level_1` / `upsampler_level_0`. Names come from
a prior's own JSON (`vocabulary`, saved by `cocompose train`) or from official id lists in `ids/` or
beside the models. Every missing piece is a `CheckpointError` that names the file it looked for.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from engine import checkpoint
from engine.errors import CheckpointError
from engine.prior.labels import ArtistGenreIds, LabelConfig, NameTable, load_artist_genre_ids, normalise_v2
from engine.prior.model import JukeboxPrior
from engine.prior.sampler import MAX_GUIDANCE
from engine.prior.tempo import BeatClock
from engine.render_guide import RenderGuide
from engine.vqvae import VQVAE

MANIFEST_NAME = "bundle.json"
MANIFEST_FORMAT = "cocompose-bundle"
MANIFEST_VERSION = 1
UPSAMPLER_NAMES = {1: "upsampler_level_1", 0: "upsampler_level_0"}


@dataclass(frozen=True)
class BundleManifest:
    """Which file (stem, relative to the folder) plays which role."""

    name: str
    vqvae: str = "vqvae"
    top_priors: dict[str, str] = field(default_factory=dict)  # display name -> file stem
    default_top: str | None = None
    upsamplers: dict[int, str] = field(default_factory=dict)  # level -> file stem
    vocabulary: str | None = None  # "model" (names in the prior's JSON) or a folder of id lists
    sample_rate: int | None = None
    # The label guidance its makers measured the model with (`engine.prior.sampler`): the strength the
    # app and `cocompose generate` sample the top level with unless told otherwise. 0 = none.
    guidance: float = 0.0
    # The share of each upsampler window left for the next window to sample (`plan_level`'s lookahead),
    # as its makers measured the renders. 0 = the reference's windows.
    upsample_lookahead: float = 0.0
    # How the preview guides a render's band envelope (`engine.render_guide`), as its makers measured the
    # renders; None: renders are the bottom decoder's audio as it is (the reference's).
    render_guide: RenderGuide | None = None

    def __post_init__(self) -> None:
        g = self.guidance
        if isinstance(g, bool) or not isinstance(g, int | float) or not 0.0 <= g <= MAX_GUIDANCE:
            raise ValueError(f"guidance must be a number from 0 to {MAX_GUIDANCE:g}, got {g!r}")
        ahead = self.upsample_lookahead
        if isinstance(ahead, bool) or not isinstance(ahead, int | float) or not 0.0 <= ahead < 0.5:
            raise ValueError(f"upsample_lookahead must be a number from 0 up to 0.5, got {ahead!r}")

    def to_json(self) -> str:
        data = {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "name": self.name,
            "vqvae": self.vqvae,
            "top_priors": self.top_priors,
            "default_top": self.default_top,
            "upsamplers": {str(k): v for k, v in self.upsamplers.items()},
            "vocabulary": self.vocabulary,
            "sample_rate": self.sample_rate,
            "guidance": self.guidance,
            "upsample_lookahead": self.upsample_lookahead,
            "render_guide": None if self.render_guide is None else self.render_guide.to_dict(),
        }
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def read(cls, path: Path) -> BundleManifest:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{path} is not a readable bundle manifest ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise CheckpointError(f"{path} is not a Cocompose bundle manifest (format {MANIFEST_FORMAT!r})")
        if not isinstance(data.get("version"), int) or data["version"] > MANIFEST_VERSION:
            raise CheckpointError(f"{path} has bundle version {data.get('version')}; update Cocompose")
        try:
            return cls(
                name=str(data.get("name") or path.parent.name),
                vqvae=str(data.get("vqvae", "vqvae")),
                top_priors={str(k): str(v) for k, v in (data.get("top_priors") or {}).items()},
                default_top=data.get("default_top"),
                upsamplers={int(k): str(v) for k, v in (data.get("upsamplers") or {}).items()},
                vocabulary=data.get("vocabulary"),
                sample_rate=data.get("sample_rate"),
                guidance=data.get("guidance", 0.0),
                upsample_lookahead=data.get("upsample_lookahead", 0.0),
                render_guide=_render_guide(data.get("render_guide")),
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{path}: malformed bundle manifest ({exc})") from None

    def write(self, folder: Path) -> Path:
        target = Path(folder) / MANIFEST_NAME
        checkpoint.atomic_write(target, lambda tmp: tmp.write_text(self.to_json()))
        return target


def _render_guide(data) -> RenderGuide | None:
    return None if data is None else RenderGuide.from_dict(data)


def _prior_stems(folder: Path) -> dict[str, dict]:
    """Stem -> settings of every prior in the folder (other JSON files are skipped)."""
    found = {}
    for settings_path in sorted(folder.glob("*.json")):
        if settings_path.name == MANIFEST_NAME:
            continue
        try:
            settings = checkpoint.read_settings(settings_path)
        except CheckpointError:
            continue
        if settings.get("kind") == "prior":
            found[settings_path.stem] = settings
    return found


def conventional_manifest(folder: Path) -> BundleManifest:
    """The roles implied by file names, for folders without bundle.json."""
    priors = _prior_stems(folder)
    tops = {}
    for stem, settings in priors.items():
        cfg = settings.get("config", {})
        if cfg.get("conditioner") is None and cfg.get("level") == cfg.get("levels", 0) - 1:
            tops[stem.removeprefix("prior_")] = stem
    upsamplers = {level: stem for level, stem in UPSAMPLER_NAMES.items() if stem in priors}
    return BundleManifest(name=folder.name, top_priors=tops, upsamplers=upsamplers)


def fingerprint(stem_path: Path) -> str:
    """A short identity of a saved model: its settings plus the size and ends of its weights.

    Hashing all of a 10 GB prior would take a minute at every start; settings + size + the first and last
    MiB change whenever the model does in practice, and cost nothing.
    """
    weights, settings = checkpoint.paths_for(stem_path)
    digest = hashlib.sha256(settings.read_bytes())
    size = weights.stat().st_size
    digest.update(str(size).encode())
    with open(weights, "rb") as f:
        digest.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        digest.update(f.read(1 << 20))
    return digest.hexdigest()[:16]


def _names_from_settings(vocabulary: dict) -> ArtistGenreIds:
    v3 = bool(vocabulary["v3"])
    normalise = str.lower if v3 else normalise_v2
    return ArtistGenreIds(
        v3=v3,
        artists=NameTable(vocabulary["artists"], "model settings", normalise),
        genres=NameTable(vocabulary["genres"], "model settings", normalise),
    )


def _id_folder(folder: Path, manifest: BundleManifest) -> Path | None:
    candidates = [folder / manifest.vocabulary] if manifest.vocabulary not in (None, "model") else []
    candidates += [] if manifest.vocabulary == "model" else [folder / "ids", folder]
    for candidate in candidates:
        if (candidate / "v2_artist_ids.txt").is_file() or (candidate / "v3_artist_ids.txt").is_file():
            return candidate
    return None


@dataclass
class ModelBundle:
    """The loaded models of one folder. upsamplers[L] is the level-L upsampler (None when absent)."""

    folder: Path
    manifest: BundleManifest
    vqvae: VQVAE
    top_name: str
    top: JukeboxPrior
    upsamplers: list[JukeboxPrior] | None
    names: dict[int, ArtistGenreIds]  # per prior level: the ids its labels use
    fingerprints: dict[str, str]  # role ("vqvae", "top", "upsampler_L") -> fingerprint
    # A top prior with a beat clock: each genre's usual (tempo in bpm, beats per bar) in its training
    # songs (lower-case genre names), what it plays a genre at when no tempo is named.
    genre_tempi: dict[str, tuple[float, int]] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        folder: str | Path,
        top: str | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> ModelBundle:
        """Load a bundle; `top` picks the top prior by name when the folder has several."""
        folder = Path(folder)
        if not folder.is_dir():
            raise CheckpointError(f"model folder not found: {folder}")
        manifest_path = folder / MANIFEST_NAME
        manifest = BundleManifest.read(manifest_path) if manifest_path.exists() else None
        manifest = manifest or conventional_manifest(folder)
        top_name, top_stem = _choose_top(folder, manifest, top)
        vqvae_stem = folder / manifest.vqvae
        _require(vqvae_stem, "the VQ-VAE")
        vqvae = checkpoint.load_model(vqvae_stem, kind="vqvae", device=device)
        if manifest.sample_rate is not None and manifest.sample_rate != vqvae.sample_rate:
            raise CheckpointError(
                f"{manifest_path} says {manifest.sample_rate} Hz "
                f"but the VQ-VAE runs at {vqvae.sample_rate} Hz"
            )
        prior = _load_prior(folder / top_stem, device, dtype)
        if prior.config.level != vqvae.config.levels - 1 or prior.config.conditioner is not None:
            raise CheckpointError(f"{top_stem} is not a top-level prior (level {prior.config.level})")
        stems = {"vqvae": vqvae_stem, "top": folder / top_stem}
        upsamplers = None
        if manifest.upsamplers:
            upsamplers = []
            for level in range(vqvae.config.levels - 1):
                if level not in manifest.upsamplers:
                    raise CheckpointError(f"{folder} has upsamplers but none for level {level}")
                stem = folder / manifest.upsamplers[level]
                _require(stem, f"the level-{level} upsampler")
                upsamplers.append(_load_prior(stem, device, dtype))
                stems[f"upsampler_{level}"] = stem
        names = {prior.config.level: _names_for(folder, manifest, folder / top_stem, prior)}
        for up, level in zip(upsamplers or [], range(len(upsamplers or [])), strict=True):
            names[level] = _names_for(folder, manifest, stems[f"upsampler_{level}"], up)
        prints = {role: fingerprint(stem) for role, stem in stems.items()}
        clocked = prior.config.labels is not None and prior.config.labels.beat_clock
        tempi = _genre_tempi(folder / top_stem) if clocked else {}
        return cls(folder, manifest, vqvae, top_name, prior, upsamplers, names, prints, tempi)

    @property
    def name(self) -> str:
        return f"{self.manifest.name}/{self.top_name}"

    @property
    def sample_rate(self) -> int:
        return self.vqvae.sample_rate

    @property
    def recommended_guidance(self) -> float:
        return float(self.manifest.guidance)

    @property
    def upsample_lookahead(self) -> float:
        return float(self.manifest.upsample_lookahead)

    @property
    def render_guide(self) -> RenderGuide | None:
        return self.manifest.render_guide

    @property
    def codes_per_second(self) -> float:
        return self.sample_rate / self.vqvae.hop_lengths[-1]

    def label_config(self, prior: JukeboxPrior) -> LabelConfig | None:
        cfg = prior.config
        if cfg.labels is None:
            return None
        v3 = self.names[cfg.level].v3
        labels = cfg.labels
        return LabelConfig(v3, labels.max_bow_genre_size, cfg.n_tokens, cfg.sample_length, labels.beat_clock)


def _require(stem: Path, what: str) -> None:
    weights, settings = checkpoint.paths_for(stem)
    for path in (settings, weights):
        if not path.is_file():
            raise CheckpointError(f"{what} is missing: {path} not found")


def _load_prior(stem: Path, device, dtype) -> JukeboxPrior:
    _require(stem, f"prior {stem.name}")
    prior = checkpoint.load_model(stem, kind="prior", device=device)
    if dtype is not None and dtype != torch.float32:
        from engine.official.prior_loader import set_compute_dtype

        set_compute_dtype(prior, dtype)
    return prior


def _choose_top(folder: Path, manifest: BundleManifest, wanted: str | None) -> tuple[str, str]:
    tops = manifest.top_priors
    if not tops:
        raise CheckpointError(f"{folder} has no top-level prior (looked for prior_*.json / model.json)")
    if wanted is None:
        wanted = manifest.default_top if manifest.default_top in tops else None
    if wanted is None:
        if len(tops) > 1:
            raise CheckpointError(
                f"{folder} has several top priors ({', '.join(sorted(tops))}); choose one by name"
            )
        wanted = next(iter(tops))
    stem = tops.get(wanted) or tops.get(wanted.removeprefix("prior_"))
    if stem is None:
        raise CheckpointError(f"no top prior named {wanted!r} in {folder}; it has {', '.join(sorted(tops))}")
    return wanted.removeprefix("prior_"), stem


def _genre_tempi(stem: Path) -> dict[str, tuple[float, int]]:
    """The `genre_tempi` a beat-clock prior's training saved with it ({} when it holds none)."""
    saved = checkpoint.read_settings(stem).get("genre_tempi")
    if not isinstance(saved, dict):
        return {}
    tempi = {}
    for genre, value in saved.items():
        try:
            clock = BeatClock(float(value[0]), int(value[1]))
        except (TypeError, ValueError, IndexError):
            what = f"{stem.name}: genre_tempi[{genre!r}] is not [tempo, beats per bar]: {value!r}"
            raise CheckpointError(what) from None
        tempi[str(genre).lower()] = (clock.tempo_bpm, clock.beats_per_bar)
    return tempi


def _names_for(folder: Path, manifest: BundleManifest, stem: Path, prior: JukeboxPrior) -> ArtistGenreIds:
    """The artist/genre tables a prior's labels use: its own saved vocabulary, else official id lists
    (v3 for the single enc-dec 1b_lyrics, v2 for every other official prior)."""
    settings = checkpoint.read_settings(stem)
    if isinstance(settings.get("vocabulary"), dict) and manifest.vocabulary in (None, "model"):
        return _names_from_settings(settings["vocabulary"])
    if prior.config.labels is None:
        return ArtistGenreIds(False, NameTable({}, "none", normalise_v2), NameTable({}, "none", normalise_v2))
    ids_dir = _id_folder(folder, manifest)
    if ids_dir is None:
        raise CheckpointError(
            f"no artist/genre names for {stem.name}: its settings hold none and no v2_/v3_artist_ids.txt "
            f"lists are in {folder / 'ids'} or {folder}"
        )
    v3 = prior.config.single_enc_dec
    try:
        return load_artist_genre_ids(str(ids_dir), v3)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read the artist/genre lists in {ids_dir}: {exc}") from None
