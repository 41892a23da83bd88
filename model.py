"""
A LLaMA decoder in plain PyTorch, written to be read top to bottom.

    from model import ModelConfig, Transformer
    model = Transformer(ModelConfig(dim=384, n_layers=6, n_heads=6, hidden_dim=1536))
    logits, loss = model(idx, targets)                # idx, targets: (B, T) int64
    h = model.hidden(idx, positions=pos, mask=mask)   # (B, T, dim): all but the output projection
    new = model.generate(idx, 50, temperature=0.8)    # (B, <= 50): the new token ids only

Pieces, in the order the forward pass meets them:
  token embedding -> n_layers x [RMSNorm -> attention (RoPE, grouped-query) -> residual,
                                 RMSNorm -> SwiGLU MLP -> residual]
                  -> RMSNorm -> output projection to the vocabulary.

Parameter names follow Meta's / llama2.c's (tok_embeddings, layers.i.attention.wq, ...,
feed_forward.w1/w2/w3); Transformers' names appear only in export_hf.py, which is a pure rename
because RoPE here is in the same "rotate-half" form as transformers' LlamaForCausalLM.

References: Touvron et al. 2023 (LLaMA), Zhang & Sennrich 2019 (RMSNorm), Su et al. 2021 (RoPE),
Shazeer 2020 (SwiGLU), Ainslie et al. 2023 (grouped-query attention).
"""

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


@dataclass
class ModelConfig:
    """The model's shape. Bounded (LIMITS), so that a config or checkpoint from elsewhere claiming, say,
    n_layers=10**6 stops with one line instead of allocating until the machine dies; the bounds are
    far above any model this trainer is for (LLaMA-2 70B: dim 8192, 80 layers, 4096 positions)."""
    dim: int = 384                      # width of the residual stream (HF: hidden_size)
    n_layers: int = 6
    n_heads: int = 6                    # query heads
    n_kv_heads: Optional[int] = None    # key/value heads; None means n_heads (plain multi-head)
    hidden_dim: int = 1536              # width of the SwiGLU MLP (HF: intermediate_size)
    vocab_size: int = 16000
    max_seq_len: int = 512
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    tie_embeddings: bool = False        # share tok_embeddings and output weights
    dropout: float = 0.0
    scaled_residual_init: bool = True   # GPT-2's smaller init for the residual projections; False: 0.02 everywhere (transformers' LLaMA)
    flash: bool = True                  # F.scaled_dot_product_attention; False = the explicit math below
    grad_checkpoint: bool = False       # recompute each block in the backward pass to save memory

    def __post_init__(self):
        if self.n_kv_heads is not None and not 1 <= self.n_kv_heads <= LIMITS["n_heads"]:
            raise ValueError(f"model: n_kv_heads={self.n_kv_heads} must be between 1 and {LIMITS['n_heads']:,}")
        for key, most in LIMITS.items():
            if not 1 <= getattr(self, key) <= most:
                raise ValueError(f"model: {key}={getattr(self, key)} must be between 1 and {most:,}")
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        if not (self.norm_eps > 0 and self.rope_theta > 0 and 0 <= self.dropout < 1):
            raise ValueError(f"model: need norm_eps > 0, rope_theta > 0, 0 <= dropout < 1 (norm_eps={self.norm_eps}, "
                             f"rope_theta={self.rope_theta}, dropout={self.dropout})")
        if self.dim % self.n_heads != 0:
            raise ValueError(f"model: dim={self.dim} is not divisible by n_heads={self.n_heads}")
        if self.n_heads % self.n_kv_heads != 0:
            raise ValueError(f"model: n_heads={self.n_heads} is not divisible by n_kv_heads={self.n_kv_heads}")
        if (self.dim // self.n_heads) % 2 != 0:
            raise ValueError(f"model: head size dim/n_heads={self.dim // self.n_heads} must be even for RoPE")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    def architecture(self) -> dict:
        """The fields that decide which function a set of weights computes. The others (dropout,
        scaled_residual_init, flash, grad_checkpoint) say how the model is trained or run, so a
        checkpoint can be loaded under new values of them."""
        return {key: getattr(self, key) for key in ("dim", "n_layers", "n_heads", "n_kv_heads", "hidden_dim", "vocab_size",
                                                    "max_seq_len", "norm_eps", "rope_theta", "tie_embeddings")}


LIMITS = {"dim": 16_384, "n_layers": 256, "n_heads": 256, "hidden_dim": 65_536, "vocab_size": 1 << 22,
          "max_seq_len": 1 << 17}


class RMSNorm(nn.Module):
    """RMSNorm(x) = x / sqrt(mean(x^2) + eps) * weight   (Zhang & Sennrich 2019).

    Computed in fp32 whatever the input dtype: the mean of squares loses precision in bf16/fp16.
    """

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.type_as(x)


def rope_cos_sin(head_dim: int, max_seq_len: int, theta: float):
    """Cos and sin tables for RoPE in the rotate-half layout, each (max_seq_len, head_dim).

    Frequency i (i = 0 .. head_dim/2 - 1) is theta^(-2i/head_dim); position m rotates the pair
    (x_i, x_{i+head_dim/2}) by the angle m * freq_i. The table repeats the frequencies twice,
    [f_0 .. f_{d/2-1}, f_0 .. f_{d/2-1}], so that both halves of a pair see the same angle.
    """
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float32), freqs)  # (T, d/2)
    angles = torch.cat([angles, angles], dim=-1)                                  # (T, d)
    return angles.cos(), angles.sin()


