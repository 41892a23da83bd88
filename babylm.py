"""
The BabyLM challenge's rules, and what a run does before and after its loop: train.py's helpers.

    python train.py config/quickstart.py                      # makes the data, trains, scores, exports
    python train.py config/model_a.py --track=strict-small    # the same run, checked against a track's rules
    python train.py config/model_a.py --eval_suites=blimp_filtered,blimp_supplement --eval_fast

Before the loop:
  make_data      data_dir has no meta.json and the config says how to make it (make_data: tokenize_data.py's
                 arguments): run tokenize_data.py, printing the command, as a user would type it.
  check_track    the rules of a track (TRACKS): the training data within the budget, and at most
                 MAX_EPOCHS passes over it (BabyLM counts words seen: <= 10 x the data's words). A run
                 without a track that goes past 10 epochs gets a one-line notice.
During and after it:
  milestone_name the checkpoint names: chck_1M ... in words (what the BabyLM evaluation pulls and reads as
                 words seen), chck_tok_1M ... in tokens, so that no one can take one for the other.
  score          the minimal-pair suites (eval_suites) by eval_blimp.evaluate: a "blimp" record in log.jsonl.
  end_of_run     after the final checkpoint, on rank 0: score, write out_dir/blimp.json, export to
                 export_to (export_hf.py), and print one last line with the scores.
"""

import os
import shlex

import checkpoint
import eval_blimp
import export_hf
import tokenize_data
from atomic import write_json
from pairs import DEFAULT_DATA_ROOT, SUITES, suite_files

# track -> (the training data's budget, its unit). The 2025 rules count words (whitespace-separated,
# meta.json's "words"); the multilingual track counts tokens, as config/taam.py's budget does.
TRACKS = {"strict-small": (10e6, "words"), "strict": (100e6, "words"), "multilingual": (100e6, "tokens")}
MAX_EPOCHS = 10  # every track: words (tokens) seen <= 10 x the training data's


def check_config(cfg):
    """TrainConfig.__post_init__'s checks of the keys below: ValueError naming the key."""
    def check(ok, message):
        if not ok:
            raise ValueError(message)
    check(cfg.track is None or cfg.track in TRACKS, f"track={cfg.track!r}: expected one of {', '.join(TRACKS)}")
    check(cfg.track is None or cfg.milestone_unit != "tokens",
          f"milestone_unit='tokens' with track={cfg.track!r}: a track's checkpoints are named by words seen")
    for suite in (cfg.eval_suites or "").split(","):
        check(suite in SUITES or os.path.exists(suite) or not suite,
              f"eval_suites: {suite!r} is neither a suite ({', '.join(SUITES)}) nor a pair file or folder")
    check(cfg.eval_suites or not (cfg.eval_fast or cfg.eval_milestones),
          "eval_fast and eval_milestones: set eval_suites too (the suites to score)")
    check(cfg.make_data is None or "--out" not in cfg.make_data,
          "make_data: leave --out out (the data go to data_dir)")


def make_data(cfg, ranks):
    """No data in data_dir yet, and make_data says how to make them: run tokenize_data.py (seconds for
    Model A's 2 MB). Without make_data, data.read_meta says which command to run."""
    if cfg.make_data is None or os.path.isfile(os.path.join(cfg.data_dir, "meta.json")):
        return
    argv = shlex.split(cfg.make_data) + ["--out", cfg.data_dir]
    command = "python tokenize_data.py " + shlex.join(argv)
    if ranks.world_size > 1:  # several ranks would each write it: make it once, before torchrun
        raise SystemExit(f"{cfg.data_dir}: no meta.json; with several ranks make the data first: {command}")
    print(f"{cfg.data_dir}: no data yet; making them: {command}", flush=True)
    tokenize_data.main(argv)


