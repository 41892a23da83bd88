"""
Encoding throughput of tokenize_data.py's pipeline against a plain per-line `tokenizers` loop, and what a
whole run costs.

    python bench/tokenize_throughput.py --tokenizer data/eng_nld_zho       # all of ../shared/data/corpora
    python bench/tokenize_throughput.py --tokenizer data/eng_nld_zho --mb 4 --repeat 3
    python bench/tokenize_throughput.py --whole                    # tokenize_data.py on the corpora, timed
    python bench/tokenize_throughput.py --whole --tokenize-args "--backend spm"   # ... with other flags
    python bench/tokenize_throughput.py --scale 10,100             # English repeated 10x, 100x: time, memory

Both sides encode the same documents (every line of every file under --corpus, or the first --mb MB of
each language) with the same tokenizer and must produce the same ids:
  loop      ids = [tokenizer.encode(line).ids for line in lines]  -- Hugging Face `tokenizers`, one call per
            line, one thread: what a data-prep script usually does;
  pipeline  tokenize_data.encode_stream: batches of 64K characters, two in flight, each encoded by our
            Tokenizer (tiktoken, in one call per batch, when it gives the same ids: tokenizer.py) into
            the [BOS d1 BOS d2 ...] arrays of the bins.
MB/s counts UTF-8 bytes of text. Wall and CPU seconds are printed: on a shared machine the wall time of
either side depends on what else runs (the load average is printed too). With --check, every document is
also decoded back and compared with its line (the lossless round trip, on the whole corpus).

--whole runs `tokenize_data.py --corpus CORPUS` (tokenizer training included) into a temporary folder and
prints its time per step. --scale N makes a corpus of the English files repeated N times (uncompressed, in a
temporary folder), runs tokenize_data.py on it in a child process, and prints the time, the words and the
child's peak memory (maximum resident set), so that runs of two sizes show how memory grows.
"""

import argparse
import gzip
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import tokenize_data  # noqa: E402
from tokenizer import load_tokenizer  # noqa: E402


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def read_corpus(corpus: str, mb: float) -> list:
    lines = []
    for folder in sorted(os.listdir(corpus)):
        path = os.path.join(corpus, folder)
        if not os.path.isdir(path):
            continue
        taken = 0
        for name in sorted(os.listdir(path)):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(os.path.join(path, name), "rt", encoding="utf-8", newline="\n") as f:
                for line in f:
                    line = line.rstrip("\n").rstrip("\r")
                    if line.strip() and (mb <= 0 or taken < mb * 1e6):
                        lines.append(line)
                        taken += len(line.encode("utf-8"))
    return lines


def throughput(args):
    tok = load_tokenizer(args.tokenizer)
    if tok.backend != "bpe":
        raise SystemExit(f"{args.tokenizer}: a {tok.backend} tokenizer; this benchmark is for the bpe backend")
    from tokenizers import Tokenizer as HFTokenizer
    plain = HFTokenizer.from_str(tok.blob.decode("utf-8"))  # a fresh copy, loaded as anyone would
    plain.encode_special_tokens = True
    lines = read_corpus(args.corpus, args.mb)
    mb = sum(len(t.encode("utf-8")) for t in lines) / 1e6
    dtype = np.uint16 if tok.vocab_size <= 65535 else np.uint32
    print(f"{len(lines):,} documents, {mb:.2f} MB, tokenizer {args.tokenizer} (vocab {tok.vocab_size}, encoded by "
          f"{tok.encoder}{': ' + tok.encoder_note if tok.encoder_note else ''}), {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}")

    def loop():
        return [plain.encode(t, add_special_tokens=False).ids for t in lines]

    def pipeline():
        return [(keys, toks, lengths) for keys, toks, lengths in
                tokenize_data.encode_stream(tok, enumerate(lines), dtype)]

    best = {}
    for round_ in range(1, args.repeat + 1):
        for name, fn in (("loop", loop), ("pipeline", pipeline)):
            w, c = time.perf_counter(), cpu_seconds()
            result = fn()
            w, c = time.perf_counter() - w, cpu_seconds() - c
            best[name] = min(best.get(name, (float("inf"), 0.0)), (w, c))
            print(f"  round {round_}  {name:<9} {mb / w:6.2f} MB/s  (wall {w:6.2f}s, cpu {c:6.2f}s, "
                  f"{c / w:4.2f} cores busy; load average {os.getloadavg()[0]:.2f})")
            if name == "loop":
                reference = result
            else:
                produced = result

    # the same ids: [BOS d1 BOS d2 ...] from the loop equals the pipeline's arrays
    flat = np.concatenate([toks for _, toks, _ in produced])
    n = sum(len(ids) + 1 for ids in reference)
    same = n == len(flat) and np.array_equal(flat, np.fromiter(
        (i for ids in reference for i in [tok.bos_id, *ids]), dtype, n))
    print(f"identical ids: {same}")
    (lw, lc), (pw, pc) = best["loop"], best["pipeline"]
    print(f"best of {args.repeat}: loop {mb / lw:.2f} MB/s, pipeline {mb / pw:.2f} MB/s -> pipeline / loop = "
          f"{lw / pw:.2f}x wall-clock ({lc / pc:.2f}x in CPU seconds: the rest is from using more cores)")
    if args.check:
        starts = np.flatnonzero(flat == tok.bos_id)
        bad = 0
        for k, (a, b) in enumerate(zip(starts, list(starts[1:]) + [len(flat)])):
            if tok.decode(flat[a + 1:b]) != tok.normalize(lines[k]):
                bad += 1
        print(f"round trip: {len(lines) - bad:,} of {len(lines):,} documents decode to their line exactly")
    if not same:
        raise SystemExit("the pipeline's ids differ from the per-line loop's")


