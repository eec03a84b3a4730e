"""A trained prior with another attention pattern: which earlier positions each layer reads.

A self-attention layer's weights do not depend on its pattern (its query, key and value projections are
the same whether it attends within its block, down its column, to the previous block or densely), so a
prior can be fine-tuned into a pattern it was not trained with. Layers that read the lyrics have weights
of their own and keep their kind.

Written to probe the default model's top prior, whose row and previous-row layers (16 blocks of 32
codes) reach at most 0.5 s back, less than a beat, while its songs drift off their genre's tempo; fine-
tuned into wider rows or dense attention it predicted the codes as well or better but heard its genre
label less (docs/MODELS.md).
"""

from __future__ import annotations

from dataclasses import replace

from engine.prior.builders import build_prior, check_transformer, layer_kinds
from engine.prior.config import BLOCK, COLUMN, DENSE, PREV_BLOCK

# The PriorHparams fields that set the pattern (the reference's hps names).
PATTERN_FIELDS = frozenset({"attn_order", "blocks"})
# Attention kinds with the same weights: a layer may change from any of these to any other.
SELF_ATTENTION = frozenset({DENSE, BLOCK, COLUMN, PREV_BLOCK})


def with_attention_pattern(prior, attn_order: int | None = None, blocks: int | None = None):
    """A copy of `prior` (same weights, same device) whose music transformer uses the reference's
    `attn_order` layer cycle and/or `blocks` blocks; None keeps what the prior has."""
    cfg = prior.config
    old = cfg.transformer
    transformer = replace(
        old,
        attn_funcs=old.attn_funcs if attn_order is None else layer_kinds(attn_order, old.depth),
        blocks=old.blocks if blocks is None else blocks,
    )
    if transformer == old:
        return prior
    for layer, (was, kind) in enumerate(zip(old.attn_funcs, transformer.attn_funcs, strict=True)):
        if was != kind and not {was, kind} <= SELF_ATTENTION:
            raise ValueError(
                f"attention layer {layer} would change from kind {was} to {kind}; only self-attention "
                f"kinds ({', '.join(str(k) for k in sorted(SELF_ATTENTION))}) can replace each other, since "
                "layers that read the lyrics have weights of their own"
            )
    check_transformer(transformer, "the new attention pattern")
    device = next(prior.parameters()).device
    rebuilt = build_prior(replace(cfg, transformer=transformer), device=device)
    rebuilt.load_state_dict(prior.state_dict())
    rebuilt.train(prior.training)
    return rebuilt
