"""
Specifications of model.py, each checked against an independent reference.

    pytest tests/test_model.py -q

References used: hand arithmetic (parameter count, RMSNorm, MFU), the complex-number form of RoPE,
a multi-head model with each key/value head copied (for grouped-query attention), a full forward
recomputed at every step (for the KV cache), and transformers' LlamaForCausalLM given the same
weights under its own names.
"""

import math
import os
import sys

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from model import ModelConfig, Transformer, apply_rope, rope_cos_sin, RMSNorm  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# Model A (config/model_a.py): the BabyLM reference model
MODEL_A = dict(dim=384, n_layers=6, n_heads=6, hidden_dim=1536, vocab_size=16000, max_seq_len=512)


def tiny(**kw) -> ModelConfig:
    """A model small enough to run dozens of times in a test: 2 layers, head size 16."""
    base = dict(dim=64, n_layers=2, n_heads=4, hidden_dim=128, vocab_size=97, max_seq_len=64)
    base.update(kw)
    return ModelConfig(**base)


def build(cfg: ModelConfig, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(cfg).eval()


def all_logits(model, idx):
    """Logits at every position: the training path (dummy targets) returns them all."""
    return model(idx, torch.zeros_like(idx))[0]


@pytest.fixture(scope="module")
def model_a():
    torch.manual_seed(0)
    return Transformer(ModelConfig(**MODEL_A))


# ---------------------------------------------------------------------------------- shapes

def test_training_gives_logits_at_every_position_and_inference_at_the_last():
    cfg = tiny()
    model = build(cfg)
    idx = torch.randint(0, cfg.vocab_size, (3, 10))
    targets = torch.randint(0, cfg.vocab_size, (3, 10))

    logits, loss = model(idx, targets)              # training: every position
    assert logits.shape == (3, 10, cfg.vocab_size)
    assert loss.shape == () and loss.dtype == torch.float32
    # at init the logits are near zero, so the loss is near that of a uniform guess
    assert abs(loss.item() - math.log(cfg.vocab_size)) < 0.1

    logits, loss = model(idx)                       # inference: the last position only
    assert logits.shape == (3, 1, cfg.vocab_size) and loss is None
    torch.testing.assert_close(logits[:, 0], all_logits(model, idx)[:, -1], atol=1e-6, rtol=0)


def test_loss_ignores_targets_equal_to_minus_one():
    cfg = tiny()
    model = build(cfg)
    idx = torch.randint(0, cfg.vocab_size, (2, 12))
    targets = torch.randint(0, cfg.vocab_size, (2, 12))
    targets[:, :5] = -1
    logits, loss = model(idx, targets)
    keep = targets != -1
    expected = F.cross_entropy(logits[keep].double(), targets[keep])  # mean over the 14 kept positions
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)


def test_sequence_longer_than_max_seq_len_raises():
    cfg = tiny(max_seq_len=16)
    model = build(cfg)
    with pytest.raises(ValueError, match="max_seq_len=16"):
        model(torch.zeros(1, 17, dtype=torch.long))


# ---------------------------------------------------------------------------------- attention

@pytest.mark.parametrize("n_kv_heads", [4, 2])
def test_sdpa_attention_equals_the_manual_masked_attention(n_kv_heads):
    cfg_sdpa, cfg_manual = tiny(n_kv_heads=n_kv_heads, flash=True), tiny(n_kv_heads=n_kv_heads, flash=False)
    sdpa, manual = build(cfg_sdpa), build(cfg_manual, seed=1)
    manual.load_state_dict(sdpa.state_dict())
    idx = torch.randint(0, cfg_sdpa.vocab_size, (2, 40))
    a, b = all_logits(sdpa, idx), all_logits(manual, idx)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert a.abs().max() > 1e-2  # the comparison is not between two near-zero tensors

    # cached decoding: 3 new queries against 40 + 3 keys (a mask that is not top-left aligned)
    caches_a, caches_b = [dict() for _ in range(cfg_sdpa.n_layers)], [dict() for _ in range(cfg_sdpa.n_layers)]
    sdpa(idx, kv_caches=caches_a)
    manual(idx, kv_caches=caches_b)
    new = torch.randint(0, cfg_sdpa.vocab_size, (2, 3))
    a, _ = sdpa(new, start_pos=40, kv_caches=caches_a)
    b, _ = manual(new, start_pos=40, kv_caches=caches_b)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_gqa_equals_multi_head_attention_with_each_kv_head_repeated():
    n_heads, n_kv_heads, hd = 4, 2, 16
    gqa = build(tiny(n_heads=n_heads, n_kv_heads=n_kv_heads))
    mha = build(tiny(n_heads=n_heads, n_kv_heads=n_heads), seed=1)
    groups = n_heads // n_kv_heads
    state = {}
    for name, w in gqa.state_dict().items():
        if name.endswith(("attention.wk.weight", "attention.wv.weight")):
            # rows are [head 0 (hd rows), head 1, ...]; query heads g*groups .. g*groups+groups-1 share head g
            w = w.view(n_kv_heads, hd, -1).repeat_interleave(groups, dim=0).reshape(n_heads * hd, -1)
        state[name] = w
    mha.load_state_dict(state)
    assert gqa.num_params() < mha.num_params()
    idx = torch.randint(0, 97, (2, 30))
    torch.testing.assert_close(all_logits(gqa, idx), all_logits(mha, idx), atol=1e-5, rtol=0)


