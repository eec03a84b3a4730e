"""A trained prior with more transformer layers, computing exactly what it did before it trains on.

The new layers go on top of the stack and repeat its attention pattern from its first layer (a stack of
row / column / previous-row layers grows by more of the same). Each new layer starts with its attention
and MLP output projections at zero, so it adds nothing to the residual stream: the deepened prior's
logits equal the original's until the fine-tune moves those projections, and the fine-tune starts from
everything the prior had learnt rather than from a fresh, larger model (which a CPU could not train back
to the same place).

Written for the default model's top prior, whose remaining misses (two artist / genre pairs played
with another artist's vocabulary of codes) did not yield to more steps or more songs at its size.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from engine.prior.builders import build_prior, check_transformer

# The PriorHparams field that sets the depth (the reference's hps name).
DEPTH_FIELDS = frozenset({"prior_depth"})


def with_depth(prior, depth: int):
    """A copy of `prior` (same weights, same device and mode) whose music transformer has `depth`
    layers; the layers beyond its own start as identities. Returns `prior` itself when it already has
    that many; refuses to remove layers (that would forget what they learnt)."""
    cfg = prior.config
    old = cfg.transformer
    if depth == old.depth:
        return prior
    if depth < old.depth:
        raise ValueError(
            f"the prior has {old.depth} layers; a fine-tune can add layers (prior_depth={old.depth} or "
            f"more), not remove them (prior_depth={depth})"
        )
    kinds = tuple(old.attn_funcs[d % old.depth] for d in range(depth))
    transformer = replace(old, depth=depth, attn_funcs=kinds)
    check_transformer(transformer, "the deepened prior")
    device = next(prior.parameters()).device
    deepened = build_prior(replace(cfg, transformer=transformer), device=device)
    missing, unexpected = deepened.load_state_dict(prior.state_dict(), strict=False)
    new_layer_keys = {key for key in deepened.state_dict() if _layer_index(key) >= old.depth}
    if unexpected or set(missing) != new_layer_keys:
        raise RuntimeError(f"deepening changed more than the new layers: {unexpected or missing}")
    _silence_new_layers_(deepened, old.depth)
    deepened.train(prior.training)
    return deepened


def _layer_index(key: str) -> int:
    """The music transformer layer a state_dict key belongs to, -1 for every other key."""
    prefix = "prior.transformer._attn_mods."
    return int(key[len(prefix) :].split(".")[0]) if key.startswith(prefix) else -1


@torch.no_grad()
def _silence_new_layers_(prior, first_new: int) -> None:
    """Zero the output projections of layers `first_new` on: each then adds nothing to its input."""
    for layer in prior.prior.transformer._attn_mods[first_new:]:
        for projection in (layer.attn.c_proj, layer.mlp.c_proj):
            projection.w.zero_()
            projection.b.zero_()