def rotate_half(x):
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x, cos, sin):
    """Rotate queries or keys by their position (Su et al. 2021).

    x: (B, n_heads, T, head_dim); cos, sin: (T, head_dim), or (B, 1, T, head_dim) when each row
    has its own positions.
    x_rot = x * cos(m f) + rotate_half(x) * sin(m f), i.e. each pair (a, b) becomes
    (a cos - b sin, b cos + a sin): a 2-D rotation, so q_m . k_n depends on m - n only.
    """
    return (x.float() * cos + rotate_half(x.float()) * sin).type_as(x)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_heads * self.head_dim, cfg.dim, bias=False)
        self.dropout = cfg.dropout
        self.flash = cfg.flash

    def forward(self, x, cos, sin, kv_cache=None, mask=None):
        """mask: None for causal attention, or a bool tensor broadcastable to (B, n_heads, T, S),
        True where a query may attend to a key (eval_blimp.py's prefix trees, padded batches)."""
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)     # (B, nh, T, hs)
        k = self.wk(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, nkv, T, hs)
        v = self.wv(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, nkv, T, hs)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)

        if kv_cache is not None:  # generation: append this step's keys/values to the earlier ones
            if kv_cache.get("k") is not None:
                k = torch.cat([kv_cache["k"], k], dim=2)
                v = torch.cat([kv_cache["v"], v], dim=2)
            kv_cache["k"], kv_cache["v"] = k, v

        # grouped-query attention: each group of n_heads/n_kv_heads query heads shares one k/v head
        groups = self.n_heads // self.n_kv_heads
        if groups > 1:
            k = k.repeat_interleave(groups, dim=1)  # (B, nh, S, hs)
            v = v.repeat_interleave(groups, dim=1)

        S = k.shape[2]  # keys seen: T during training, past + T during cached generation
        dropout_p = self.dropout if self.training else 0.0
        if mask is None and not (self.flash and S == T):
            # is_causal aligns the mask top-left, which is only right when queries and keys coincide
            mask = causal_mask(T, S, x.device)
        if self.flash:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=mask is None)
        else:
            # softmax(q k^T / sqrt(hs) + mask) v, written out
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))  # (B, nh, T, S)
            att = att.masked_fill(~mask, float("-inf"))
            att = F.softmax(att.float(), dim=-1).type_as(q)
            att = F.dropout(att, p=dropout_p, training=self.training)
            y = att @ v                                                          # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, self.n_heads * self.head_dim)
        return self.wo(y)


