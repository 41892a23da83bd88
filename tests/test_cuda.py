"""
The fast path on a GPU: bf16 and fp16 autocast, torch.compile, flash attention, exact resume.

    python -m pytest -m cuda tests/test_cuda.py                        # on a machine with a CUDA GPU
    CUDA_TESTS_ON_CPU=1 python -m pytest -m cuda tests/test_cuda.py    # the same code on the CPU: a dry run

Without a GPU every test here is skipped (CI has none); tools/gpu_check.py runs them when a GPU is
lent. CUDA_TESTS_ON_CPU=1 runs them on the CPU instead, so that a mistake in a test is found before
a GPU minute is spent on it; it proves nothing about CUDA.

Every fast-path result is held against a reference computed another way: the eager model in fp32 on
the CPU with the attention written out (flash=False), or a run that never stopped. Errors are
relative, ||a - ref|| / ||ref||: bf16 keeps 8 bits of mantissa (a rounding of 2^-9 = 2e-3), so
logits land near 5e-3 and gradients, after two matmuls per layer, near 1e-2; fp16 keeps 11 bits.
The bounds leave a factor of 2-5 over that and are still far below what a wrong result gives (a
missing RoPE, a wrong mask or an unscaled gradient is off by order 1).
"""

import copy
import json
import os

import pytest
import torch

from conftest import checkpoint_weights
from model import ModelConfig, Transformer

pytestmark = pytest.mark.cuda

# grouped-query attention (2 key/value heads for 4 query heads) and a head size flash attention takes
TINY = dict(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=160, vocab_size=257, max_seq_len=256)


@pytest.fixture(scope="module")
def device():
    if torch.cuda.is_available():
        return torch.device("cuda")
    if os.environ.get("CUDA_TESTS_ON_CPU") == "1":
        return torch.device("cpu")
    pytest.skip("no CUDA device (CUDA_TESTS_ON_CPU=1 runs these on the CPU as a dry run)")


def tiny_model(device, **overrides):
    torch.manual_seed(0)
    return Transformer(ModelConfig(**{**TINY, **overrides})).to(device)


def batch(device, B=4, T=128, vocab=TINY["vocab_size"]):
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, vocab, (B, T + 1), generator=g)
    return tokens[:, :-1].to(device), tokens[:, 1:].to(device)


def grads(model):
    """Every parameter's gradient, flattened into one fp32 vector on the CPU."""
    return torch.cat([p.grad.detach().float().flatten().cpu() for p in model.parameters()])


def rel(a, ref):
    a, ref = a.detach().float().cpu(), ref.detach().float().cpu()
    return ((a - ref).norm() / ref.norm()).item()


def reference(model, x, y):
    """(logits, loss, gradients) of the same weights, eager, fp32, on the CPU, attention written out."""
    ref = Transformer(ModelConfig(**{**vars(model.cfg), "flash": False}))
    ref.load_state_dict({k: v.detach().float().cpu() for k, v in model.state_dict().items()})
    logits, loss = ref(x.cpu(), y.cpu())
    loss.backward()
    return logits, loss, grads(ref)


def test_bf16_autocast_gradients_match_fp32_and_training_follows_the_fp32_run(device):
    model = tiny_model(device)
    x, y = batch(device)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        logits, loss = model(x, y)
    loss.backward()
    assert logits.dtype == torch.bfloat16                   # the matmuls ran in bf16 ...
    assert all(p.dtype == torch.float32 for p in model.parameters())   # ... on fp32 master weights
    ref_logits, ref_loss, ref_grads = reference(model, x, y)
    assert rel(logits, ref_logits) < 2e-2
    assert abs(loss.item() - ref_loss.item()) < 1e-2 * ref_loss.item()
    assert rel(grads(model), ref_grads) < 5e-2

    # eight steps of the fused AdamW on one batch: the bf16 run's losses follow the fp32 run's
    def losses(amp):
        m = tiny_model(device)
        opt = m.configure_optimizers(0.1, 3e-3, (0.9, 0.95), device.type)
        out = []
        for _ in range(8):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                _, step_loss = m(x, y)
            step_loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            out.append(step_loss.item())
        return out

    amp, fp32 = losses(True), losses(False)
    assert fp32[-1] < fp32[0] - 0.5                          # the run learns (from ln 257 = 5.55) ...
    assert all(abs(a - b) < 0.02 * b for a, b in zip(amp, fp32)), (amp, fp32)   # ... and bf16 with it


