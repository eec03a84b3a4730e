"""How fast the default VQ-VAE decodes codes to audio: as the engine decodes (phase-split transposed
convolutions, the last one composed with the output projection; engine/phase_split_conv.py) against the
same weights in PyTorch's own ConvTranspose1d, in the same process.

    python benchmarks/vqvae_decode.py                  # 4 x 10 s at the top level, 10 s at the bottom
    python benchmarks/vqvae_decode.py --model DIR --threads 2 --repeats 5

A preview is a top-level decode (what the musician waits for after sampling); a render ends with a
bottom-level decode. Each figure is the best of --repeats, the two ways interleaved so that a busy
machine slows both alike.
"""

from __future__ import annotations

import argparse
import copy
import platform
import time

import torch
from torch import nn

from cocompose.models import resolve_model
from engine.api import ComposeEngine
from engine.phase_split_conv import PhaseSplitConvTranspose1d


def with_pytorch_transposed(model: nn.Module) -> nn.Module:
    """A copy of `model` whose phase-split convolutions are plain nn.ConvTranspose1d with the same weights
    (nor are those composed with the projection after them)."""
    plain = copy.deepcopy(model)
    for parent in plain.modules():
        for name, child in parent.named_children():
            if isinstance(child, PhaseSplitConvTranspose1d):
                swap = nn.ConvTranspose1d(
                    child.in_channels,
                    child.out_channels,
                    child.kernel_size,
                    child.stride,
                    child.padding,
                    bias=child.bias is not None,
                )
                swap.load_state_dict(child.state_dict())
                setattr(parent, name, swap)
    return plain


def seconds_taken(vqvae: nn.Module, codes: torch.Tensor, level: int) -> float:
    start = time.perf_counter()
    vqvae.decode(codes, level)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    split = ComposeEngine.load(resolve_model(args.model)).bundle.vqvae.eval()
    plain = with_pytorch_transposed(split)
    top, bottom = split.config.levels - 1, 0
    cases = {
        "top level, 4 x 10 s": (top, 4, 10.0),
        "bottom level, 1 x 10 s": (bottom, 1, 10.0),
    }
    print(
        f"{platform.machine()}, torch {torch.__version__}, {args.threads} thread(s), best of {args.repeats}"
    )
    generator = torch.Generator().manual_seed(0)
    for label, (level, batch, seconds) in cases.items():
        frames = round(seconds * split.sample_rate / split.hop_lengths[level])
        codes = torch.randint(0, split.config.l_bins, (batch, frames), generator=generator)
        with torch.no_grad():
            drift = (split.decode(codes, level) - plain.decode(codes, level)).abs().max().item()
            a = b = float("inf")
            for _ in range(args.repeats):
                a = min(a, seconds_taken(plain, codes, level))
                b = min(b, seconds_taken(split, codes, level))
        print(f"{label}: ConvTranspose1d {a:.2f} s, as the engine decodes {b:.2f} s ({a / b:.2f}x faster); "
              f"largest difference {drift:.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
