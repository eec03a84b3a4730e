"""Prior sampling speed: KV-cached vs uncached, batch sizes, and official shapes on a GPU.

    python benchmarks/prior_sampling.py                      # CPU: small top prior, 1024-token context
    python benchmarks/prior_sampling.py --official --device cuda --dtype bfloat16   # GPU, random weights

Random weights are enough: speed does not depend on their values. Results print as a table and can be
written as JSON (--json) for docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict, dataclass

import torch

from engine.prior.builders import build_prior, prior_config
from engine.prior.presets import official_hps

SECONDS_PER_TOP_TOKEN = 128 / 44100


@dataclass
class Result:
    name: str
    batch: int
    tokens: int
    seconds: float
    peak_mib: float | None = None

    @property
    def tokens_per_s_per_branch(self) -> float:
        return self.tokens / self.seconds


def small_top_prior_hps(n_ctx: int) -> dict:
    """A 5b-style top prior (row/column/previous-row attention, timing + artist/genre) at laptop size."""
    hps = dict(official_hps("prior_5b"))
    hps.update(n_ctx=n_ctx, prior_width=256, prior_depth=6, heads=2, blocks=n_ctx // 64)
    return hps


def small_upsampler_hps(n_ctx: int) -> dict:
    """The middle-level upsampler's structure (conditioner on the level above) at laptop size."""
    hps = dict(official_hps("upsampler_level_1"))
    hps.update(
        n_ctx=n_ctx, prior_width=256, prior_depth=6, heads=1, blocks=n_ctx // 64, cond_width=128, cond_depth=4
    )
    return hps


def make_prior(hps: dict, device: str, dtype: torch.dtype):
    config = prior_config(hps, official_hps("vqvae"))
    with torch.device("meta"):
        prior = build_prior(config, device="meta")
    prior = prior.to_empty(device=device)
    generator = torch.Generator(device="cpu").manual_seed(0)
    with torch.no_grad():
        for param in prior.parameters():
            param.copy_((torch.randn(param.shape, generator=generator) * 0.02).to(param.dtype))
    return prior.to(dtype=dtype).eval(), config


