"""
The machine a run is on, and the precision it computes in there.

    from machine import choose_dtype, describe, record
    dtype, why = choose_dtype("auto", "cpu")   # ("float32", "auto: bf16 is emulated on this CPU, 41x slower ...")
    print(describe("cpu", dtype, why))         # cpu AMD EPYC (AVX2), 2 threads; float32 (auto: ...)
    record("cpu", dtype)                       # the same as a dict, for config.json and results JSON

Precision. dtype="auto" picks the fastest precision the device computes natively:
  cuda  bf16 autocast where the GPU has it (Ampere and later), else fp16 with a gradient scaler;
  mps   bf16 on macOS 14 or later (Apple's GPUs compute it there), else fp32;
  cpu   bf16 autocast only where this CPU computes bf16 matmuls natively (AVX-512 BF16, AMX, ARM's
        BF16 extension), else fp32. Decided by a measured probe, not by CPU flags: a few ms of a
        256 x 256 matmul in both precisions (bf16_speedup). Flags differ between x86 and ARM and
        between what the CPU has and what torch's kernels use; the probe asks the kernels that will
        run. On an AVX2-only CPU bf16 is emulated and runs ~40-80x slower than fp32.
A precision the user forces that is emulated here (bf16 on an AVX2 CPU) gets a one-line notice
with the measured slowdown; the run goes on.

Threads. Two jobs at once on a CPU with more threads than free cores collapse: OpenMP threads spin
while their partner is descheduled. thread_warning says so in one line; run each job with
OMP_NUM_THREADS=1 (or cores / jobs).
"""

import functools
import os
import platform
import time

import torch

DTYPES = ("float32", "bfloat16", "float16")


def choose_dtype(dtype: str, device_type: str) -> tuple:
    """(the dtype name to compute in, why). dtype is "auto" or one of DTYPES."""
    if device_type == "cuda":
        if dtype == "auto":
            bf16 = torch.cuda.is_bf16_supported()
            return ("bfloat16", "auto: this GPU computes bf16") if bf16 else ("float16", "auto: no bf16 on this GPU")
        return dtype, "asked for"
    if device_type == "mps":
        if dtype == "auto":
            bf16 = torch.backends.mps.is_macos_or_newer(14, 0)
            return ("bfloat16", "auto: MPS computes bf16 on macOS 14+") if bf16 else ("float32", "auto: MPS before macOS 14")
        return dtype, "asked for"
    speedup = bf16_speedup() if dtype in ("auto", "bfloat16") else None
    if dtype == "auto":
        if speedup >= NATIVE_SPEEDUP:
            return "bfloat16", f"auto: bf16 is native on this CPU, {speedup:.1f}x fp32 in a matmul"
        return "float32", f"auto: bf16 is emulated on this CPU, {1 / speedup:.0f}x slower than fp32 in a matmul"
    if dtype == "bfloat16" and speedup < EMULATED_SPEEDUP:
        return dtype, (f"asked for; notice: bf16 is emulated on this CPU ({capability('cpu')}), "
                       f"{1 / speedup:.0f}x slower than fp32 in a matmul; dtype=auto picks float32")
    return dtype, "asked for"


NATIVE_SPEEDUP = 1.2    # bf16 must beat fp32 by this much to be chosen (AVX-512 BF16 / AMX: 2-10x)
EMULATED_SPEEDUP = 0.5  # below this, forcing bf16 gets a notice (AVX2: ~0.02)


@functools.lru_cache(maxsize=None)
def bf16_speedup(n: int = 256, rounds: int = 5) -> float:
    """fp32 time / bf16 time of an n x n matmul on this CPU: the best of `rounds` runs each, the two
    precisions interleaved so that a busy moment of a shared machine hits both (~10 ms where bf16 is
    native, ~0.4 s where it is emulated). Cached: measured once a process."""
    own = torch.Generator().manual_seed(0)  # not the global generator: a run's seed alone decides its weights
    operands = {dtype: (torch.randn(n, n, generator=own).to(dtype), torch.randn(n, n, generator=own).to(dtype))
                for dtype in (torch.float32, torch.bfloat16)}
    best = {dtype: float("inf") for dtype in operands}
    for a, b in operands.values():
        a @ b  # the first call allocates and picks a kernel
    for _ in range(rounds):
        for dtype, (a, b) in operands.items():
            t = time.perf_counter()
            a @ b
            best[dtype] = min(best[dtype], time.perf_counter() - t)
    return best[torch.float32] / best[torch.bfloat16]


def capability(device_type: str) -> str:
    """The instruction set torch's CPU kernels use ("AVX512", "AVX2", "DEFAULT" ...), or the GPU's name."""
    if device_type == "cuda":
        return torch.cuda.get_device_name()
    if device_type == "mps":
        return "Apple GPU"
    return torch.backends.cpu.get_cpu_capability()


def cpu_model() -> str:
    """The CPU's marketing name, from /proc/cpuinfo on Linux, else what the platform says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    """The cores this process may run on (a container or taskset may allow fewer than the machine has)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def record(device_type: str, dtype: str, why: str = "") -> dict:
    """The machine as config.json and every results JSON record it: numbers from different machines
    are comparable only through this."""
    out = {"device": device_type, "cpu": cpu_model(), "capability": capability("cpu"), "threads": torch.get_num_threads(),
           "cores": cores(), "torch": torch.__version__, "dtype": dtype}
    if device_type in ("cuda", "mps"):
        out["gpu"] = capability(device_type)
    if why:
        out["dtype_why"] = why
    return out


def describe(device_type: str, dtype: str, why: str) -> str:
    """One line: `cpu AMD EPYC (AVX2), 2 threads; float32 (auto: bf16 is emulated ...)`."""
    if device_type == "cpu":
        where = f"cpu {cpu_model()} ({capability('cpu')}), {torch.get_num_threads()} threads"
    else:
        where = f"{device_type} {capability(device_type)}"
    return f"{where}; {dtype} ({why})"


def busy_cores() -> float:
    """Cores other processes keep busy: the 1-minute load average, but no more than the processes
    running right now (/proc/loadavg's run queue, less this one), so that work which has just ended
    does not count."""
    if not hasattr(os, "getloadavg"):
        return 0.0
    busy = os.getloadavg()[0]
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0]) - 1
        busy = min(busy, running)
    except (OSError, ValueError, IndexError):
        pass
    return max(0.0, busy)


def thread_warning():
    """One line when this process's threads exceed the cores the other processes leave free, else None."""
    busy = busy_cores()
    free = max(1, cores() - round(busy))
    threads = torch.get_num_threads()
    if threads <= free:
        return None
    return (f"warning: {threads} threads but about {free} of {cores()} cores are free (load {busy:.1f}); threads "
            f"spin while others run: set OMP_NUM_THREADS={free} (two jobs at once: one thread each)")
