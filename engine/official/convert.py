"""Convert downloaded official Jukebox files into the project's own format (no pickle at load time)."""

from __future__ import annotations

import errno
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError

from engine import checkpoint
from engine.errors import CheckpointError
from engine.official.vqvae_loader import load_vqvae

# Where each official file sits under the download folder (the layout of the official URLs), and the
# name it gets in the converted folder.
OFFICIAL_FILES: dict[str, str] = {
    "vqvae": "5b/vqvae.pth.tar",
    "upsampler_level_0": "5b/prior_level_0.pth.tar",
    "upsampler_level_1": "5b/prior_level_1.pth.tar",
    "prior_5b": "5b/prior_level_2.pth.tar",
    "prior_5b_lyrics": "5b_lyrics/prior_level_2.pth.tar",
    "prior_1b_lyrics": "1b_lyrics/prior_level_2.pth.tar",
}


# The official artist/genre id lists (openai/jukebox jukebox/data/ids); the label code reads them from the
# model folder at run time.
ID_LIST_FILES = ("v2_artist_ids.txt", "v2_genre_ids.txt", "v3_artist_ids.txt", "v3_genre_ids.txt")


@dataclass(frozen=True)
class Converted:
    name: str
    source: Path
    weights: Path
    settings: Path


def find_official_files(src_dir: Path) -> dict[str, Path]:
    """Official files present under `src_dir`, in the official layout or flat (vqvae.pth.tar only)."""
    found = {name: src_dir / rel for name, rel in OFFICIAL_FILES.items() if (src_dir / rel).is_file()}
    if "vqvae" not in found and (src_dir / "vqvae.pth.tar").is_file():
        found["vqvae"] = src_dir / "vqvae.pth.tar"
    return found


def convert_file(
    name: str, source: Path, out_dir: Path, hps: dict | None = None, vqvae_hps: dict | None = None
):
    """Convert one official file; returns the written (weights, settings) paths."""
    # The official VQ-VAE is all float32; a prior keeps its fp16 Conv1D weights in fp16, as in the file.
    # (Derived from the config rather than by reading a multi-gigabyte file a second time.)
    fp16: set[str] = set()
    if name == "vqvae":
        model = load_vqvae(source, hps)
        kind = "vqvae"
    else:
        from engine.official import prior_loader

        model = prior_loader.load_prior(source, name, hps=hps, vqvae_hps=vqvae_hps)
        fp16 = prior_loader.fp16_weight_names(model)
        kind = "prior"
    extra = {"name": name, "converted_from": source.name}
    dtypes = dict.fromkeys(fp16, torch.float16)
    return checkpoint.save_model(out_dir / name, model, kind, extra=extra, dtypes=dtypes)


def convert_jukebox(
    src_dir: str | Path,
    out_dir: str | Path,
    hps_by_name: dict[str, dict] | None = None,
    progress: Callable[[str], None] = lambda message: None,
    only: list[str] | None = None,
    ids_dir: str | Path | None = None,
) -> list[Converted]:
    """Convert every official file found under `src_dir` into `out_dir`.

    `hps_by_name` gives reference-style hyper-parameters per file name (for non-official sizes); the
    priors also need the VQ-VAE's, under "vqvae". The artist/genre id lists are copied to `out_dir/ids`
    from `ids_dir`, or from `src_dir/ids` when present.
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    if not src_dir.is_dir():
        raise CheckpointError(f"source folder not found: {src_dir}")
    found = find_official_files(src_dir)
    if not found:
        expected = ", ".join(OFFICIAL_FILES.values())
        raise CheckpointError(f"no official Jukebox files under {src_dir} (looked for {expected})")
    if only:
        unknown = sorted(set(only) - set(OFFICIAL_FILES))
        if unknown:
            raise CheckpointError(f"unknown model names {unknown}; choose from {', '.join(OFFICIAL_FILES)}")
        missing = sorted(set(only) - set(found))
        if missing:
            raise CheckpointError(
                f"not found under {src_dir}: {', '.join(OFFICIAL_FILES[m] for m in missing)}"
            )
        found = {name: path for name, path in found.items() if name in only}
    id_source = _id_lists_folder(src_dir, ids_dir)
    hps_by_name = hps_by_name or {}
    results = []
    for name, source in found.items():
        progress(f"converting {source.relative_to(src_dir)} -> {name}")
        try:
            weights, settings = convert_file(
                name, source, out_dir, hps_by_name.get(name), hps_by_name.get("vqvae")
            )
        except (OSError, SafetensorError) as exc:  # e.g. a full disk; atomic_write left no partial file
            raise _write_failed(name, out_dir, exc) from None
        results.append(Converted(name, source, weights, settings))
    if id_source is not None:
        progress(f"copying the artist/genre id lists from {id_source}")
        for file_name in ID_LIST_FILES:
            target = out_dir / "ids" / file_name
            try:
                checkpoint.atomic_write(target, lambda tmp, f=file_name: shutil.copyfile(id_source / f, tmp))
            except OSError as exc:
                raise _write_failed(f"ids/{file_name}", out_dir, exc) from None
    return results


def _write_failed(name: str, out_dir: Path, exc: Exception) -> CheckpointError:
    full = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
    hint = ""
    if getattr(exc, "errno", None) in full or any(f"os error {code})" in str(exc) for code in full):
        hint = " (the disk is full, or the file too large for it)"
    return CheckpointError(f"converting {name} into {out_dir} failed: {exc}{hint}")


def _id_lists_folder(src_dir: Path, ids_dir: str | Path | None) -> Path | None:
    folder = Path(ids_dir) if ids_dir is not None else src_dir / "ids"
    present = [name for name in ID_LIST_FILES if (folder / name).is_file()]
    if ids_dir is None and not present:
        return None
    if len(present) != len(ID_LIST_FILES):
        missing = sorted(set(ID_LIST_FILES) - set(present))
        raise CheckpointError(f"id list folder {folder} lacks {', '.join(missing)}")
    return folder