def test_fp16_grad_scaler_unscales_to_the_true_gradients_and_skips_an_overflowing_step(device):
    """train.py's fp16 sequence (scale, backward, unscale_, clip, step, update) with the fused AdamW
    configure_optimizers picks: the unscaled gradients are the fp32 ones; a step whose gradients
    overflow leaves the weights and Adam's moments untouched and halves the scale."""
    model = tiny_model(device)
    opt = model.configure_optimizers(0.1, 3e-3, (0.9, 0.95), device.type)
    scaler = torch.amp.GradScaler(device.type, init_scale=2.0 ** 16)
    x, y = batch(device)

    def forward_backward(factor=1.0):
        with torch.autocast(device.type, dtype=torch.float16):
            logits, loss = model(x, y)
        scaler.scale(loss * factor).backward()
        return logits, loss

    logits, loss = forward_backward()
    assert logits.dtype == torch.float16
    scaler.unscale_(opt)
    ref_logits, ref_loss, ref_grads = reference(model, x, y)
    assert rel(grads(model), ref_grads) < 2e-2
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    before = copy.deepcopy(model.state_dict())
    scaler.step(opt)
    scaler.update()
    opt.zero_grad(set_to_none=True)
    assert scaler.get_scale() == 2.0 ** 16
    assert not torch.equal(model.tok_embeddings.weight, before["tok_embeddings.weight"])

    weights = copy.deepcopy(model.state_dict())
    moments = {i: {k: v.clone() for k, v in s.items()} for i, s in enumerate(opt.state.values())}
    forward_backward(float("inf"))                            # every gradient is inf or nan
    scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() == 2.0 ** 15
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    for i, s in enumerate(opt.state.values()):
        assert torch.equal(s["exp_avg"], moments[i]["exp_avg"]) and torch.equal(s["exp_avg_sq"], moments[i]["exp_avg_sq"])


def test_compiled_training_step_equals_eager_within_bf16_tolerance(device):
    import torch._dynamo
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    eager = tiny_model(device)
    compiled = copy.deepcopy(eager)
    step = torch.compile(compiled)   # as train.py compiles the model
    x, y = batch(device)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        logits_e, loss_e = eager(x, y)
        logits_c, loss_c = step(x, y)
    loss_e.backward()
    loss_c.backward()
    breaks = dict(torch._dynamo.utils.counters["graph_break"])
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1      # it did compile
    assert not breaks, f"the training forward should compile to one graph; graph breaks: {breaks}"
    ref_logits, _, ref_grads = reference(eager, x, y)
    assert rel(logits_c, logits_e) < 1e-2 and rel(logits_c, ref_logits) < 2e-2
    assert abs(loss_c.item() - loss_e.item()) < 1e-2 * loss_e.item()
    assert rel(grads(compiled), grads(eager)) < 3e-2 and rel(grads(compiled), ref_grads) < 5e-2


def test_flash_attention_equals_the_explicit_attention(device):
    """The flash kernel alone (sdpa_kernel makes any other choice an error), forward and backward,
    at a length of several of its blocks, against the attention written out."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    model = tiny_model(device, dim=256)   # head size 64, as Model A's
    explicit = copy.deepcopy(model)
    for layer in explicit.layers:
        layer.attention.flash = False
    x, y = batch(device, B=2, T=256)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            logits_f, loss_f = model(x, y)
            loss_f.backward()
        logits_x, loss_x = explicit(x, y)
        loss_x.backward()
    ref_logits, _, ref_grads = reference(model, x, y)
    assert rel(logits_f, logits_x) < 1e-2 and rel(logits_f, ref_logits) < 2e-2
    assert rel(grads(model), grads(explicit)) < 3e-2 and rel(grads(model), ref_grads) < 5e-2


# ----------------------------------------------------------------------------- exact resume

RUN = ["--dim=32", "--n_layers=2", "--n_heads=4", "--hidden_dim=64", "--max_seq_len=32", "--block_size=32",
       "--batch_size=4", "--grad_accum=2", "--eval_windows=4", "--warmup_iters=2", "--milestone_unit=none",
       "--max_iters=8", "--eval_interval=4", "--log_interval=1", "--lr=3e-3",
       "--dropout=0.1",       # dropout draws from the device's random generator: its state must be restored
       "--dtype=float16"]     # fp16 has a GradScaler: its scale must be restored too


def test_resume_on_the_gpu_continues_bit_for_bit(device, tiny_data, tmp_path):
    """A run stopped at step 3 and resumed has the losses and weights of one that ran straight
    through: the checkpoint carries the device's RNG state and the grad scaler as well."""
    import train

    def run(out, *extra):
        assert train.main([f"--data_dir={tiny_data}", f"--out_dir={out}", f"--device={device.type}", *RUN, *extra]) == 0
        with open(os.path.join(out, "log.jsonl")) as f:
            records = [json.loads(line) for line in f]
        weights, info = checkpoint_weights(os.path.join(out, "ckpt.safetensors"))
        return [r["loss"] for r in records if r["kind"] == "train"], [r["val_loss"] for r in records if r["kind"] == "eval"], weights

    straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
    losses_a, evals_a, weights_a = run(straight)
    run(split, "--stop_iter=3")
    losses_b, evals_b, weights_b = run(split, "--resume")
    assert len(losses_a) == len(losses_b) == 8
    same = losses_a == losses_b and evals_a == evals_b and all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    if not same:  # tell a resume bug from a device that does not repeat itself
        losses_c, evals_c, weights_c = run(str(tmp_path / "again"))
        repeats = losses_c == losses_a and all(torch.equal(weights_c[k], weights_a[k]) for k in weights_a)
        diff = max((weights_a[k].float() - weights_b[k].float()).abs().max().item() for k in weights_a)
        pytest.fail(f"the resumed run differs from the straight one (losses {losses_a} vs {losses_b}, max |dw| {diff:.2e}); "
                    + ("a second straight run repeats the first bit for bit, so resume lost some state"
                       if repeats else "a second straight run differs too: training on this device is not deterministic"))
