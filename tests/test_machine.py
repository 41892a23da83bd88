"""machine.py: dtype auto picks the precision this machine computes natively, from a measured probe."""

import pytest
import torch

import machine


@pytest.mark.parametrize("speedup, expected", [(0.02, "float32"), (1.0, "float32"), (2.5, "bfloat16")])
def test_auto_picks_bf16_on_a_cpu_only_where_the_probe_finds_it_faster(monkeypatch, speedup, expected):
    monkeypatch.setattr(machine, "bf16_speedup", lambda: speedup)
    dtype, why = machine.choose_dtype("auto", "cpu")
    assert dtype == expected and why.startswith("auto: bf16 is " + ("native" if expected == "bfloat16" else "emulated"))


def test_forcing_an_emulated_precision_goes_on_with_a_notice_naming_the_slowdown(monkeypatch):
    monkeypatch.setattr(machine, "bf16_speedup", lambda: 1 / 60)
    dtype, why = machine.choose_dtype("bfloat16", "cpu")
    assert dtype == "bfloat16" and "notice: bf16 is emulated" in why and "60x slower" in why
    assert machine.choose_dtype("float32", "cpu") == ("float32", "asked for")


def test_the_probe_agrees_with_the_cpus_instruction_set():
    """The real probe on this machine: a CPU whose kernels have no AVX-512 (capability AVX2 or DEFAULT)
    has no bf16 instructions, so bf16 is emulated and must never be chosen; with AMX or AVX-512 BF16
    it may be either way (AVX-512 without BF16 converts), so only the first case is a hard fact."""
    capability = torch.backends.cpu.get_cpu_capability()
    if capability not in ("AVX2", "DEFAULT"):
        pytest.skip(f"{capability}: bf16 may be native here")
    machine.bf16_speedup.cache_clear()
    assert machine.bf16_speedup() < machine.NATIVE_SPEEDUP
    assert machine.choose_dtype("auto", "cpu")[0] == "float32"


def test_the_probe_leaves_the_global_random_generator_alone():
    """Else a run's weights would depend on whether this process had probed before (a second run in
    one process, as the tests do, drew other initial weights from the same seed)."""
    machine.bf16_speedup.cache_clear()
    torch.manual_seed(5)
    machine.bf16_speedup()
    drawn = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(drawn, torch.rand(3))


def test_the_record_names_the_machine_and_the_first_line_names_device_capability_threads_and_why():
    record = machine.record("cpu", "float32", "auto: ...")
    assert {"device", "cpu", "capability", "threads", "cores", "torch", "dtype"} <= set(record)
    assert record["capability"] == torch.backends.cpu.get_cpu_capability()
    line = machine.describe("cpu", "float32", "auto: why")
    assert line.startswith("cpu ") and f"({record['capability']})" in line and f"{torch.get_num_threads()} threads" in line
    assert line.endswith("float32 (auto: why)")