def labels_for(config, batch: int, device: str) -> torch.Tensor:
    """A valid label vector: 3-minute song, window at its start, artist 1, one genre, blank lyrics."""
    max_bow = config.labels.max_bow_genre_size
    genres = [1] + [-1] * (max_bow - 1)
    lyrics = [0] * config.n_tokens
    row = [44100 * 180, 0, config.sample_length, 1, *genres, *lyrics]
    return torch.tensor([row] * batch, device=device)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def upper_codes_for(config, batch: int, device: str) -> torch.Tensor | None:
    if config.conditioner is None:
        return None
    generator = torch.Generator().manual_seed(1)
    codes = torch.randint(
        0, config.l_bins, (batch, config.n_ctx // config.cond_downsample), generator=generator
    )
    return codes.to(device)


@torch.no_grad()
def cached_sampling(prior, config, batch: int, tokens: int, device: str) -> tuple[float, torch.Tensor]:
    labels = labels_for(config, batch, device)
    upper = upper_codes_for(config, batch, device)
    _sync(device)
    start = time.perf_counter()
    state = prior.start(labels, upper)
    out = []
    for step in range(tokens):
        token = state.next_logits.float().argmax(-1, keepdim=True)
        out.append(token)
        if step + 1 < tokens:
            prior.extend(state, token)
    _sync(device)
    return time.perf_counter() - start, torch.cat(out, 1)


@torch.no_grad()
def uncached_sampling(prior, config, batch: int, tokens: int, device: str) -> tuple[float, torch.Tensor]:
    """The naive sampler: every step re-runs the whole prefix through the transformer."""
    labels = labels_for(config, batch, device)
    codes = torch.zeros(batch, tokens, dtype=torch.long, device=device)
    _sync(device)
    start = time.perf_counter()
    for step in range(tokens):
        logits = prior.logits(codes[:, : step + 1], labels)  # the placeholder at `step` is never seen
        codes[:, step] = logits[:, step].float().argmax(-1)
    _sync(device)
    return time.perf_counter() - start, codes


@torch.no_grad()
def full_context_step(prior, config, n_ctx: int, cached: bool, reps: int = 16) -> float:
    """Seconds per token when the window already holds n_ctx - reps tokens (the steady state)."""
    labels = labels_for(config, 1, "cpu")
    codes = torch.randint(0, config.l_bins, (1, n_ctx), generator=torch.Generator().manual_seed(2))
    if not cached:
        start = time.perf_counter()
        for _ in range(reps):
            prior.logits(codes, labels)  # one full forward over the whole context per token
        return (time.perf_counter() - start) / reps
    state = prior.start(labels)
    prior.extend(state, codes[:, : n_ctx - reps - 1])
    start = time.perf_counter()
    for t in range(n_ctx - reps - 1, n_ctx - 1):
        prior.extend(state, codes[:, t : t + 1])
    return (time.perf_counter() - start) / reps


def best_of(repeat: int, run):
    """The fastest of `repeat` runs: other load on the machine only ever adds time."""
    runs = [run() for _ in range(repeat)]
    return min(runs, key=lambda r: r[0] if isinstance(r, tuple) else r)


def cpu_suite(n_ctx: int, batches: list[int], repeat: int = 1) -> list[Result]:
    prior, config = make_prior(small_top_prior_hps(n_ctx), "cpu", torch.float32)
    results = []
    seconds, cached = best_of(repeat, lambda: cached_sampling(prior, config, 1, n_ctx, "cpu"))
    results.append(Result(f"small top prior, KV cache, ctx {n_ctx}", 1, n_ctx, seconds))
    seconds, uncached = best_of(repeat, lambda: uncached_sampling(prior, config, 1, n_ctx, "cpu"))
    results.append(Result(f"small top prior, no cache, ctx {n_ctx}", 1, n_ctx, seconds))
    if not torch.equal(cached, uncached):
        raise AssertionError("cached and uncached greedy sampling disagree: the cache is wrong")
    for is_cached, label in ((True, "KV cache"), (False, "no cache")):
        seconds = best_of(repeat, lambda c=is_cached: full_context_step(prior, config, n_ctx, c))
        results.append(Result(f"small top prior, {label}, token at full ctx {n_ctx}", 1, 1, seconds))
    for batch in batches[1:] if batches[0] == 1 else batches:
        seconds, _ = best_of(repeat, lambda b=batch: cached_sampling(prior, config, b, n_ctx, "cpu"))
        results.append(Result(f"small top prior, KV cache, ctx {n_ctx}", batch, n_ctx, seconds))
    upsampler, config = make_prior(small_upsampler_hps(n_ctx), "cpu", torch.float32)
    for batch in batches:
        seconds, _ = best_of(repeat, lambda b=batch: cached_sampling(upsampler, config, b, n_ctx, "cpu"))
        results.append(Result(f"small upsampler, KV cache, ctx {n_ctx}", batch, n_ctx, seconds))
    return results


def official_suite(device: str, dtype: torch.dtype, batches: list[int], tokens: int) -> list[Result]:
    results = []
    for kind in ("prior_5b", "prior_1b_lyrics", "upsampler_level_1"):
        prior, config = make_prior(official_hps(kind), device, dtype)
        for batch in batches:
            torch.cuda.reset_peak_memory_stats()
            upper = None
            if config.conditioner is not None:
                upper = torch.zeros(
                    batch, config.n_ctx // config.cond_downsample, dtype=torch.long, device=device
                )
            labels = labels_for(config, batch, device) if config.labels is not None else None
            state = prior.start(labels, upper) if upper is not None else prior.start(labels)
            _sync(device)
            start = time.perf_counter()
            with torch.no_grad():
                for _ in range(tokens):
                    prior.extend(state, state.next_logits.float().argmax(-1, keepdim=True))
            _sync(device)
            peak = torch.cuda.max_memory_allocated() / 2**20
            results.append(Result(f"{kind} shape, {dtype}", batch, tokens, time.perf_counter() - start, peak))
        del prior
        torch.cuda.empty_cache()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--context", type=int, default=1024)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument(
        "--official", action="store_true", help="official 5b/1b/upsampler shapes (needs a GPU)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--tokens", type=int, default=512, help="tokens per official-shape run")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3, help="report the best of this many runs (CPU suite)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.official:
        results = official_suite(args.device, getattr(torch, args.dtype), args.batches, args.tokens)
    else:
        results = cpu_suite(args.context, args.batches, args.repeat)

    cpu = platform.processor() or platform.machine()
    machine = f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    if args.device.startswith("cuda"):
        machine = f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    print(f"machine: {machine}")
    print(f"{'run':52s} {'batch':>5s} {'tok/s/branch':>13s} {'x real time':>11s} {'peak MiB':>9s}")
    for r in results:
        speed = r.tokens_per_s_per_branch
        peak = f"{r.peak_mib:9.0f}" if r.peak_mib is not None else f"{'-':>9s}"
        print(f"{r.name:52s} {r.batch:5d} {speed:13.1f} {speed * SECONDS_PER_TOP_TOKEN:11.3f} {peak}")
    if not args.official:
        speed = {r.name: r.tokens_per_s_per_branch for r in results if r.batch == 1}
        whole = (
            speed[f"small top prior, KV cache, ctx {args.context}"]
            / speed[f"small top prior, no cache, ctx {args.context}"]
        )
        steady = (
            speed[f"small top prior, KV cache, token at full ctx {args.context}"]
            / speed[f"small top prior, no cache, token at full ctx {args.context}"]
        )
        print(f"KV cache speed-up, sampling {args.context} tokens from scratch: {whole:.1f}x")
        print(f"KV cache speed-up, one token with a full {args.context}-token context: {steady:.1f}x")
    if args.json:
        rows = [asdict(r) | {"tok_s_per_branch": r.tokens_per_s_per_branch} for r in results]
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
