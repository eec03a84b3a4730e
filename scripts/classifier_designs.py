"""Classifiers of several designs, fitted on real corpus clips, judge the model's previews
(engine/evaluation/preview_designs.py): does the literal test's verdict depend on the features?

    python scripts/classifier_designs.py                      # the default model, the card's songs
    python scripts/classifier_designs.py --model DIR --seed 7
    python scripts/classifier_designs.py --after-change 6   # clips heard 6 s after the change, not 2
    python scripts/classifier_designs.py --change-pairs     # also the changes' labels sampled from nothing

It samples the card's generated songs and changes again (label guidance: the model's recommendation, as
`cocompose evaluate` does) and encodes the 240 reference songs: about 8 minutes on two CPU threads.
"""

from __future__ import annotations

import argparse

from cocompose.models import resolve_model
from engine.api import ComposeEngine
from engine.evaluation.conditioning import ConditioningConfig
from engine.evaluation.preview_designs import preview_design_check


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default")
    parser.add_argument("--seed", type=int, default=ConditioningConfig.seed)
    parser.add_argument("--guidance", type=float, help="default: the model's recommendation")
    parser.add_argument(
        "--temperature",
        type=float,
        default=ConditioningConfig.temperature,
        help="sampling temperature (default: %(default)s, the app's)",
    )
    parser.add_argument(
        "--after-change",
        type=float,
        default=ConditioningConfig.after_change_seconds,
        metavar="SECONDS",
        help="how long after an artist change its clip is heard (default: %(default)s, the issue's)",
    )
    parser.add_argument(
        "--change-pairs",
        action="store_true",
        help="also judge songs sampled from nothing with the (new artist, genre) each change asks for, "
        "heard where the change's clip is: is a shortfall after a change the change's or the pairs'?",
    )
    args = parser.parse_args()
    engine = ComposeEngine.load(resolve_model(args.model))
    guidance = engine.recommended_guidance if args.guidance is None else args.guidance
    config = ConditioningConfig(
        seed=args.seed,
        guidance=guidance,
        temperature=args.temperature,
        after_change_seconds=args.after_change,
    )
    print(preview_design_check(engine, config, change_pairs=args.change_pairs).to_text())


if __name__ == "__main__":
    main()