def causal_mask(T: int, S: int, device):
    """(T, S) bool, True where query t (the last T of S positions) may attend to key s: s <= t + S - T."""
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=S - T)


class FeedForward(nn.Module):
    """SwiGLU MLP (Shazeer 2020): w2( silu(w1 x) * w3 x )."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.w1 = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)  # gate   (HF: gate_proj)
        self.w3 = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)  # value  (HF: up_proj)
        self.w2 = nn.Linear(cfg.hidden_dim, cfg.dim, bias=False)  # output (HF: down_proj)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.dropout(self.w2(F.silu(self.w1(x)) * self.w3(x)))


class TransformerBlock(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attention = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.feed_forward = FeedForward(cfg)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x, cos, sin, kv_cache=None, mask=None):
        x = x + self.resid_dropout(self.attention(self.attention_norm(x), cos, sin, kv_cache, mask))
        return x + self.feed_forward(self.ffn_norm(x))


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight

        # RoPE tables are derived from the config, so they are buffers left out of the state dict
        cos, sin = rope_cos_sin(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

        self.apply(self._init_weights)
        # The two projections that write into the residual stream get a smaller std, so the
        # stream's variance does not grow with depth: 2 * n_layers of them add up (GPT-2 paper).
        # transformers' LlamaForCausalLM (the Model A card's model) keeps 0.02 for them too.
        for name, p in self.named_parameters():
            if cfg.scaled_residual_init and (name.endswith("attention.wo.weight") or name.endswith("feed_forward.w2.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None, start_pos: int = 0, kv_caches=None, positions=None, mask=None):
        """idx: (B, T) token ids. Returns (logits, loss).

        With targets, logits are (B, T, vocab) and loss is the mean cross-entropy over positions
        whose target is not -1. Without targets (inference), only the last position's logits are
        computed, (B, 1, vocab), and loss is None. start_pos, kv_caches, positions and mask are
        those of hidden().
        """
        h = self.hidden(idx, start_pos, kv_caches, positions, mask)  # (B, T, dim)
        if targets is None:
            return self.output(h[:, [-1], :]), None
        logits = self.output(h)  # (B, T, vocab)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def hidden(self, idx, start_pos: int = 0, kv_caches=None, positions=None, mask=None):
        """The final hidden states (B, T, dim): the forward pass up to the output projection, so
        that a caller can project only the positions it needs (eval_blimp.py).

        By default token t sits at position start_pos + t and attends causally to the tokens before
        it (and to the cached keys of earlier calls). Otherwise:
          positions (B, T) int64: each token's RoPE position, below max_seq_len (not checked here:
              reading them back would make the caller wait for the device);
          mask (B, T, S) bool: True where token t may attend to key s (S = T, or past + T with a
              cache); every token must see some key, itself at least, or its softmax is 0/0.
        A packed row of several documents, or eval_blimp.py's prefix tree, gives each token the
        position and the keys it has in its own sequence, so it gets the hidden state it has there.
        """
        B, T = idx.shape
        if positions is None:
            if start_pos + T > self.cfg.max_seq_len:
                raise ValueError(f"model: sequence of {start_pos + T} tokens exceeds max_seq_len={self.cfg.max_seq_len}")
            cos = self.rope_cos[start_pos:start_pos + T]                    # (T, head_dim)
            sin = self.rope_sin[start_pos:start_pos + T]
        else:
            cos, sin = self.rope_cos[positions][:, None], self.rope_sin[positions][:, None]  # (B, 1, T, head_dim)
        if mask is not None:
            mask = mask[:, None]                                            # (B, 1, T, S): the same for every head
        h = self.dropout(self.tok_embeddings(idx))  # (B, T, dim)
        for i, layer in enumerate(self.layers):
            if self.cfg.grad_checkpoint and self.training and torch.is_grad_enabled():
                h = checkpoint(layer, h, cos, sin, None, mask, use_reentrant=False)
            else:
                h = layer(h, cos, sin, None if kv_caches is None else kv_caches[i], mask)
        return self.norm(h)

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count; a tied output matrix is counted once. non_embedding leaves out tok_embeddings."""
        n = sum(p.numel() for p in self.parameters())  # parameters() yields a shared tensor once
        if non_embedding:
            n -= self.tok_embeddings.weight.numel()
        return n

    def configure_optimizers(self, weight_decay: float, learning_rate: float, betas, device_type: str):
        """AdamW with weight decay on matrices (>= 2-D: linear weights, embeddings) only;
        norm gains are 1-D and are not decayed. The fused kernel (one pass over each tensor instead of a
        chain of elementwise ops) is used on CUDA and CPU, where it is also much faster than the default."""
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        extra = {"fused": True} if device_type in ("cuda", "cpu") else {}
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, **extra)

    def flops_per_token(self, seq_len: Optional[int] = None) -> float:
        """FLOPs of one forward + backward pass per token (PaLM paper, appendix B):
        6 N for the matrix multiplies of N non-embedding-lookup parameters, plus 12 L d T for the
        attention scores and their weighted sum."""
        cfg = self.cfg
        T = seq_len or cfg.max_seq_len
        n_matmul = self.num_params() - self.tok_embeddings.weight.numel()
        if cfg.tie_embeddings:
            n_matmul += self.output.weight.numel()  # the tied matrix still does the output matmul
        return 6 * n_matmul + 12 * cfg.n_layers * cfg.dim * T

    def estimate_mfu(self, tokens_per_second: float, peak_flops: Optional[float] = None, device=None) -> Optional[float]:
        """Model FLOPs utilisation: achieved FLOP/s over the device's peak dense bf16 FLOP/s.
        peak_flops is looked up from the CUDA device name when not given; None when unknown."""
        if peak_flops is None:
            peak_flops = peak_flops_for(device)
        if not peak_flops:
            return None
        return self.flops_per_token() * tokens_per_second / peak_flops

    @torch.no_grad()
    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, top_k: Optional[int] = None,
                 stop_ids: tuple = ()):
        """Continue idx (B, T) by up to max_new_tokens tokens and return only the new ones, (B, n).

        Sampling uses temperature (0 = greedy) and top-k, and reuses each layer's keys and values
        (KV cache) so that each new token costs one position. The prompt is cropped to its last
        max_seq_len - max_new_tokens tokens (at least one) so that it and the new tokens fit.
        Stops early once every row has produced one of stop_ids (a row that ends sooner runs on
        until then; its stop id is among its new tokens), or when the context is full."""
        self.eval()
        kv_caches = [dict() for _ in self.layers]
        idx = idx[:, -max(1, self.cfg.max_seq_len - max_new_tokens):]
        logits, _ = self(idx, start_pos=0, kv_caches=kv_caches)
        pos = idx.shape[1]
        new = idx[:, :0]                                                   # (B, 0)
        ended = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
        stop_ids = torch.tensor(stop_ids, dtype=torch.long, device=idx.device)
        for _ in range(max_new_tokens):
            logits = logits[:, -1, :].float()
            if temperature == 0.0:
                next_id = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                    logits[logits < v[:, [-1]]] = float("-inf")
                next_id = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)
            new = torch.cat([new, next_id], dim=1)
            ended |= torch.isin(next_id[:, 0], stop_ids)
            if bool(ended.all()):
                break
            if pos >= self.cfg.max_seq_len:
                break
            logits, _ = self(next_id, start_pos=pos, kv_caches=kv_caches)
            pos += 1
        return new


# The precisions a run, an evaluation or an export can use, by the names configs and flags give.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# Peak dense bf16 tensor-core FLOP/s (no sparsity), from the vendors' data sheets.
PEAK_BF16_FLOPS = {
    "H200": 989e12,
    "H100": 989e12,  # SXM; the PCIe card is 756e12
    "A100": 312e12,
}


def peak_flops_for(device=None) -> Optional[float]:
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(device)
    if "H100" in name and "PCIe" in name:
        return 756e12
    for key, flops in PEAK_BF16_FLOPS.items():
        if key in name:
            return flops
    return None
