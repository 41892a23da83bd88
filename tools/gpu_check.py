"""
The prepared GPU check: one command that proves the CUDA fast path and measures it in the few
minutes a lent GPU is there, with every figure in one JSON file. An operations script, not a
benchmark (bench/ holds those): it checks a machine, and times the project's own runs there.

    python tools/gpu_check.py --out /tmp/gpucheck --device cpu --tiny      # dry run here, tiny sizes
    python tools/gpu_check.py --prepare data/gpu_check                     # here, before a GPU call
    python3 tools/gpu_check.py --out $OUT --work /tmp/gc --data-root data/gpu_check/data   # on the GPU
    python3 tools/gpu_check.py ... --parts train,ddp                       # a rerun of some parts

Parts, in this order; each runs in a subprocess with a timeout taken from what is left of
--budget-s, a part that fails is recorded and the next one runs:

  tests       pytest -m cuda: tests/test_cuda.py (bf16 and fp16 + GradScaler steps, compiled against
              eager, flash attention against the explicit one, exact resume) against fp32 references
  throughput  Model A training steps (batch 16 x 512, bf16 autocast, fused AdamW): ours compiled
              against Transformers' LlamaForCausalLM compiled and eager, and ours eager; tokens/s and
              MFU against the chip's bf16 peak (bench/train_throughput.py's models and step)
  train       Model A end to end, the wall-clock of each step: tokenize_data.py, train.py with the
              card's recipe (config/model_a_card.py; config/model_a.py where the card's data cannot
              be built) and --compile=True (eager again if that fails), eval_blimp.py on full BLiMP
  ddp         torchrun --standalone --nproc_per_node=1 train.py (NCCL on a GPU) against the plain
              run: the same weights after the same steps
  taam        results/taam/run_taam_study.sh's seven variants at 20x the CPU study's token exposures (20x
              the batch, so the same 400 steps and 20 mixer updates, and 20x the unique-data budget,
              which the corpora cap at all they hold), one seed, all at once, each scored on the
              fast BLiMP, BLiMP-NL and ZhoBLiMP; only if time is left

Written to --out: gpu_check.json (rewritten as each part ends, so a timeout keeps the finished
parts; a part's own figures are saved as it measures them) and <part>.log. Data, runs and
checkpoints go to --work (default <out>/work), which need not come back.

The lent GPU machine (one H200, 16 cores, as seen in 2026-11) has python3 3.12 with torch 2.11
(CUDA 13), transformers, tokenizers, safetensors, numpy, sentencepiece, tiktoken, tqdm and pytest,
and no network: nothing can be installed there, and torch 2.13's CUDA build (over 1 GB) cannot be
carried (64 MiB a call). So the check runs on what is there, writes every version into the JSON
and says which differ from requirements.txt. What the machine lacks is ../shared/data (only the
repository is sent) and lang2vec (the TAAM prior's URIEL table): --prepare copies both into an
ignored folder to carry (about 11 MB). With --tiny the check writes its own synthetic corpus and
pair files, so a dry run needs neither.
"""

import argparse
import gzip
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARTS = ("tests", "throughput", "train", "ddp", "taam")
# seconds a part is guaranteed (it starts only with this much left, and the parts before it leave
# it this much), on a GPU and in a tiny dry run; a part may use whatever the others leave over
RESERVE = {"tests": 60, "throughput": 75, "train": 75, "ddp": 45, "taam": 40}
RESERVE_TINY = {part: 15 for part in PARTS}

# the study's variants and the config file that makes each (results/taam/run_taam_study.sh)
TAAM_VARIANTS = {"uniform": "config/taam_uniform.py", "temperature": "config/taam_temperature.py",
                 "prior": "config/taam_prior.py", "taam_v1": "config/taam_v1.py", "taam_v2": "config/taam.py",
                 "exp3_v2": "config/taam_exp3.py", "hedge_v2": "config/taam_hedge.py"}
TAAM_SCALE = 20   # token exposures over the CPU study's (config/taam_cpu.py: batch 8, budget 1.5M)

# tiny sizes for a dry run: two layers 32 wide, a few steps
TINY_MODEL = ["--dim=32", "--n_layers=2", "--n_heads=4", "--hidden_dim=64", "--eval_windows=4", "--warmup_iters=2",
              "--milestone_unit=none"]


# ----------------------------------------------------------------------------- the orchestrator