def run_tokenize_data(corpus: str, out: str, extra: list) -> tuple:
    """tokenize_data.py in a child process: (wall seconds, its output, its peak memory in MB). os.wait4 gives
    that one child's resource use, its maximum resident set included."""
    with tempfile.TemporaryFile("w+") as log:
        t0 = time.perf_counter()
        child = subprocess.Popen([sys.executable, os.path.join(HERE, "..", "tokenize_data.py"), "--corpus", corpus,
                                  "--out", out, *extra], stdout=log, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t0
        child.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read()
    if child.returncode != 0:
        raise SystemExit(f"tokenize_data.py failed: {output.strip()[-500:]}")
    return wall, output, usage.ru_maxrss / 1024  # KB on Linux


def whole(args):
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(1, args.repeat + 1):
            wall, out, _ = run_tokenize_data(args.corpus, os.path.join(tmp, "data"),
                                             ["--force", *shlex.split(args.tokenize_args)])
            last = out.strip().splitlines()[-1]
            print(f"  run {k}: {wall:.1f}s wall (load average {os.getloadavg()[0]:.2f}); tokenize_data.py: {last}")


def scale(args):
    english = os.path.join(args.corpus, "en")
    if not os.path.isdir(english):
        raise SystemExit(f"{english}: no English folder to repeat")
    for n in [int(x) for x in args.scale.split(",")]:
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            os.makedirs(os.path.join(tmp, "corpus", "en"))
            for name in sorted(os.listdir(english)):
                with gzip.open(os.path.join(english, name), "rb") as f:
                    text = f.read()
                with open(os.path.join(tmp, "corpus", "en", name.removesuffix(".gz")), "wb") as f:
                    for _ in range(n):
                        f.write(text)
            size = sum(os.path.getsize(os.path.join(tmp, "corpus", "en", f))
                       for f in os.listdir(os.path.join(tmp, "corpus", "en")))
            wall, out, peak = run_tokenize_data(os.path.join(tmp, "corpus"), os.path.join(tmp, "data"), [])
            row = r"^eng\s+(?:train|val)\s+[\d,]+\s+[\d,]+\s+([\d,]+)"  # the summary's words column
            words = sum(int(m.replace(",", "")) for m in re.findall(row, out, re.M))
            print(f"  English x{n}: {size / 1e6:,.0f} MB, {words / 1e6:.1f}M words: {wall:.0f}s wall "
                  f"({size / 1e6 / wall:.1f} MB/s), peak memory {peak:,.0f} MB; {out.strip().splitlines()[-1]}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--tokenizer", default="data/eng_nld_zho", help="a data folder or a tokenizer.json")
    p.add_argument("--corpus", default=os.path.join(HERE, "..", "..", "shared", "data", "corpora"))
    p.add_argument("--mb", type=float, default=0, help="MB of text per language (0: all)")
    p.add_argument("--repeat", type=int, default=1, help="alternate the two sides this many times; best of each")
    p.add_argument("--check", action="store_true", help="also decode every document and compare with its line")
    p.add_argument("--whole", action="store_true", help="time tokenize_data.py on --corpus, tokenizer included")
    p.add_argument("--tokenize-args", default="", help="more tokenize_data.py flags for --whole, e.g. "
                   "'--backend spm' or '--tokenizer-sample 500K'")
    p.add_argument("--scale", default=None, help="N[,N...]: English repeated N times, through tokenize_data.py")
    p.add_argument("--tmp", default=None, help="where --scale writes its corpus (default: the system's temp)")
    args = p.parse_args()
    if args.whole:
        whole(args)
    elif args.scale:
        scale(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
