"""How fast a musician hears new branches: N branches x S seconds through the real service.

    python benchmarks/compose_speed.py                    # the default model, 4 branches x 10 s, 1 thread
    python benchmarks/compose_speed.py --model DIR --branches 4 --seconds 10 --threads 2 --json out.json
    python benchmarks/compose_speed.py --guidance 0        # without label guidance (default: the model's)

Measures, from the moment the request is submitted:
  first_audible_s  the first second of some branch is decoded and in the player's hands (service.live);
  all_playable_s   every branch is sampled and its whole preview decoded and cached (what the app plays).
Targets (issue 5, this 2-core CPU): first_audible_s <= 1 s, all_playable_s <= 5 s for 4 x 10 s.
Each figure is the median of --repeats runs after one warm-up run (seeds differ per run).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch

from cocompose.models import resolve_model
from cocompose.service import ComposeService, GenerateRequest, SamplingParams
from cocompose.service.jobs import PREVIEW_AUDIO
from cocompose.song import Conditioning, ModelInfo
from cocompose.store import Project
from engine.api import ComposeEngine


def one_run(
    engine: ComposeEngine, folder: Path, branches: int, seconds: float, seed: int, guidance: float
) -> dict:
    info = ModelInfo(engine.name, engine.model_hash, engine.sample_rate, engine.codes_per_second)
    artist, genre = engine.artists()[-1], engine.genres()[-1]
    project = Project.create(folder / f"bench-{seed}.cocompose", conditioning=Conditioning(artist, genre),
                             planned_seconds=max(30.0, seconds), model=info)  # fmt: skip
    first = threading.Event()
    marks: dict[str, float] = {}

    def on_event(event):
        if event.message == PREVIEW_AUDIO and not first.is_set():
            for node_id in event.node_ids:
                if service.live.seconds(node_id) >= 1.0:
                    marks["first"] = time.perf_counter()
                    first.set()
                    break

    with ComposeService(project, engine, on_event=on_event) as service:
        start = time.perf_counter()
        sampling = SamplingParams(guidance=guidance)
        ids = service.submit(GenerateRequest.branches(1, branches, seconds, seed, sampling=sampling)).wait(
            600
        )
        done = time.perf_counter()
        assert all(service.read(lambda p, n=n: p.preview(n, engine.decoder_hash)) is not None for n in ids)
    project.close()
    return {"first_audible_s": marks.get("first", done) - start, "all_playable_s": done - start}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default")
    parser.add_argument("--branches", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--guidance", type=float, help="label guidance (default: the model's, as the app)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = time.perf_counter()
    engine = ComposeEngine.load(resolve_model(args.model), threads=args.threads)
    load_s = time.perf_counter() - loaded
    guidance = engine.recommended_guidance if args.guidance is None else args.guidance
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        one_run(engine, Path(tmp), args.branches, args.seconds, 999, guidance)  # warm-up
        for i in range(args.repeats):
            runs.append(one_run(engine, Path(tmp), args.branches, args.seconds, i, guidance))
    result = {
        "model": engine.name,
        "load_s": round(load_s, 3),
        "branches": args.branches,
        "seconds": args.seconds,
        "threads": args.threads,
        "guidance": guidance,
        "first_audible_s": round(statistics.median(r["first_audible_s"] for r in runs), 3),
        "all_playable_s": round(statistics.median(r["all_playable_s"] for r in runs), 3),
        "runs": runs,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s)",
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