def main(argv=None):
    a = parse_args(argv)
    if a.prepare:
        return prepare(a.prepare, a.data_root)
    if a.run_part:
        return run_part(a)
    asked = [p.strip() for p in a.parts.split(",") if p.strip()]
    unknown = [p for p in asked if p not in PARTS]
    if unknown:
        raise SystemExit(f"--parts: unknown part {unknown[0]!r} (parts: {', '.join(PARTS)})")
    parts = [p for p in PARTS if p in asked]   # always in the order above: the speed figures before the extras
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.work, exist_ok=True)
    t0 = time.time()
    deadline = t0 + a.budget_s
    result = {"command": " ".join([os.path.basename(sys.executable)] + sys.argv), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
              "device": a.device, "tiny": a.tiny, "budget_s": a.budget_s, "data_root": a.data_root, "parts": {}}
    out_json = os.path.join(a.out, "gpu_check.json")
    result["env"] = environment(a.device)
    save_json(out_json, result)
    print_env(result["env"])
    if a.device == "cuda" and not result["env"].get("cuda_available"):
        raise SystemExit("gpu_check.py: --device cuda but torch sees no CUDA device (see env in gpu_check.json)")
    if a.tiny:
        a.data_root = synthetic_data_root(os.path.join(a.work, "synthetic_data"))
        result["data_root"] = a.data_root

    reserve = RESERVE_TINY if a.tiny else RESERVE
    for i, part in enumerate(parts):
        left = deadline - time.time()
        later = sum(reserve[p] for p in parts[i + 1:])
        if left < reserve[part]:
            result["parts"][part] = {"status": "skipped", "reason": f"{left:.0f} s of the budget left, the part needs {reserve[part]}"}
        else:
            timeout = max(reserve[part], left - later)
            result["parts"][part] = run_part_process(a, part, timeout)
        result["targets"] = targets(result["parts"], a)
        result["total_wall_s"] = round(time.time() - t0, 1)
        save_json(out_json, result)
        print(f"[gpu_check] {part}: {result['parts'][part]['status']} "
              f"({result['parts'][part].get('wall_s', 0):.0f} s, {time.time() - t0:.0f} s of {a.budget_s:.0f})", flush=True)
    print_summary(result, out_json)
    return 0


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="folder for gpu_check.json and the parts' logs")
    p.add_argument("--work", help="folder for data, runs and checkpoints (default <out>/work)")
    p.add_argument("--device", choices=["cuda", "cpu"], default=None, help="default: cuda if torch sees one, else cpu")
    p.add_argument("--tiny", action="store_true", help="tiny sizes and a synthetic data root: a dry run")
    p.add_argument("--budget-s", type=float, default=480, help="wall-clock for all the parts together (default 480)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, any of {','.join(PARTS)} (run in that order)")
    p.add_argument("--data-root", default=os.path.join(ROOT, "..", "shared", "data"),
                   help="corpora/, byte_premium/, blimp/, minimal_pairs/ (default ../shared/data)")
    p.add_argument("--train-config", default="auto",
                   help="comma-separated config files of the train part; auto: the card's recipe "
                        "(config/model_a_card.py), else config/model_a.py")
    p.add_argument("--prepare", metavar="DIR", help="copy what the GPU machine lacks into DIR (to carry), then stop")
    p.add_argument("--run-part", help=argparse.SUPPRESS)       # internal: one part, in its own process
    p.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.prepare or a.run_part:
        return a
    if not a.out:
        raise SystemExit("gpu_check.py: --out DIR is required (or --prepare DIR)")
    if a.budget_s <= 0:
        raise SystemExit(f"gpu_check.py: --budget-s {a.budget_s}: must be positive")
    if a.device is None:
        a.device = "cuda" if torch_sees_cuda() else "cpu"
    a.out = os.path.abspath(a.out)
    a.work = os.path.abspath(a.work or os.path.join(a.out, "work"))
    a.data_root = os.path.abspath(a.data_root)
    if not a.tiny and not os.path.isdir(os.path.join(a.data_root, "corpora")):
        raise SystemExit(f"{a.data_root}: no corpora/ folder; give --data-root (on a GPU machine: the folder "
                         f"--prepare wrote), or --tiny for synthetic data")
    return a


def torch_sees_cuda() -> bool:
    """Asked in a subprocess: the orchestrator itself never imports torch, so that a broken torch
    still leaves a JSON that says so."""
    res = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                         capture_output=True, text=True)
    return res.stdout.strip() == "True"


def run_part_process(a, part, timeout):
    """One part in its own process (and process group, so that its children go with it at a timeout)."""
    log_path = os.path.join(a.out, f"{part}.log")
    figures_path = os.path.join(a.work, "parts", f"{part}.json")
    if os.path.exists(figures_path):
        os.remove(figures_path)
    cmd = [sys.executable, os.path.abspath(__file__), "--run-part", part, "--out", a.out, "--work", a.work,
           "--device", a.device, "--data-root", a.data_root, "--train-config", a.train_config,
           "--deadline", str(time.time() + timeout - 5)] + (["--tiny"] if a.tiny else [])
    with open(log_path, "w") as log:
        rc, wall, timed_out = run_command(cmd, log, timeout)
    record = {"status": "timeout" if timed_out else "error" if rc != 0 else "ok", "wall_s": round(wall, 1),
              "timeout_s": round(timeout), "log": os.path.basename(log_path)}
    figures = load_json(figures_path)
    if figures is not None:
        record["figures"] = figures
        checks = figures.get("checks", {})
        if record["status"] == "ok" and not all(checks.values()):
            record["status"] = "failed"
            record["failed_checks"] = [k for k, v in checks.items() if not v]
    if record["status"] in ("error", "timeout", "failed"):
        record["log_tail"] = tail(log_path, 15)
    return record


def run_command(cmd, log, timeout, env=None):
    """(return code, seconds, timed out). The command gets its own process group; at the timeout
    the whole group is stopped (SIGTERM, then SIGKILL), which torchrun's workers are part of."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        rc = proc.wait(timeout=max(1.0, timeout))
        return rc, time.time() - t0, False
    except subprocess.TimeoutExpired:
        for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        return -9, time.time() - t0, True


def targets(parts, a) -> dict:
    """The issue's speed targets, where the parts measured what they need (None: not measured)."""
    tp = parts.get("throughput", {}).get("figures", {}).get("contenders", {})
    ours, hf = tp.get("ours_compiled", {}), tp.get("hf_compiled", {})
    blimp = parts.get("train", {}).get("figures", {}).get("blimp", {})
    if a.device != "cuda" or a.tiny:
        return {}
    return {
        "ours_compiled_tok_per_s_at_least_1M": (ours["tok_per_s"] >= 1e6) if "tok_per_s" in ours else None,
        "ours_compiled_tok_per_s_at_least_2M": (ours["tok_per_s"] >= 2e6) if "tok_per_s" in ours else None,
        "ours_compiled_at_least_as_fast_as_hf_compiled":
            (ours["tok_per_s"] >= hf["tok_per_s"]) if "tok_per_s" in ours and "tok_per_s" in hf else None,
        "full_blimp_scoring_under_30_s": (blimp["scoring_s"] < 30) if blimp.get("scoring_s") is not None else None,
    }


