"""A Jukebox prior (upsampler or top prior) with full-window logits, losses and incremental decoding.

Submodule names are those of the official checkpoints: `conditioner_blocks.0` (upsamplers), `y_emb`
(labels), `prime_prior` / `prime_state_proj` / `prime_state_ln` / `prime_x_out` (5b_lyrics lyric
encoder) and `prior` (the autoregressive core).

Tokens are always music codes 0..l_bins-1. For the single encoder-decoder prior (1b_lyrics) the
stream is lyric ids 0..n_vocab-1 followed by codes shifted by n_vocab; that shift is internal, and
logits of that prior cover the joint vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.prior.autoregressive import AutoregressiveCore
from engine.prior.conditioning import LabelConditioner, UpsamplerConditioner
from engine.prior.config import ENC_DEC, PRIME, PriorConfig
from engine.prior.conv1d import Conv1D, LayerNorm
from engine.prior.decode_state import DecodeState
from engine.prior.kv_cache import KVCache
from engine.prior.sampler import SampleResult
from engine.prior.sampler import sample as sample_window

_LN2 = math.log(2.0)


@dataclass
class Conditioning:
    """Per-window conditioning of N streams."""

    start: torch.Tensor | None  # (N, 1, W) label start embedding (y_cond)
    x_cond: torch.Tensor | None  # (N, stream_len, W): timing or upsampler conditioner (zeros on lyrics)
    encoder_kv: torch.Tensor | None  # (N, n_tokens, W) lyric encoder states (5b_lyrics)
    lyrics: torch.Tensor | None  # (N, n_tokens) lyric ids from the labels


class JukeboxPrior(nn.Module):
    def __init__(self, cfg: PriorConfig):
        super().__init__()
        self.config = cfg
        if cfg.conditioner is not None:
            self.conditioner_blocks = nn.ModuleList([UpsamplerConditioner(cfg.conditioner)])
        if cfg.labels is not None:
            self.y_emb = LabelConditioner(cfg.labels, cfg.width)
        if cfg.lyrics is not None:
            lt = cfg.lyrics.transformer
            self.prime_prior = AutoregressiveCore(
                lt, cfg.lyrics.vocab, start_token=True, with_output=False, tied_output=False
            )
            self.prime_state_proj = Conv1D(lt.width, cfg.width)
            self.prime_state_ln = LayerNorm(cfg.width)
            self.prime_x_out = nn.Linear(cfg.width, cfg.lyrics.vocab, bias=False)
        self.prior = AutoregressiveCore(
            cfg.transformer,
            cfg.bins,
            start_token=cfg.labels is None,
            with_output=True,
            tied_output=cfg.tied_x_out,
        )

    # ----------------------------------------------------------------- conditioning
    def conditioning(
        self,
        labels: torch.Tensor | None,
        upper_tokens: torch.Tensor | None = None,
        blend: torch.Tensor | None = None,
        neutral: bool | torch.Tensor = False,
    ) -> Conditioning:
        """Once-per-window work: start embedding, timing or upsampler conditioning, lyric encoder.

        blend: optional (N, 2) artist blend rows [other artist id, weight] mixed into the artist embedding
        (`LabelConditioner.start_embedding`); ignored by a prior without labels. neutral: the start
        embedding names no artist or genre (label guidance's contrast); timing and lyrics are kept. An (N,)
        bool tensor makes only the rows it marks neutral."""
        cfg = self.config
        start = x_cond = encoder_kv = lyrics = None
        if cfg.labels is not None:
            if labels is None or labels.dim() != 2 or labels.shape[1] != cfg.label_len:
                shape = None if labels is None else tuple(labels.shape)
                raise ValueError(f"labels must be (N, {cfg.label_len}) int64, got {shape}")
            labels = labels.long()
            start = self.y_emb.start_embedding(labels, blend, neutral)
            if cfg.n_tokens:
                lyrics = labels[:, labels.shape[1] - cfg.n_tokens :]
                if bool((lyrics < 0).any() or (lyrics >= cfg.n_vocab).any()):
                    raise ValueError(f"lyric ids in the labels must lie in 0..{cfg.n_vocab - 1}")
            if cfg.labels.include_timing:
                x_cond = self.y_emb.timing_embedding(labels)  # (N, n_ctx, W)
        if cfg.conditioner is not None:
            if upper_tokens is None:
                raise ValueError("an upsampler needs upper_tokens, the codes of the level above")
            x_cond = self.conditioner_blocks[0](upper_tokens)
        if cfg.single_enc_dec and x_cond is not None:
            pad = x_cond.new_zeros(x_cond.shape[0], cfg.n_tokens, x_cond.shape[2])
            x_cond = torch.cat([pad, x_cond], dim=1)
        if cfg.lyrics is not None:
            encoder_kv = self.encode_lyrics(lyrics)
        return Conditioning(start, x_cond, encoder_kv, lyrics)

    def lyric_encoder_states(self, lyrics: torch.Tensor, hidden_states: list | None = None) -> torch.Tensor:
        """5b_lyrics: (N, n_tokens) ids -> last-layer lyric encoder activations (N, n_tokens, Wp)."""
        enc = self.prime_prior
        x = enc.inputs(lyrics[:, :-1], 0, None)
        h, _ = enc.transformer(x, hidden_states=hidden_states)
        return h

    def encode_lyrics(self, lyrics: torch.Tensor) -> torch.Tensor:
        """(N, n_tokens) lyric ids -> encoder_kv (N, n_tokens, W), consumed by every ENC_DEC layer."""
        return self.prime_state_ln(self.prime_state_proj(self.lyric_encoder_states(lyrics)))

    # ----------------------------------------------------------------- full window
    def _stream(self, tokens: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        """Music codes (N, L) -> stream ids (lyrics first for the single enc-dec prior)."""
        cfg = self.config
        tokens = tokens.long()
        if tokens.dim() != 2 or tokens.shape[1] > cfg.n_ctx or tokens.shape[1] == 0:
            raise ValueError(
                f"tokens must be (N, L) codes with 0 < L <= {cfg.n_ctx}, got {tuple(tokens.shape)}"
            )
        if bool((tokens < 0).any() or (tokens >= cfg.l_bins).any()):
            raise ValueError(f"music codes must lie in 0..{cfg.l_bins - 1}")
        if cfg.single_enc_dec:
            return torch.cat([cond.lyrics, tokens + cfg.vocab_shift], dim=1)
        return tokens

    def _forward(
        self,
        tokens,
        labels,
        upper_tokens,
        record_layer=None,
        hidden_states=None,
        blend=None,
        neutral=False,
        inputs=None,
    ):
        cond = self.conditioning(labels, upper_tokens, blend, neutral)
        stream = self._stream(tokens, cond)
        _check_batch(stream, cond)
        read = stream if inputs is None else self._stream(inputs, cond)
        if read.shape != stream.shape:
            raise ValueError(f"inputs {tuple(inputs.shape)} and tokens {tuple(tokens.shape)} differ in shape")
        core = self.prior
        x = core.inputs(read[:, :-1], 0, cond.x_cond, cond.start)
        h, weights = core.transformer(x, 0, None, cond.encoder_kv, record_layer, hidden_states)
        logits = core.outputs(h, 0, cond.x_cond, self.config.add_cond_after_transformer)
        return logits, stream, cond, weights

    def logits(
        self, tokens: torch.Tensor, labels: torch.Tensor | None, upper_tokens=None, blend=None
    ) -> torch.Tensor:
        """Logits (N, L, bins); row t predicts token t from tokens < t.

        tokens: (N, L) codes, L <= n_ctx. labels: (N, label_len) label vectors. upper_tokens:
        (N, n_ctx / cond_downsample) codes of the level above (upsamplers only).
        For 1b_lyrics the rows cover the lyric + music stream: (N, n_tokens + L, n_vocab + l_bins).
        blend: optional (N, 2) artist blend rows (see `conditioning`).
        """
        return self._forward(tokens, labels, upper_tokens, blend=blend)[0]

    def hidden_states(self, tokens, labels, upper_tokens=None) -> list[torch.Tensor]:
        """Residual stream after every transformer layer, (N, stream L, W) each (for debugging)."""
        states: list[torch.Tensor] = []
        self._forward(tokens, labels, upper_tokens, hidden_states=states)
        return states

    def loss(
        self, tokens, labels, upper_tokens=None, neutral=False, inputs=None, first_scored=None
    ) -> dict[str, torch.Tensor]:
        """Per-item losses in bits per token: {'loss', 'gen_loss', 'prime_loss'}, each (N,).

        gen_loss is over the music tokens, prime_loss over the lyric tokens (0 without lyrics), and
        loss = prime_loss_fraction * prime_loss * n_tokens / total + gen_loss * L / total.
        neutral: rows scored with the neutral start token (see `conditioning`). inputs: (N, L) codes the
        prior reads in place of `tokens` (training with input noise); the targets stay `tokens`.
        first_scored: (N,) per row, the first music token gen_loss averages over (the ones before are
        context only: codes of an artist other than the label's, before a mid-song change); None: all.
        """
        cfg = self.config
        logits, stream, cond, _ = self._forward(tokens, labels, upper_tokens, neutral=neutral, inputs=inputs)
        n_prime = cfg.n_tokens if cfg.single_enc_dec else 0
        gen = _bits(logits[:, n_prime:], stream[:, n_prime:], first_scored)
        if cfg.single_enc_dec:
            prime = _bits(logits[:, :n_prime], stream[:, :n_prime])
        elif cfg.lyrics is not None:
            prime = _bits(self.prime_x_out(cond.encoder_kv.float()), cond.lyrics)
        else:
            prime = torch.zeros_like(gen)
        prime_dims = cfg.prime_loss_dims
        gen_dims = stream.shape[1] - n_prime
        total = prime_dims + gen_dims
        loss = cfg.prime_loss_fraction * prime * prime_dims / total + gen * gen_dims / total
        return {"loss": loss, "gen_loss": gen, "prime_loss": prime}

    def alignment_weights(self, tokens, labels, all_heads: bool = False) -> torch.Tensor:
        """Lyric alignment: softmax weights of music queries over lyric keys in the alignment layer.

        Returns (N, n_ctx, n_tokens) for the configured alignment head, or (N, H, n_ctx, n_tokens).
        """
        cfg = self.config
        layer = cfg.alignment_layer
        if layer is None or not cfg.n_tokens:
            raise ValueError("this prior has no lyric alignment layer")
        kind = cfg.transformer.attn_funcs[layer]
        if kind not in (ENC_DEC, PRIME):
            raise ValueError(f"alignment layer {layer} does not attend to lyrics (kind {kind})")
        weights = self._forward(tokens, labels, None, record_layer=layer)[3]
        if kind == PRIME:
            # music queries x lyric keys (the kept keys also include the first music positions)
            weights = weights[:, :, cfg.n_tokens :, : cfg.n_tokens]
        return weights if all_heads else weights[:, cfg.alignment_head]

    # ----------------------------------------------------------------- incremental decoding
    @torch.no_grad()
    def start(
        self,
        labels: torch.Tensor | None,
        upper_tokens=None,
        batch_size: int | None = None,
        blend=None,
        neutral: bool = False,
    ) -> DecodeState:
        """Begin a window: run the conditioning once, position 0 (and the lyrics for 1b_lyrics).

        N comes from labels (or upper_tokens / batch_size for a label-less prior). The returned
        state's next_logits (N, bins) predict the first music token. blend, neutral: see `conditioning`.
        """
        cfg = self.config
        cond = self.conditioning(labels, upper_tokens, blend, neutral)
        n = _batch_of(labels, upper_tokens, batch_size)
        param = self.prior.x_emb.weight
        compute_dtype = self.prior.transformer.compute_dtype
        cache = KVCache.allocate(cfg.transformer, n, param.device, compute_dtype)
        for d, layer in enumerate(self.prior.transformer._attn_mods):
            if layer.kind == ENC_DEC:
                keys, values = layer.attn.encoder_keys_values(cond.encoder_kv, compute_dtype)
                cache[d].keys.copy_(keys)
                cache[d].values.copy_(values)
        if cfg.single_enc_dec:
            prefix = cond.lyrics
        else:
            prefix = torch.zeros(n, 0, dtype=torch.long, device=param.device)
        core = self.prior
        x = core.inputs(prefix, 0, cond.x_cond, cond.start)
        h, _ = core.transformer(x, 0, cache, cond.encoder_kv)
        logits = core.outputs(h, 0, cond.x_cond, cfg.add_cond_after_transformer)
        offset = cfg.n_tokens if cfg.single_enc_dec else 0
        return DecodeState(cache, x.shape[1], cond.x_cond, logits[:, -1], music_offset=offset)

    def extend(self, state: DecodeState, tokens: torch.Tensor) -> torch.Tensor:
        """Feed music codes (N, k); returns (N, k, bins) logits, row j predicting the token after
        tokens[:, j]. Updates `state` in place (its next_logits become the last row)."""
        tokens = torch.as_tensor(tokens, device=state.next_logits.device).long()
        if bool((tokens < 0).any() or (tokens >= self.config.l_bins).any()):
            raise ValueError(f"music codes must lie in 0..{self.config.l_bins - 1}")
        return self.extend_raw(state, tokens + self.config.vocab_shift)

    @torch.no_grad()
    def extend_raw(self, state: DecodeState, ids: torch.Tensor) -> torch.Tensor:
        """Like extend, with stream ids of the prior's own vocabulary (for 1b_lyrics the joint one,
        where music is code + n_vocab and ids < n_vocab are lyric ids, which the reference samples
        and feeds back at music positions)."""
        ids = torch.as_tensor(ids, device=state.next_logits.device).long()
        if ids.dim() != 2 or ids.shape[0] != state.batch_size or ids.shape[1] == 0:
            raise ValueError(f"expected ids of shape ({state.batch_size}, k>0), got {tuple(ids.shape)}")
        core = self.prior
        t0 = state.position
        x = core.inputs(ids, t0, state.x_cond)
        h, _ = core.transformer(x, t0, state.cache)
        logits = core.outputs(h, t0, state.x_cond, self.config.add_cond_after_transformer)
        state.position = t0 + ids.shape[1]
        state.next_logits = logits[:, -1]
        return logits

    def fork(self, state: DecodeState, index_or_repeats: int | torch.Tensor | list[int]) -> DecodeState:
        """An int n gives n branches per stream; an index picks streams (e.g. zeros(n) for n copies
        of stream 0). The shared prefix is copied, not recomputed."""
        if isinstance(index_or_repeats, int):
            return state.fork(index_or_repeats)
        return state.select(index_or_repeats)

    def codes_from_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """Stream ids -> music codes; like the reference, a lyric id drawn at a music position of the
        joint vocabulary becomes code 0."""
        return (ids - self.config.vocab_shift).clamp(min=0)

    def sample(self, labels: torch.Tensor | None, n_new: int, **kwargs) -> SampleResult:
        """Sample n_new codes per branch inside one window; see `engine.prior.sampler.sample`."""
        return sample_window(self, labels, n_new, **kwargs)

    def music_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """The music-code columns of logits (all of them, except for 1b_lyrics)."""
        return logits[..., self.config.vocab_shift :]


def _bits(logits: torch.Tensor, targets: torch.Tensor, first: torch.Tensor | None = None) -> torch.Tensor:
    """Per-item mean cross-entropy in bits: logits (N, L, B), targets (N, L) -> (N,); with `first` (N,),
    each row's mean runs over its positions from first on."""
    ce = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")
    if first is None:
        return ce.mean(dim=1) / _LN2
    scored = torch.arange(ce.shape[1], device=ce.device)[None, :] >= first.to(ce.device)[:, None]
    return (ce * scored).sum(dim=1) / scored.sum(dim=1).clamp(min=1) / _LN2


def _check_batch(stream: torch.Tensor, cond: Conditioning) -> None:
    for name, t in (("labels", cond.start), ("upper_tokens / timing", cond.x_cond)):
        if t is not None and t.shape[0] != stream.shape[0]:
            raise ValueError(f"batch mismatch: {stream.shape[0]} token rows but {t.shape[0]} {name} rows")


def _batch_of(labels, upper_tokens, batch_size) -> int:
    for t in (labels, upper_tokens):
        if t is not None:
            return t.shape[0]
    if batch_size is None:
        raise ValueError("give labels, upper_tokens or batch_size")
    return batch_size