def test_causal_a_future_token_does_not_change_earlier_logits():
    cfg = tiny()
    model = build(cfg)
    idx = torch.randint(0, cfg.vocab_size, (1, 24))
    changed = idx.clone()
    t = 15
    changed[0, t] = (idx[0, t] + 1) % cfg.vocab_size
    a, b = all_logits(model, idx), all_logits(model, changed)
    torch.testing.assert_close(a[:, :t], b[:, :t], atol=1e-6, rtol=0)
    assert (a[:, t:] - b[:, t:]).abs().amax(dim=-1).min() > 1e-4  # every later position does see it


# ---------------------------------------------------------------------------------- RoPE

def rope_at(x, m: int, cos, sin):
    """Rotate one vector x (head_dim,) to position m."""
    return apply_rope(x.view(1, 1, 1, -1), cos[m:m + 1], sin[m:m + 1]).view(-1)


def test_rope_makes_q_dot_k_depend_only_on_the_position_difference():
    hd = 32
    cos, sin = rope_cos_sin(hd, 512, 10000.0)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(hd, generator=g), torch.randn(hd, generator=g)
    for m, n, s in [(5, 2, 100), (0, 0, 300), (17, 40, 7), (3, 200, 250)]:
        d1 = rope_at(q, m, cos, sin) @ rope_at(k, n, cos, sin)
        d2 = rope_at(q, m + s, cos, sin) @ rope_at(k, n + s, cos, sin)
        assert d1.item() == pytest.approx(d2.item(), abs=1e-4)
    # and it does depend on the difference (else the test above would pass for no rotation at all)
    d_3 = rope_at(q, 3, cos, sin) @ rope_at(k, 0, cos, sin)
    d_0 = rope_at(q, 0, cos, sin) @ rope_at(k, 0, cos, sin)
    assert abs(d_3.item() - d_0.item()) > 1e-2
    assert d_0.item() == pytest.approx((q @ k).item(), abs=1e-5)  # position 0 is the identity