def print_summary(result, out_json):
    print("\n" + "=" * 78)
    print(f"gpu_check: {result['device']}{' (tiny)' if result['tiny'] else ''}, {result['total_wall_s']:.0f} s; "
          f"{result['env'].get('device_name', '')} torch {result['env'].get('torch')}")
    for part, r in result["parts"].items():
        f = r.get("figures", {})
        line = f"{part:<11} {r['status']:<8} {r.get('wall_s', 0):6.0f} s  "
        if part == "tests":
            line += f"{f.get('passed', 0)} passed, {f.get('failed', 0)} failed, {f.get('skipped', 0)} skipped"
        elif part == "throughput":
            c = f.get("contenders", {})
            line += "; ".join(f"{k} {v['tok_per_s']:,} tok/s" + (f" (MFU {100 * v['mfu']:.1f}%)" if v.get("mfu") else "")
                              for k, v in c.items() if "tok_per_s" in v)
        elif part == "train":
            t, b = f.get("training", {}), f.get("blimp", {})
            if t:
                line += f"train {t.get('wall_s')} s, {t.get('tok_per_s_median')} tok/s, val loss {t.get('final_val_loss')}"
            if b.get("macro") is not None:
                line += f"; BLiMP {100 * b['macro']:.1f} in {b['scoring_s']} s"
        elif part == "ddp":
            line += f"max |dw| {f.get('max_abs_weight_diff')}, bitwise {f.get('bitwise_equal')}, {f.get('nccl', '')}"
        elif part == "taam":
            v = f.get("variants", {})
            line += f"{sum(1 for x in v.values() if x.get('status') == 'ok')}/{len(v)} variants done"
        print(line)
        if r["status"] in ("error", "timeout", "failed"):
            print("    " + "\n    ".join(r.get("log_tail", "").splitlines()[-4:]))
    print("targets:", json.dumps(result.get("targets", {})))
    print(f"wrote {out_json}")


# ----------------------------------------------------------------------------- the environment

def environment(device) -> dict:
    """Versions, the device and what is missing, read in a subprocess (torch may be broken)."""
    code = r"""
import json, os, platform, sys, importlib.metadata as md, importlib.util
env = {"python": sys.version.split()[0], "executable": sys.executable, "cpus": os.cpu_count(), "platform": platform.platform()}
pins, missing = {}, []
for line in open("requirements.txt"):
    line = line.split("#")[0].strip()
    if "==" in line:
        name, pin = line.split("==")
        try:
            have = md.version(name)
        except md.PackageNotFoundError:
            have = None
            missing.append(name)
        pins[name] = {"pinned": pin, "installed": have}
env["packages"] = pins
env["missing"] = missing
env["lang2vec_found"] = importlib.util.find_spec("lang2vec") is not None
if env["lang2vec_found"] and "lang2vec" in missing:  # the URIEL table --prepare carries, without metadata
    missing.remove("lang2vec")
    pins["lang2vec"]["installed"] = "its URIEL table, on PYTHONPATH"
import torch
env["torch"] = torch.__version__
env["cuda_available"] = torch.cuda.is_available()
env["triton"] = md.version("triton") if importlib.util.find_spec("triton") else None
if torch.cuda.is_available():
    from model import peak_flops_for
    p = torch.cuda.get_device_properties(0)
    env.update(device_name=p.name, capability=f"{p.major}.{p.minor}", multiprocessors=p.multi_processor_count,
               memory_gib=round(p.total_memory / 2**30, 1), cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
               nccl=".".join(map(str, torch.cuda.nccl.version())), bf16=torch.cuda.is_bf16_supported(),
               peak_bf16_flops=peak_flops_for(0), devices=torch.cuda.device_count())
print(json.dumps(env))
"""
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    try:
        env = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        env = {"error": (res.stderr or res.stdout).strip()[-2000:]}
    if device == "cuda":  # read only: the card's settings are left as they are
        try:
            smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit,"
                                  "temperature.gpu,memory.used", "--format=csv,noheader"], capture_output=True, text=True)
            env["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
        except OSError as e:
            env["nvidia_smi"] = f"not run: {e}"
    return env


def print_env(env):
    if "error" in env:
        print(f"[gpu_check] cannot import torch with {sys.executable}:\n{env['error']}", flush=True)
        return
    print(f"[gpu_check] python {env['python']} ({env['executable']}), torch {env['torch']}, "
          f"CUDA {env.get('cuda')}, {env.get('device_name', 'no GPU')}, peak bf16 {env.get('peak_bf16_flops')}", flush=True)
    off = [f"{k} {v['installed']} (pinned {v['pinned']})" for k, v in env["packages"].items()
           if v["installed"] and v["installed"].split("+")[0] != v["pinned"]]
    if off:
        print("[gpu_check] not the pinned versions: " + ", ".join(off), flush=True)
    if env["missing"]:
        print(f"[gpu_check] MISSING: {', '.join(env['missing'])}"
              + ("; lang2vec: the TAAM variants with the typological prior need its URIEL table: run "
                 "'python tools/gpu_check.py --prepare data/gpu_check' where pip works, carry data/gpu_check and "
                 "set PYTHONPATH=data/gpu_check/site" if not env["lang2vec_found"] else ""), flush=True)


# ----------------------------------------------------------------------------- data

def prepare(folder, data_root):
    """Copy into folder what the GPU machine lacks: folder/data, a data root with the corpora (ours
    and the Model A card's), the byte-premium table and the pair files the parts score (BLiMP, BLiMP-NL, ZhoBLiMP), and
    folder/site/lang2vec, the one file of lang2vec that mixer.typological_prior reads (its URIEL
    feature table; typology.py finds the package with importlib and never imports its code).
    Put folder under data/ (ignored by git) and carry it to the GPU machine with the repository."""
    src = os.path.abspath(data_root)
    if not os.path.isdir(os.path.join(src, "corpora")):
        raise SystemExit(f"{src}: no corpora/ folder; give --data-root (default ../shared/data)")
    import importlib.util
    spec = importlib.util.find_spec("lang2vec")
    if spec is None:
        raise SystemExit("lang2vec is not installed here (pip install -r requirements.txt): --prepare copies its URIEL table")
    data = os.path.join(folder, "data")
    if os.path.isdir(data):
        shutil.rmtree(data)
    for rel in ("corpora", "model_a_corpus", "byte_premium", "blimp"):
        shutil.copytree(os.path.join(src, rel), os.path.join(data, rel))
    for rel in ("minimal_pairs/nl/blimp_nl.pairs.jsonl.gz", "minimal_pairs/zh/zhoblimp.pairs.jsonl.gz"):
        os.makedirs(os.path.dirname(os.path.join(data, rel)), exist_ok=True)
        shutil.copy(os.path.join(src, rel), os.path.join(data, rel))
    package = list(spec.submodule_search_locations)[0]
    site = os.path.join(folder, "site", "lang2vec")
    os.makedirs(os.path.join(site, "data"), exist_ok=True)
    shutil.copy(os.path.join(package, "__init__.py"), site)
    shutil.copy(os.path.join(package, "data", "feature_predictions.npz"), os.path.join(site, "data"))
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)
    print(f"wrote {folder} ({size / 2**20:.1f} MiB): carry it, and on the GPU machine run with "
          f"PYTHONPATH={os.path.join(folder, 'site')} and --data-root {data}")
    return 0