def check_track(cfg, meta: dict, batches, max_iters: int, samples_per_iter: int, master: bool):
    """The run keeps its track's rules (TRACKS), or stops with one line before training. An epoch is
    one pass over the batch source's samples (train.count_iterations), so the run sees epochs x the
    data's words (tokens). epochs=10 rounds up to whole steps: a last step that passes 10 epochs counts
    as within them."""
    epochs = max_iters * samples_per_iter / batches.samples_per_epoch()
    over = (max_iters - 1) * samples_per_iter / batches.samples_per_epoch() >= MAX_EPOCHS
    if cfg.track is None:
        if over and master:
            print(f"notice: {epochs:.1f} epochs over the training data; BabyLM's tracks allow {MAX_EPOCHS} "
                  f"(--track=strict-small or strict checks a run against the rules)")
        return
    budget, unit = TRACKS[cfg.track]
    have = (sum(info["train"]["words"] for info in meta["languages"].values()) if unit == "words"
            else batches.train_tokens())
    if have > budget:
        raise SystemExit(f"{cfg.data_dir}: {have:,} training {unit}, over the {cfg.track} track's {budget:,.0f}")
    if over:
        raise SystemExit(f"config: {max_iters} iterations are {epochs:.1f} epochs ({epochs * have:,.0f} {unit} seen); "
                         f"the {cfg.track} track allows {MAX_EPOCHS} ({MAX_EPOCHS * have:,} {unit})")


def milestone_name(count: int, unit: str) -> str:
    """words: "chck_1M" (checkpoint.milestone_name, the branch names the BabyLM evaluation pulls and
    reads as words seen); tokens: "chck_tok_1M", which no one can take for words."""
    name = checkpoint.milestone_name(count)
    return name if unit == "words" else name.replace("chck_", "chck_tok_")


def score(model, tokenizer, cfg, log, iter_num: int, at: str) -> dict:
    """Score eval_suites (eval_blimp.evaluate, BabyLM's protocol: a pair is right when the good sentence's
    log-probability is higher) and log a "blimp" record: {suite: headline accuracy}. Returns the result."""
    result = eval_blimp.evaluate(model, tokenizer, cfg.eval_suites, data_root=cfg.eval_data_root or DEFAULT_DATA_ROOT,
                                 fast=cfg.eval_fast)
    totals = {name: round(r["headline"], 5) for name, r in result["suites"].items()}
    log({"kind": "blimp", "iter": iter_num, "at": at, "fast": cfg.eval_fast, "suites": totals})
    return result


def at_milestone(cfg, model, tokenizer, log, iter_num: int, name: str, master: bool):
    """With eval_milestones, score eval_suites at each milestone checkpoint (rank 0; the others wait at
    the next step)."""
    if cfg.eval_milestones and master:
        score(model, tokenizer, cfg, log, iter_num, name)


def check_end_of_run(cfg):
    """What end_of_run needs, checked before training: the suites' files and export_to's folder."""
    for suite in (cfg.eval_suites or "").split(","):
        if suite:
            suite_files(suite, cfg.eval_data_root or DEFAULT_DATA_ROOT)
    if cfg.export_to:
        export_hf.check_out_dir(os.path.abspath(cfg.export_to), cfg.force, keep=[cfg.out_dir])


def end_of_run(cfg, model, tokenizer, log, iter_num: int, master: bool) -> int:
    """After the final checkpoint, on rank 0: score eval_suites (out_dir/blimp.json), export the final
    checkpoint to export_to (its model card carries the scores), and print one last line. Returns 0."""
    if not master:
        return 0
    line, eval_path = f"done: {cfg.out_dir}/{checkpoint.CHECKPOINT_FILE} at iteration {iter_num}", None
    if cfg.eval_suites:
        result = score(model, tokenizer, cfg, log, iter_num, "end")
        eval_path = os.path.join(cfg.out_dir, "blimp.json")
        write_json(eval_path, result, indent=2)
        line += "; " + ", ".join(f"{name} {100 * r['headline']:.1f}%" for name, r in result["suites"].items())
        line += " (fast)" if cfg.eval_fast else ""
    if cfg.export_to:
        export_hf.export_checkpoint(os.path.join(cfg.out_dir, checkpoint.CHECKPOINT_FILE), cfg.export_to,
                                    eval_path=eval_path, force=cfg.force)
        line += f"; exported to {cfg.export_to}"
    print(line)
    return 0


class Milestones:
    """BabyLM's checkpoint schedule (checkpoint.MILESTONES) in words or tokens seen: train.py asks after
    every step which milestones its progress (a train.Progress) has just passed."""

    def __init__(self, unit: str, progress):
        self.unit, self.progress = unit, progress
        self.next = None if unit == "none" else next((m for m in checkpoint.MILESTONES if m > self.seen()), None)

    def seen(self):
        return self.progress.words_seen if self.unit == "words" else self.progress.tokens_seen

    def passed(self):
        """The names of the milestones reached since the last call (usually none, at most a few)."""
        while self.next is not None and self.seen() >= self.next:
            yield milestone_name(self.next, self.unit)
            self.next = next((m for m in checkpoint.MILESTONES if m > self.next), None)