def test_rope_matches_the_complex_number_formula():
    """Rotate-half RoPE: with z_j = x_j + i x_{j+d/2} and f_j = theta^(-2j/d),
    position m gives z_j e^{i m f_j}, whose real parts are the first half and imaginary parts the second."""
    hd, T, theta = 16, 512, 10000.0
    cos, sin = rope_cos_sin(hd, T, theta)
    x = torch.randn(2, 3, T, hd, generator=torch.Generator().manual_seed(0))  # (B, nh, T, hs)
    got = apply_rope(x, cos, sin)

    xd = x.double()
    z = torch.complex(xd[..., :hd // 2], xd[..., hd // 2:])                  # (B, nh, T, d/2)
    f = theta ** (-2.0 * torch.arange(hd // 2, dtype=torch.float64) / hd)   # (d/2,)
    m = torch.arange(T, dtype=torch.float64)
    rotated = z * torch.polar(torch.ones(T, hd // 2, dtype=torch.float64), torch.outer(m, f))
    expected = torch.cat([rotated.real, rotated.imag], dim=-1).float()
    # fp32 angles m*f_j lose ~1e-7 relative, i.e. up to ~5e-5 rad at m = 511
    torch.testing.assert_close(got, expected, atol=2e-4, rtol=0)
    torch.testing.assert_close(got[:, :, :128], expected[:, :, :128], atol=2e-5, rtol=0)


# ---------------------------------------------------------------------------------- RMSNorm

def test_rmsnorm_equals_a_hand_computation():
    norm = RMSNorm(4, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1.0, 0.5, 2.0, -1.0]))
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    rms = math.sqrt((1 + 4 + 9 + 16) / 4 + 1e-5)  # sqrt(7.5 + eps)
    expected = torch.tensor([[1 / rms, 0.5 * 2 / rms, 2 * 3 / rms, -4 / rms], [0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(norm(x), expected, atol=1e-6, rtol=0)

    # bf16 input: statistics in fp32, result rounded once to bf16
    xb = torch.randn(8, 4, generator=torch.Generator().manual_seed(0)).bfloat16() * 30
    x64 = xb.double()
    ref = (x64 / torch.sqrt(x64.pow(2).mean(-1, keepdim=True) + 1e-5)).bfloat16().double() * norm.weight.double()
    out = norm(xb)
    assert out.dtype == torch.float32  # weight (fp32) * bf16 promotes; under autocast the next matmul casts
    torch.testing.assert_close(out.double(), ref, atol=1e-6, rtol=1e-6)


# ---------------------------------------------------------------------------------- training

@pytest.mark.slow
def test_a_tiny_model_overfits_one_batch():
    cfg = tiny(dim=64, n_layers=2, n_heads=4, hidden_dim=128, vocab_size=64, max_seq_len=32)
    torch.manual_seed(0)
    model = Transformer(cfg)
    x = torch.randint(0, cfg.vocab_size, (4, 32))
    y = torch.randint(0, cfg.vocab_size, (4, 32))  # random targets: only memorisation gets them right
    opt = model.configure_optimizers(weight_decay=0.0, learning_rate=1e-2, betas=(0.9, 0.95), device_type="cpu")
    for step in range(300):
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if loss.item() < 0.05:
            break
    assert loss.item() < 0.1, f"loss {loss.item():.3f} after {step + 1} steps"


def test_grad_checkpointing_gives_the_same_gradients():
    for dropout in (0.0, 0.1):  # with dropout: the recomputation must replay the same masks
        grads = []
        for gc in (False, True):
            model = build(tiny(dropout=dropout, grad_checkpoint=gc)).train()
            idx = torch.randint(0, 97, (2, 20), generator=torch.Generator().manual_seed(1))
            torch.manual_seed(123)
            _, loss = model(idx, idx)
            loss.backward()
            grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
        assert grads[0].keys() == grads[1].keys()
        for name in grads[0]:
            torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-7, rtol=1e-5, msg=name)
        assert grads[0]["layers.0.attention.wq.weight"].abs().max() > 0


# ---------------------------------------------------------------------------------- counts and init

def model_a_param_formula(d=384, L=6, h=1536, V=16000, tied=False):
    per_layer = 4 * d * d + 3 * d * h + 2 * d  # wq wk wv wo, w1 w2 w3, two RMSNorm gains
    return V * d + L * per_layer + d + (0 if tied else V * d)  # embedding, blocks, final norm, output


def test_model_a_has_26_448_768_parameters_as_the_formula_counts(model_a):
    n = model_a.num_params()
    assert n == model_a_param_formula() == 26_448_768
    assert abs(n - 26.4e6) <= 0.3e6
    assert model_a.num_params(non_embedding=True) == n - 16000 * 384


def test_tied_embeddings_are_counted_once():
    untied = Transformer(ModelConfig(**MODEL_A, tie_embeddings=False))
    tied = Transformer(ModelConfig(**MODEL_A, tie_embeddings=True))
    assert tied.output.weight is tied.tok_embeddings.weight
    assert tied.num_params() == model_a_param_formula(tied=True) == untied.num_params() - 16000 * 384
    # the tied matrix is still multiplied at the output, so the FLOPs are those of the untied model
    assert tied.flops_per_token() == untied.flops_per_token()


def test_weight_decay_goes_to_matrices_only(model_a):
    opt = model_a.configure_optimizers(weight_decay=0.1, learning_rate=3e-4, betas=(0.9, 0.95), device_type="cpu")
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    L = 6
    assert len(decay["params"]) == 1 + 7 * L + 1     # embedding, 7 matrices per block, output
    assert len(no_decay["params"]) == 2 * L + 1      # two norm gains per block, final norm
    n_grouped = sum(p.numel() for g in opt.param_groups for p in g["params"])
    assert n_grouped == model_a.num_params()         # every parameter in exactly one group
    assert opt.defaults.get("fused") is True           # the fused kernel, on CPU as on CUDA

    tied = Transformer(tiny(tie_embeddings=True))
    opt = tied.configure_optimizers(0.1, 3e-4, (0.9, 0.95), "cpu")
    assert len(opt.param_groups[0]["params"]) == 1 + 7 * 2  # the shared matrix once


def test_the_fused_adamw_step_equals_the_textbook_one():
    """The fused kernel configure_optimizers picks must take the same step as the plain loop."""
    torch.manual_seed(0)
    a = Transformer(tiny())
    b = Transformer(tiny())
    b.load_state_dict(a.state_dict())
    opt_a = a.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    twin = {id(p): q for p, q in zip(a.parameters(), b.parameters())}  # the same groups, over b's tensors
    opt_b = torch.optim.AdamW([{"params": [twin[id(p)] for p in g["params"]], "weight_decay": g["weight_decay"]}
                               for g in opt_a.param_groups], lr=1e-3, betas=(0.9, 0.95), foreach=False, fused=False)
    idx = torch.randint(0, a.cfg.vocab_size, (2, 16))
    for _ in range(3):
        for model, opt in ((a, opt_a), (b, opt_b)):
            model(idx, idx)[1].backward()
            opt.step()
            opt.zero_grad()
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)


def test_init_draws_matrices_at_0_02_and_residual_projections_at_0_02_over_sqrt_2_layers(model_a):
    L = 6
    small = 0.02 / math.sqrt(2 * L)
    for name, p in model_a.named_parameters():
        if p.dim() == 1:
            assert torch.all(p == 1.0), name  # RMSNorm gains start at 1
            continue
        want = small if name.endswith(("attention.wo.weight", "feed_forward.w2.weight")) else 0.02
        assert p.std().item() == pytest.approx(want, rel=0.02), name
        assert abs(p.mean().item()) < 0.1 * want, name


def test_init_std_without_scaled_residual_is_transformers_llama():
    """scaled_residual_init=False: every matrix N(0, 0.02), as LlamaPreTrainedModel._init_weights does
    with initializer_range 0.02 (the Model A card's model)."""
    torch.manual_seed(0)
    model = Transformer(ModelConfig(dim=384, n_layers=6, n_heads=6, hidden_dim=1536, vocab_size=2000,
                                    scaled_residual_init=False))
    for name, p in model.named_parameters():
        if p.dim() == 2:
            assert p.std().item() == pytest.approx(0.02, rel=0.02), name


# ---------------------------------------------------------------------------------- generation

@pytest.mark.parametrize("n_kv_heads", [pytest.param(4, marks=pytest.mark.slow), 2])  # 2: grouped-query
def test_kv_cache_greedy_generate_equals_recomputing_the_full_forward(n_kv_heads):
    cfg = tiny(n_kv_heads=n_kv_heads, max_seq_len=64)
    model = build(cfg)
    # larger weights than the init so that the argmax is decided by clear margins
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(5)
    prompt = torch.randint(0, cfg.vocab_size, (2, 7), generator=torch.Generator().manual_seed(0))
    got = model.generate(prompt, max_new_tokens=20, temperature=0.0)   # the new tokens only

    expected = prompt
    for _ in range(20):
        nxt = all_logits(model, expected)[:, -1].argmax(-1, keepdim=True)  # no cache: all positions again
        expected = torch.cat([expected, nxt], dim=1)
    assert got.shape == (2, 20)
    assert torch.equal(got, expected[:, 7:])
    assert len(set(got[0].tolist())) > 1  # not a degenerate constant continuation


def test_generate_stops_at_max_seq_len():
    """A prompt too long for the context is cropped to its last max_seq_len - max_new_tokens
    tokens, and the new tokens are those that crop would get from a full forward."""
    cfg = tiny(max_seq_len=16)
    model = build(cfg)
    prompt = torch.randint(0, cfg.vocab_size, (1, 12), generator=torch.Generator().manual_seed(0))
    new = model.generate(prompt, max_new_tokens=10, temperature=0.0)
    assert new.shape == (1, 10)                                       # 6 prompt + 10 new = 16 positions
    expected = prompt[:, -6:]
    for _ in range(10):
        expected = torch.cat([expected, all_logits(model, expected)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(new, expected[:, 6:])


def test_generate_stops_once_every_row_has_ended():
    cfg = tiny()
    model = build(cfg)
    with torch.no_grad():
        model.output.weight.zero_()      # all logits equal: the greedy choice is token 0 everywhere
    prompt = torch.randint(1, cfg.vocab_size, (2, 3))
    assert model.generate(prompt, max_new_tokens=10, temperature=0.0).tolist() == [[0] * 10] * 2
    assert model.generate(prompt, max_new_tokens=10, temperature=0.0, stop_ids=(0,)).tolist() == [[0], [0]]


# ---------------------------------------------------------------------------------- positions and masks

def test_hidden_with_default_positions_and_a_causal_mask_equals_the_plain_forward():
    cfg = tiny(n_kv_heads=2)
    model = build(cfg)
    idx = torch.randint(0, cfg.vocab_size, (2, 20))
    positions = torch.arange(20).expand(2, 20)
    causal = torch.ones(20, 20, dtype=torch.bool).tril().expand(2, 20, 20)
    plain = all_logits(model, idx)
    torch.testing.assert_close(model.output(model.hidden(idx)), plain, atol=0, rtol=0)
    torch.testing.assert_close(model.output(model.hidden(idx, positions=positions, mask=causal)), plain,
                               atol=1e-5, rtol=0)
    logits, loss = model(idx, idx, positions=positions, mask=causal)       # forward takes them too
    torch.testing.assert_close(logits, plain, atol=1e-5, rtol=0)


@pytest.mark.parametrize("flash", [True, False])
def test_a_packed_row_of_two_documents_gives_each_its_own_logits(flash):
    """With positions restarting at each document and a block-diagonal causal mask, two documents
    in one row get exactly the logits each has alone: no attention across the boundary, the same
    RoPE angles. The row is longer than max_seq_len, which positions allow."""
    cfg = tiny(n_kv_heads=2, max_seq_len=16, flash=flash)
    model = build(cfg)
    with torch.no_grad():  # far from the init, so that a wrong position or a leak shows
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(5)
    first, second = torch.randint(0, cfg.vocab_size, (1, 14)), torch.randint(0, cfg.vocab_size, (1, 9))
    row = torch.cat([first, second], dim=1)                               # (1, 23)
    positions = torch.cat([torch.arange(14), torch.arange(9)])[None]      # (1, 23)
    mask = torch.zeros(23, 23, dtype=torch.bool)
    mask[:14, :14] = torch.ones(14, 14, dtype=torch.bool).tril()
    mask[14:, 14:] = torch.ones(9, 9, dtype=torch.bool).tril()
    packed = model.output(model.hidden(row, positions=positions, mask=mask[None]))
    torch.testing.assert_close(packed[:, :14], all_logits(model, first), atol=1e-5, rtol=0)
    torch.testing.assert_close(packed[:, 14:], all_logits(model, second), atol=1e-5, rtol=0)
    causal = model.output(model.hidden(row, positions=positions))        # no mask: plain causal attention
    assert (packed[:, 14:] - causal[:, 14:]).abs().max() > 1e-2          # so the mask is what keeps them apart


def test_grad_checkpointing_passes_positions_and_mask_through():
    grads = []
    idx = torch.randint(0, 97, (2, 12), generator=torch.Generator().manual_seed(1))
    positions = torch.arange(12).flip(0).expand(2, 12)                    # any positions
    mask = torch.rand(2, 12, 12, generator=torch.Generator().manual_seed(2)) > 0.5
    mask |= torch.eye(12, dtype=torch.bool)                               # a query sees at least itself
    for gc in (False, True):
        model = build(tiny(grad_checkpoint=gc)).train()
        model(idx, idx, positions=positions, mask=mask)[1].backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-7, rtol=1e-5, msg=name)


# ---------------------------------------------------------------------------------- transformers

HF_NAMES = {  # ours -> transformers' LlamaForCausalLM
    "tok_embeddings.weight": "model.embed_tokens.weight",
    "norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
HF_LAYER_NAMES = {
    "attention.wq": "self_attn.q_proj", "attention.wk": "self_attn.k_proj",
    "attention.wv": "self_attn.v_proj", "attention.wo": "self_attn.o_proj",
    "feed_forward.w1": "mlp.gate_proj", "feed_forward.w3": "mlp.up_proj", "feed_forward.w2": "mlp.down_proj",
    "attention_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
}


def to_hf_name(name: str) -> str:
    if name in HF_NAMES:
        return HF_NAMES[name]
    _, i, rest = name.split(".", 2)             # layers.{i}.{module}.weight
    module, param = rest.rsplit(".", 1)
    return f"model.layers.{i}.{HF_LAYER_NAMES[module]}.{param}"


@pytest.mark.parametrize("tie", [False, True])
def test_logits_equal_transformers_llama_given_the_same_weights(tie):
    transformers = pytest.importorskip("transformers")
    cfg = ModelConfig(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=160, vocab_size=101,
                      max_seq_len=128, norm_eps=1e-6, rope_theta=5000.0, tie_embeddings=tie)
    ours = build(cfg)
    with torch.no_grad():  # non-trivial norm gains, so a swapped norm would show
        for name, p in ours.named_parameters():
            if p.dim() == 1:
                p.uniform_(0.5, 1.5)
    hf_cfg = transformers.LlamaConfig(
        hidden_size=cfg.dim, intermediate_size=cfg.hidden_dim, num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_kv_heads,
        max_position_embeddings=cfg.max_seq_len, rms_norm_eps=cfg.norm_eps, rope_theta=cfg.rope_theta,
        vocab_size=cfg.vocab_size, tie_word_embeddings=tie, attention_bias=False, mlp_bias=False)
    assert hf_cfg.rope_parameters["rope_theta"] == cfg.rope_theta
    hf = transformers.LlamaForCausalLM(hf_cfg).eval()
    state = {to_hf_name(k): v for k, v in ours.state_dict().items()}
    if tie:
        state.pop("lm_head.weight")
    missing, unexpected = hf.load_state_dict(state, strict=False)
    assert not unexpected and all(k == "lm_head.weight" for k in missing)  # tied lm_head is embed_tokens
    assert torch.equal(hf.lm_head.weight, ours.output.weight)

    idx = torch.randint(0, cfg.vocab_size, (2, 128), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        theirs = hf(input_ids=idx, labels=idx)
        mine, loss = ours(idx[:, :-1], idx[:, 1:])  # HF shifts the labels itself
        mine_all = all_logits(ours, idx)
    torch.testing.assert_close(mine_all, theirs.logits, atol=1e-5, rtol=0)  # positions 0..127
    assert loss.item() == pytest.approx(theirs.loss.item(), abs=1e-5)


# ---------------------------------------------------------------------------------- errors, MFU

def test_bad_config_raises_a_clear_value_error():
    with pytest.raises(ValueError, match=r"dim=100 is not divisible by n_heads=6"):
        ModelConfig(dim=100, n_heads=6)
    with pytest.raises(ValueError, match=r"n_heads=6 is not divisible by n_kv_heads=4"):
        ModelConfig(dim=384, n_heads=6, n_kv_heads=4)
    with pytest.raises(ValueError, match=r"must be even"):
        ModelConfig(dim=36, n_heads=4)  # head size 9


def test_mfu_is_palms_flops_per_token_times_tokens_per_s_over_the_peak(model_a):
    d, L, T, V = 384, 6, 512, 16000
    n_matmul = model_a_param_formula() - V * d  # the embedding lookup is not a matmul
    flops_per_token = 6 * n_matmul + 12 * L * d * T  # PaLM appendix B
    assert model_a.flops_per_token() == flops_per_token == 6 * 20_304_768 + 14_155_776
    tokens_per_s, peak = 50_000.0, 312e12
    assert model_a.estimate_mfu(tokens_per_s, peak_flops=peak) == pytest.approx(
        flops_per_token * tokens_per_s / peak, rel=1e-12)
    if not torch.cuda.is_available():
        assert model_a.estimate_mfu(tokens_per_s) is None  # no peak known for a CPU