WORDS = {"en": "the a cat dog sat on mat and ran to big small red house tree bird sang is are was".split(),
         "nl": "de het een kat hond zat op mat en liep naar groot klein rood huis boom vogel zong".split(),
         "zh": list("猫狗在家树鸟唱大小红的是了我你他")}


def synthetic_data_root(root):
    """A data root in ../shared/data's layout, made up: two small sources per language (the English
    ones also as the Model A card's corpus, with an evaluation file), a byte-premium table for the three languages, and a few
    pairs for each suite the parts score."""
    if os.path.isfile(os.path.join(root, "done")):
        return root
    rng = random.Random(0)
    for lang, words in WORDS.items():
        os.makedirs(os.path.join(root, "corpora", lang), exist_ok=True)
        joiner = "" if lang == "zh" else " "
        for source in ("one", "two"):
            lines = [joiner.join(rng.choice(words) for _ in range(rng.randint(4, 14))) + "." for _ in range(500)]
            with open(os.path.join(root, "corpora", lang, f"{source}_{lang}.txt"), "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
    shutil.copytree(os.path.join(root, "corpora", "en"), os.path.join(root, "model_a_corpus", "en"), dirs_exist_ok=True)
    with gzip.open(os.path.join(root, "model_a_corpus", "card_eval_A.txt.gz"), "wt", encoding="utf-8") as f:
        f.write("\n".join(" ".join(rng.choice(WORDS["en"]) for _ in range(8)) for _ in range(50)) + "\n")
    os.makedirs(os.path.join(root, "byte_premium"), exist_ok=True)
    with open(os.path.join(root, "byte_premium", "byte_coefs_20240233.tsv"), "w") as f:
        f.write("lang_script\tbyte_coef\neng_latn\t1.0\nnld_latn\t1.05\nzho_hans\t0.94\n")

    def pairs(path, lang, uids):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        words, joiner = WORDS[lang], ("" if lang == "zh" else " ")
        with gzip.open(path, "wt", encoding="utf-8") as f:
            for uid in uids:
                for _ in range(10):
                    good = [rng.choice(words) for _ in range(rng.randint(3, 8))]
                    bad = good[1:] + good[:1]
                    f.write(json.dumps({"sentence_good": joiner.join(good) + ".", "sentence_bad": joiner.join(bad) + ".",
                                        "UID": uid, "field": "syntax"}, ensure_ascii=False) + "\n")

    for uid in ("word_order", "rotation"):
        pairs(os.path.join(root, "blimp", f"{uid}.jsonl.gz"), "en", [uid])
    pairs(os.path.join(root, "minimal_pairs", "nl", "blimp_nl.pairs.jsonl.gz"), "nl", ["nl_a", "nl_b"])
    pairs(os.path.join(root, "minimal_pairs", "zh", "zhoblimp.pairs.jsonl.gz"), "zh", ["zh_a", "zh_b"])
    open(os.path.join(root, "done"), "w").close()
    return root


# ----------------------------------------------------------------------------- one part, in its own process

class Figures(dict):
    """A part's figures, written to its file at every save(), so that a part stopped at its timeout
    keeps what it had measured."""

    def __init__(self, path):
        super().__init__(checks={})
        self.path = path

    def save(self):
        save_json(self.path, self)


def run_part(a):
    fig = Figures(os.path.join(a.work, "parts", f"{a.run_part}.json"))
    fig.save()
    {"tests": part_tests, "throughput": part_throughput, "train": part_train, "ddp": part_ddp,
     "taam": part_taam}[a.run_part](a, fig)
    fig.save()
    return 0


def sh(a, cmd, name, env=None, keep_s=0):
    """Run a project command as a user types it, its output in <work>/logs/<name>.log and its tail
    in this part's log; it is stopped keep_s seconds before the part's deadline. Returns (return
    code, seconds, output); the code is -9 when it was stopped."""
    os.makedirs(os.path.join(a.work, "logs"), exist_ok=True)
    path = os.path.join(a.work, "logs", f"{name}.log")
    left = a.deadline - time.time() - keep_s
    print(f"$ {' '.join(cmd)}", flush=True)
    with open(path, "w") as log:
        rc, seconds, timed_out = run_command(cmd, log, left, env)
    text = read_text(path)
    print(text if len(text) < 6000 else "...\n" + text[-6000:], flush=True)
    if timed_out:
        print(f"[{name}: stopped at its timeout, {left:.0f} s]", flush=True)
    print(f"[{name}: exit {rc}, {seconds:.1f} s]", flush=True)
    return rc, seconds, text


def read_text(path):
    """A log as text, keeping of each line only what a progress bar's last redraw (after \\r) shows."""
    with open(path, errors="replace") as f:
        return "\n".join(line.rsplit("\r", 1)[-1] for line in f.read().splitlines())


def part_tests(a, fig):
    """The suite's CUDA-marked tests; on the CPU, CUDA_TESTS_ON_CPU=1 runs them there (a dry run)."""
    xml = os.path.join(a.work, "tests.xml")
    env = {"CUDA_TESTS_ON_CPU": "1"} if a.device == "cpu" else {}
    rc, seconds, _ = sh(a, [sys.executable, "-m", "pytest", "-m", "cuda", "--continue-on-collection-errors", "-p",
                            "no:cacheprovider", "-p", "no:logging", "-rfEs", "-q", f"--junitxml={xml}"], "pytest", env=env)
    fig.update(wall_s=round(seconds, 1), exit_code=rc, tests={}, passed=0, failed=0, skipped=0, collection_errors=[])
    if os.path.isfile(xml):
        for case in ET.parse(xml).getroot().iter("testcase"):
            name = case.get("name")
            found = [c for c in case if c.tag in ("failure", "error", "skipped")]
            outcome = found[0].tag if found else "passed"
            detail = found[0].get("message", "") if found else ""
            if not case.get("classname") and outcome == "error":   # a module that did not import
                last = [line for line in (found[0].text or "").splitlines() if line.strip()][-1:]
                fig["collection_errors"].append(f"{name}: {' '.join(last)[:300]}")
                continue
            fig["tests"][name] = {"outcome": outcome, "seconds": round(float(case.get("time", 0)), 2),
                                  **({"message": detail[:500]} if detail else {})}
            key = {"passed": "passed", "skipped": "skipped"}.get(outcome, "failed")
            fig[key] += 1
    fig["checks"] = {"cuda_tests_pass": fig["passed"] > 0 and fig["failed"] == 0,
                     "no_cuda_test_skipped": fig["skipped"] == 0,
                     "every_test_module_collects": not fig["collection_errors"]}


def part_throughput(a, fig):
    """Training steps of Model A, ours and Transformers', compiled and eager, trials interleaved."""
    import torch
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    sys.path.insert(0, ROOT)
    import train_throughput as tt
    from model import ModelConfig, Transformer, peak_flops_for
    device = torch.device(a.device)
    if a.tiny:
        shape = dict(dim=64, n_layers=2, n_heads=4, hidden_dim=128, vocab_size=512, max_seq_len=64)
        batch, seq, warmup, steps, trials = 2, 64, 2, 2, 2
    else:
        shape, batch, seq, warmup, steps, trials = tt.MODEL_A, 16, 512, 3, 30, 5
    # a dry run checks the tracing, not Inductor's C++ code generation, which costs minutes on 2 cores
    backend = "aot_eager" if a.tiny and device.type == "cpu" else "inductor"
    if device.type == "cuda":  # as train.py
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    cfg = ModelConfig(**shape)
    peak = peak_flops_for(device) if device.type == "cuda" else None
    fig.update(model=shape, batch=batch, seq=seq, dtype="bf16", warmup_steps=warmup, steps_per_trial=steps,
               trials=trials, compile_backend=backend, peak_bf16_flops=peak, torch=torch.__version__, contenders={})
    import transformers
    fig["transformers"] = transformers.__version__
    fig["attention_kernel"] = attention_kernel(torch, cfg, batch, seq, device)
    fig.save()

    def pair(compiled):
        torch.manual_seed(0)
        ours, theirs = Transformer(cfg).to(device).train(), tt.hf_llama(cfg).to(device).train()
        opt_ours, opt_theirs = tt.optimizers(ours, theirs, device.type)
        wrap = (lambda m: torch.compile(m, backend=backend)) if compiled else (lambda m: m)
        suffix = "compiled" if compiled else "eager"
        return {f"ours_{suffix}": tt.make_step(wrap(ours), tt.ours_loss, opt_ours, device.type, "bf16"),
                f"hf_{suffix}": tt.make_step(wrap(theirs), tt.hf_loss, opt_theirs, device.type, "bf16")}

    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, cfg.vocab_size, (batch, seq + 1), generator=g)
    x, y = tokens[:, :-1].contiguous().to(device), tokens[:, 1:].contiguous().to(device)
    flops_per_token = Transformer(cfg).flops_per_token(seq)  # attention counted at the benchmarked length
    steps_of = {**pair(True), **pair(False)}
    ready = {}
    for name in ("ours_compiled", "hf_compiled", "ours_eager", "hf_eager"):
        entry = fig["contenders"].setdefault(name, {})
        try:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            first, _ = tt.time_steps(steps_of[name], x, y, 1, device)      # compilation happens here
            rest, _ = tt.time_steps(steps_of[name], x, y, warmup - 1, device)
            entry.update(first_step_s=round(first, 2), warmup_s=round(first + rest, 2))
            if device.type == "cuda":
                entry["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            ready[name] = steps_of[name]
        except Exception as e:  # one contender failing (say, Transformers under compile) leaves the others
            entry["error"] = f"{type(e).__name__}: {str(e)[:400]}"
            print(f"{name}: {entry['error']}", flush=True)
        fig.save()

    rates = {name: [] for name in ready}
    for trial in range(trials):
        names = list(ready)
        names = names[trial % len(names):] + names[:trial % len(names)]   # rotate who goes first
        for name in names:
            wall, _ = tt.time_steps(ready[name], x, y, steps, device)
            rates[name].append(batch * seq * steps / wall)
        if time.time() > a.deadline - 10:
            break
    c = fig["contenders"]
    for name, r in rates.items():
        if r:
            med = statistics.median(r)
            c[name].update(tok_per_s=round(med), per_trial=[round(v) for v in r],
                           mfu=round(flops_per_token * med / peak, 4) if peak else None)
            print(f"{name:<14} {med:>12,.0f} tok/s  trials {[round(v) for v in r]}", flush=True)
    for other in ("hf_compiled", "hf_eager", "ours_eager"):
        if "tok_per_s" in c.get("ours_compiled", {}) and "tok_per_s" in c.get(other, {}):
            fig[f"ours_compiled_over_{other}"] = round(c["ours_compiled"]["tok_per_s"] / c[other]["tok_per_s"], 3)
    fig["checks"] = {"ours_compiled_ran": "tok_per_s" in c.get("ours_compiled", {}),
                     "hf_compiled_ran": "tok_per_s" in c.get("hf_compiled", {})}
    fig.save()
    # what the chip's matmuls reach here, a more honest ceiling than the datasheet's peak
    fig["matmul_bf16_flops"] = matmul_rate(torch, device, 512 if a.tiny else 8192)
    if fig["matmul_bf16_flops"] and "tok_per_s" in c.get("ours_compiled", {}):
        fig["ours_compiled_share_of_matmul_rate"] = round(flops_per_token * c["ours_compiled"]["tok_per_s"]
                                                          / fig["matmul_bf16_flops"], 4)


def matmul_rate(torch, device, n) -> float:
    """FLOP/s of an n x n x n bf16 matrix product on random data: the median of 10 after 3 warm-ups."""
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    times = []
    for i in range(13):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return round(2 * n ** 3 / statistics.median(times))


def attention_kernel(torch, cfg, batch, seq, device) -> str:
    """The kernel F.scaled_dot_product_attention picks for Model A's training shapes in bf16 (flash,
    cuDNN, memory-efficient or math); asked through a private function, so "unknown" if it moved."""
    try:
        from torch.nn.attention import SDPBackend
        q = torch.zeros(batch, cfg.n_heads, seq, cfg.head_dim, dtype=torch.bfloat16, device=device)
        return SDPBackend(torch._fused_sdp_choice(q, q, q, None, 0.0, True)).name
    except Exception as e:
        return f"unknown ({type(e).__name__})"


# tokenize_data.py's arguments for each data folder the parts train on (a tiny run adds a small
# vocabulary and budget); the corpus folders are the data root's
DATASETS = {"model_a": ["--model-a", "--corpus", "{root}/corpora"],
            "model_a_card": ["--model-a-card", "--corpus", "{root}/model_a_corpus",
                             "--val-file", "{root}/model_a_corpus/card_eval_A.txt.gz"],
            "eng_nld_zho": ["--corpus", "{root}/corpora"]}


def tokenized(a, fig, name):
    """A data folder made by tokenize_data.py (reused if there); None if tokenize_data.py failed."""
    out = os.path.join(a.work, "data", name)
    if os.path.isfile(os.path.join(out, "meta.json")):
        return out
    cmd = [sys.executable, "tokenize_data.py", *(x.format(root=a.data_root) for x in DATASETS[name]), "--out", out]
    if a.tiny:
        cmd += ["--vocab-size", "512"] + (["--budget", "20000"] if name.startswith("model_a") else [])
    rc, seconds, _ = sh(a, cmd, f"tokenize_{name}")
    fig[f"tokenize_{name}_s"] = round(seconds, 1)
    fig.save()
    return out if rc == 0 else None


def train_recipe(a):
    """(name, config files) of the train part. auto: the card's own recipe (config/model_a_card.py,
    on the card's 2 MB) once both its config and tokenize_data.py --model-a-card are in this
    checkout, else config/model_a.py on our 2 MB."""
    if a.train_config != "auto":
        return "model_a", [c for c in a.train_config.split(",") if c]
    helps = subprocess.run([sys.executable, "tokenize_data.py", "--help"], cwd=ROOT, capture_output=True, text=True).stdout
    if os.path.isfile(os.path.join(ROOT, "config", "model_a_card.py")) and "--model-a-card" in helps:
        return "model_a_card", ["config/model_a_card.py"]
    return "model_a", ["config/model_a.py"]


def read_log(out_dir, kind):
    path = os.path.join(out_dir, "log.jsonl")
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [r for r in map(json.loads, f) if r.get("kind") == kind]


def part_train(a, fig):
    """Model A end to end: tokenize, train (compiled; eager if that fails), full BLiMP."""
    name, configs = train_recipe(a)
    data = tokenized(a, fig, name)
    if data is None and name == "model_a_card":   # the card's data did not build: train ours rather than nothing
        fig["card_recipe_failed"] = "tokenize_data.py --model-a-card failed (see the log); trained config/model_a.py"
        name, configs = "model_a", ["config/model_a.py"]
        data = tokenized(a, fig, name)
    fig["checks"]["data_tokenized"] = data is not None
    if data is None:
        return
    tiny = TINY_MODEL + ["--max_seq_len=64", "--block_size=64", "--batch_size=4", "--grad_accum=2", "--max_iters=6",
                         "--eval_interval=3"] if a.tiny else []
    # the tiny dry run on the CPU trains eager: Inductor's cold C++ build alone would take minutes there
    compile_first = not (a.tiny and a.device == "cpu")
    ckpt = None
    for compiled in ([True, False] if compile_first else [False]):
        out = os.path.join(a.work, "runs", "model_a_compiled" if compiled else "model_a_eager")
        shutil.rmtree(out, ignore_errors=True)
        # training stops in time for BLiMP to be scored, on its last checkpoint if it has to
        rc, seconds, _ = sh(a, [sys.executable, "train.py", *configs, f"--data_dir={data}", f"--out_dir={out}",
                                f"--device={a.device}", f"--compile={compiled}", *tiny],
                            "train_compiled" if compiled else "train_eager", keep_s=0 if a.tiny else 45)
        train = read_log(out, "train")
        evals = read_log(out, "eval")
        rates = [r["tok_per_s"] for r in train[2:]] or [r["tok_per_s"] for r in train]  # the first ones compile
        mfus = [r["mfu"] for r in train[2:] if r.get("mfu")]
        record = {"recipe": name, "config": configs, "compile": compiled, "exit_code": rc, "wall_s": round(seconds, 1),
                  "iterations": train[-1]["iter"] if train else 0, "tokens": train[-1]["tokens"] if train else 0,
                  "tok_per_s_median": round(statistics.median(rates)) if rates else None,
                  "tok_per_s_max": round(max(rates)) if rates else None,
                  "mfu_median": round(statistics.median(mfus), 4) if mfus else None,
                  "first_log_s": train[0]["seconds"] if train else None,
                  "final_val_loss": round(evals[-1]["val_loss_mean"], 4) if evals else None}
        stopped = rc == -9 and os.path.isfile(os.path.join(out, "ckpt.safetensors"))
        record["stopped_at_the_time_limit"] = stopped
        fig["training" if rc == 0 or stopped else f"training_failed_{'compiled' if compiled else 'eager'}"] = record
        fig.save()
        if rc == 0 or stopped:
            ckpt = os.path.join(out, "ckpt.safetensors")
            break
        if a.deadline - time.time() < 60 and not a.tiny:
            break
    fig["checks"]["training_finished"] = ckpt is not None and fig["training"]["exit_code"] == 0
    fig["checks"]["compiled_training_ran"] = ckpt is not None and fig["training"]["compile"] == compile_first
    if ckpt is None:
        return
    blimp_json = os.path.join(a.work, "blimp_model_a.json")
    rc, seconds, _ = sh(a, [sys.executable, "eval_blimp.py", ckpt, "--suite", "blimp", "--data-root", a.data_root,
                            "--device", a.device, "--no-progress", "--out", blimp_json], "eval_blimp")
    result = load_json(blimp_json) if rc == 0 else None
    if result:
        suite, settings = result.get("suites", {}).get("blimp", {}), result.get("settings", {})
        total = suite.get("total", {})
        fig["blimp"] = {"wall_s": round(seconds, 1), "scoring_s": suite.get("seconds"), "pairs": total.get("n"),
                        "pairs_per_second": suite.get("pairs_per_second"), "macro": total.get("macro"),
                        "micro": total.get("micro"), "dtype": settings.get("dtype"),
                        "batch_tokens": settings.get("batch_tokens")}
    fig["checks"]["blimp_scored"] = result is not None


def part_ddp(a, fig):
    """torchrun with one process (NCCL on a GPU) trains what the plain process trains."""
    import torch
    sys.path.insert(0, ROOT)
    from checkpoint import load_checkpoint
    data = tokenized(a, fig, "model_a")
    fig["checks"]["data_tokenized"] = data is not None
    if data is None:
        return
    # 128-token windows: one key block for the attention kernel's backward, which then adds up its
    # gradients in a fixed order, so that the two runs can agree bit for bit (the check allows float
    # rounding, as tests/test_ddp.py; bitwise_equal says whether they did)
    args = ([*TINY_MODEL, "--max_seq_len=64", "--block_size=64", "--batch_size=4"] if a.tiny
            else ["config/model_a.py", "--block_size=128", "--batch_size=16"])
    args += [f"--data_dir={data}", f"--device={a.device}", "--max_iters=6", "--grad_accum=2", "--eval_interval=3",
             "--log_interval=1", "--warmup_iters=2", "--milestone_unit=none"]
    plain, ddp = os.path.join(a.work, "runs", "ddp_plain"), os.path.join(a.work, "runs", "ddp_torchrun")
    for d in (plain, ddp):
        shutil.rmtree(d, ignore_errors=True)
    rc1, s1, _ = sh(a, [sys.executable, "train.py", *args, f"--out_dir={plain}"], "ddp_plain")
    # torchrun is this module: `python -m torch.distributed.run` is what the torchrun script runs
    rc2, s2, out = sh(a, [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "train.py",
                          *args, f"--out_dir={ddp}"], "ddp_torchrun", env={"NCCL_DEBUG": "VERSION"})
    fig.update(plain_s=round(s1, 1), torchrun_s=round(s2, 1), plain_exit=rc1, torchrun_exit=rc2,
               nccl=next((line.strip() for line in out.splitlines() if "NCCL version" in line), None))
    fig["checks"]["both_ran"] = rc1 == 0 and rc2 == 0
    if rc1 or rc2:
        return
    with open(os.path.join(ddp, "config.json")) as f:
        resolved = json.load(f)
    fig["world_size"] = resolved.get("world_size")
    fig["device_resolved"] = resolved.get("device_resolved")
    wa, _ = load_checkpoint(os.path.join(plain, "ckpt.safetensors"))
    wb, _ = load_checkpoint(os.path.join(ddp, "ckpt.safetensors"))
    sa, sb = wa.state_dict(), wb.state_dict()
    diff = max((sa[k].float() - sb[k].float()).abs().max().item() for k in sa)
    la, lb = [r["loss"] for r in read_log(plain, "train")], [r["loss"] for r in read_log(ddp, "train")]
    fig.update(max_abs_weight_diff=diff, bitwise_equal=all(torch.equal(sa[k], sb[k]) for k in sa),
               losses_plain=la, losses_torchrun=lb, steps=len(la))
    fig["checks"]["same_weights"] = diff <= 1e-5            # as tests/test_ddp.py
    fig["checks"]["same_losses"] = len(la) == len(lb) == 6 and all(abs(p - q) <= 1e-5 for p, q in zip(la, lb))
    if a.device == "cuda":
        fig["checks"]["nccl_used"] = fig["nccl"] is not None


def part_taam(a, fig):
    """The TAAM study's variants at 20x its token exposures, one seed, trained side by side."""
    import threading
    data = tokenized(a, fig, "eng_nld_zho")
    fig["checks"]["data_tokenized"] = data is not None
    if data is None:
        return
    if a.tiny:
        scale = [*TINY_MODEL, "--max_seq_len=32", "--block_size=32", "--batch_size=4", "--max_iters=4",
                 "--eval_interval=2", "--budget=30000"]
    else:  # 20x the batch (and the unique-data budget, which the corpora cap at all of it): same steps, same updates
        scale = [f"--batch_size={8 * TAAM_SCALE}", f"--budget={1.5e6 * TAAM_SCALE:.0f}"]
    fig.update(scale=TAAM_SCALE, overrides=scale, seed=1, variants={})
    fig.save()
    lock = threading.Lock()

    def one(name, variant_cfg):
        out = os.path.join(a.work, "runs", "taam", name)
        shutil.rmtree(out, ignore_errors=True)
        r = {"status": "running"}

        def publish():  # a copy, so that no thread changes a dict while another one writes the file
            with lock:
                fig["variants"][name] = dict(r)
                fig.save()

        publish()
        # several processes share the cores: two threads each
        rc, seconds, _ = sh(a, [sys.executable, "train.py", "config/taam.py", variant_cfg, "config/taam_cpu.py", *scale,
                                f"--data_dir={data}", f"--out_dir={out}", f"--device={a.device}", "--seed=1"],
                            f"taam_{name}", env={"OMP_NUM_THREADS": "2"})
        r.update(train_s=round(seconds, 1), train_exit=rc)
        evals, mixer, train = read_log(out, "eval"), read_log(out, "mixer"), read_log(out, "train")
        if evals:
            r["final_val_loss"] = {k: round(v, 4) for k, v in evals[-1]["val_loss"].items()}
        if mixer:
            r["final_pi"] = mixer[-1].get("pi")
        if train:
            r["tokens"] = train[-1]["tokens"]
        publish()
        if rc == 0:
            pairs = os.path.join(out, "minimal_pairs.json")
            rc, seconds, _ = sh(a, [sys.executable, "eval_blimp.py", os.path.join(out, "ckpt.safetensors"), "--suite",
                                    "blimp,blimp_nl,zhoblimp", "--fast", "--data-root", a.data_root, "--device", a.device,
                                    "--no-progress", "--out", pairs], f"taam_{name}_eval", env={"OMP_NUM_THREADS": "2"})
            r.update(eval_s=round(seconds, 1), eval_exit=rc)
            result = load_json(pairs) if rc == 0 else None
            if result:
                r["macro"] = {k: v.get("total", {}).get("macro") for k, v in result.get("suites", {}).items()}
        r["status"] = "ok" if rc == 0 and "macro" in r else "failed"
        publish()

    jobs = 2 if a.device == "cpu" else len(TAAM_VARIANTS)
    pending = list(TAAM_VARIANTS.items())
    running = []
    while pending or running:
        running = [t for t in running if t.is_alive()]
        while pending and len(running) < jobs:
            if a.deadline - time.time() < 30:   # too late to train one: say so rather than start it
                with lock:
                    for name, _ in pending:
                        fig["variants"][name] = {"status": "skipped", "reason": "budget"}
                pending = []
                break
            t = threading.Thread(target=one, args=pending.pop(0), daemon=True)
            t.start()
            running.append(t)
        time.sleep(0.5)
    fig["checks"]["every_variant_ran"] = all(v["status"] == "ok" for v in fig["variants"].values())


# ----------------------------------------------------------------------------- small helpers

def save_json(path, obj):
    """Written whole or not at all (a temporary file renamed over the old one)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
    os.replace(tmp, path)


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def tail(path, n):
    try:
        return "\n".join(read_text(path).splitlines()[-n:])
    except OSError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
