"""
Specification of report.py: what it reads from a run's log.jsonl, and the plots it draws.

    python -m pytest -q tests/test_report.py

The logs here are written as train.py writes them: {"kind": "train"} records every log interval,
{"kind": "eval"} after every evaluation, and {"kind": "mixer", "iter": ..., **Mixer.update(...)}
after every mixer update.
"""

import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import report  # noqa: E402
from data import Shard, read_meta  # noqa: E402
from mixer import Mixer, MixerConfig  # noqa: E402
from test_mixer import LANGS, make_data  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_run(run, data_dir=None, steps=10):
    """A run folder: config.json and log.jsonl; with data_dir, a taam mixer run on it."""
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"device_resolved": "cpu", "dtype_resolved": "float32"}))
    m = Mixer(data_dir, read_meta(data_dir), Shard(2, 8, seed=0), MixerConfig(mixer="taam")) if data_dir else None
    with open(run / "log.jsonl", "w") as f:
        for t in range(1, steps + 1):
            tokens = 1000 * t
            f.write(json.dumps({"kind": "train", "iter": t, "loss": 6.0 - 0.1 * t, "lr": 1e-3, "tokens": tokens,
                                "words": 700 * t, "tok_per_s": 100.0 * t, "mfu": None, "seconds": 0.5}) + "\n")
            if m is not None:
                m.get_batch(t, 0)
            losses = {l: 5.0 - 0.1 * t * (i + 1) for i, l in enumerate(LANGS)}
            f.write(json.dumps({"kind": "eval", "iter": t, "tokens": tokens, "val_loss": losses,
                                "val_loss_mean": sum(losses.values()) / 3}) + "\n")
            if m is not None:
                f.write(json.dumps({"kind": "mixer", "iter": t, **m.update(t, losses)}) + "\n")
    return str(run)


def test_run_summary_quotes_the_last_records_of_the_log(tmp_path):
    run = write_run(tmp_path / "run")
    s = report.run_summary(run)
    assert s == {"run": run, "iterations": 10, "tokens": 10_000, "words": 7_000, "final_train_loss": 6.0 - 1.0,
                 "final_val_loss": {"eng": 4.0, "nld": 3.0, "zho": 2.0},
                 "best_val_loss_mean": min((15.0 - 0.6 * t) / 3 for t in range(1, 11)),
                 "mean_tok_per_s": 550.0, "wall_clock_s": 5.0, "device": "cpu", "dtype": "float32",
                 "machine": None}  # a config.json written before machine.py


@pytest.mark.slow
def test_mixer_plot_draws_pi_and_loss_from_the_run_log(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    run = write_run(tmp_path / "run", make_data(tmp_path / "data"))
    out = report.mixer_plot(run, str(tmp_path / "plots" / "mixer.png"))
    assert out == str(tmp_path / "plots" / "mixer.png")
    assert open(out, "rb").read(8) == PNG_MAGIC
    # the same from the command line, with the summary printed first
    monkeypatch.setattr(sys, "argv", ["report.py", run, "--mixer-png", str(tmp_path / "cli.png")])
    report.main()
    assert open(tmp_path / "cli.png", "rb").read(8) == PNG_MAGIC


def test_a_run_without_a_mixer_gets_one_line(tmp_path, monkeypatch):
    run = write_run(tmp_path / "plain")
    with pytest.raises(SystemExit, match="no mixer records .* was the run trained with a mixer") as e:
        report.mixer_plot(run, str(tmp_path / "mixer.png"))
    assert "\n" not in str(e.value) and not (tmp_path / "mixer.png").exists()
    with pytest.raises(SystemExit, match="no log"):
        report.run_summary(str(tmp_path / "nowhere"))
    monkeypatch.setattr(sys, "argv", ["report.py", run, run, "--mixer-png", str(tmp_path / "mixer.png")])
    with pytest.raises(SystemExit, match="^report.py: --mixer-png draws one run"):
        report.main()


def write_rows(path, values):
    """A model_a_card.py JSON whose runs have these {seed: score} on the fast set."""
    path.write_text(json.dumps({"runs": [{"seed": s, "blimp_fast_card_micro": v} for s, v in values.items()]}))
    return str(path)


def test_compare_calls_a_variant_different_only_beyond_students_t_times_its_standard_error_with_every_seed_agreeing(
        tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("compare", os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results", "model_a_card", "compare.py"))
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    # by hand: {58, 59} and {60, 61} each have variance 0.5 (1 degree of freedom): pooled sd sqrt(0.5) with
    # 2 degrees of freedom, se = sqrt(0.5) * sqrt(1/2 + 1/2) = 0.707; a difference of 2 is 2.83 se, short of
    # t(2) = 4.303: within the spread, though both seeds moved +2
    sd, freedom = compare.pooled_sd([{1: 58.0, 2: 59.0}, {1: 60.0, 2: 61.0}])
    assert abs(sd - 0.5 ** 0.5) < 1e-12 and freedom == 2
    c = compare.compare({1: 58.0, 2: 59.0}, {1: 60.0, 2: 61.0}, sd, freedom)
    assert c["difference"] == 2.0 and abs(c["standard_error"] - 0.5 ** 0.5) < 1e-12
    assert c["by_seed"] == {1: 2.0, 2: 2.0} and c["verdict"] == "within the spread"
    # the same spread known from 18 degrees of freedom (t = 2.101): higher
    assert compare.compare({1: 58.0, 2: 59.0}, {1: 60.0, 2: 61.0}, sd, 18)["verdict"] == "higher"
    # the table: exact where tabled, the next smaller tabled df between entries (conservative), 1.96 past 120
    assert compare.t_975(2) == 4.303 and compare.t_975(27) == 2.060 and compare.t_975(500) == 1.96
    # the seeds disagree: within the spread however large the difference
    assert compare.compare({1: 58.0, 2: 59.0}, {1: 61.0, 2: 58.5}, sd, 18)["verdict"] == "within the spread"
    # two rows whose seeds happen to agree exactly have no spread of their own; pooled with a third row
    # (variance 2, 1 degree of freedom) the sd is sqrt((0 + 0 + 2) / 3), se = sd * sqrt(1/2 + 1/2) = 0.816,
    # and +0.5 is within it
    rows = [{1: 57.0, 2: 57.0}, {1: 57.5, 2: 57.5}, {1: 56.0, 2: 58.0}]
    sd, freedom = compare.pooled_sd(rows)
    assert abs(sd - (2 / 3) ** 0.5) < 1e-12 and freedom == 3
    assert compare.compare(rows[0], rows[1], sd, freedom)["verdict"] == "within the spread"
    # a third seed that only the base ran counts in its mean, not in the seed-by-seed column
    c = compare.compare({1: 58.0, 2: 59.0, 3: 58.5}, {1: 60.0, 2: 61.0}, 0.5, 18)
    assert c["by_seed"] == {1: 2.0, 2: 2.0} and c["base"] == 58.5
    assert abs(c["standard_error"] - 0.5 * (1 / 3 + 1 / 2) ** 0.5) < 1e-12
    # from the command line: the pooled sd, then a markdown row per variant
    base = write_rows(tmp_path / "base.json", {1: 58.0, 2: 59.0})
    variant = write_rows(tmp_path / "wsd.json", {1: 60.0, 2: 61.0})
    out = subprocess.run([sys.executable, spec.origin, base, variant], capture_output=True, text=True, check=True).stdout
    assert "seed-to-seed standard deviation, pooled over 2 rows: 0.71 (2 degrees of freedom: a difference counts " \
           "beyond 4.30 standard errors)" in out
    assert "| wsd | 60.50 | 58.50 | +2.00 ± 0.71 | 1: +2.00, 2: +2.00 | within the spread |" in out.splitlines()
    # --pool: more rows of the study, whose spread (here none: each pair of seeds agrees) counts, not compared;
    # sd = sqrt((0.5 + 0.5) / 4) = 0.5, 4 degrees of freedom, se 0.5: +2 is 4 se, beyond t(4) = 2.776
    pool = [write_rows(tmp_path / f"other{i}.json", {1: 57.0, 2: 57.0}) for i in range(2)]
    out = subprocess.run([sys.executable, spec.origin, base, variant, "--pool", *pool], capture_output=True, text=True,
                         check=True).stdout
    assert "| wsd | 60.50 | 58.50 | +2.00 ± 0.50 | 1: +2.00, 2: +2.00 | higher |" in out.splitlines()
    # a missing file: one line naming it
    gone = subprocess.run([sys.executable, spec.origin, base, str(tmp_path / "gone.json")], capture_output=True, text=True)
    assert gone.returncode != 0 and gone.stderr.strip() == f"{tmp_path / 'gone.json'}: no such file"


def test_heldout_vs_blimp_fits_the_line_through_the_runs_and_reads_it_at_the_target(tmp_path):
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results", "model_a_card",
                          "heldout_vs_blimp.py")
    # by hand: three runs on BLiMP = 110 - 10 x loss, and one 1 point above it at loss 5.0; least squares over
    # x = 4.8, 4.9, 5.0, 5.0 and y = 62, 61, 60, 61: mean x 4.925, mean y 61, deviations x -0.125, -0.025,
    # 0.075, 0.075 and y 1, 0, -1, 0: Sxy = -0.2, Sxx = 0.0275, slope -7.27..., intercept 61 + 7.27 x 4.925
    rows = tmp_path / "a.json", tmp_path / "b.json"
    rows[0].write_text(json.dumps({"runs": [{"seed": 1, "heldout_loss_trainer": 4.8, "blimp_fast_card_micro": 62.0},
                                            {"seed": 2, "heldout_loss_trainer": 4.9, "blimp_fast_card_micro": 61.0}]}))
    rows[1].write_text(json.dumps({"runs": [{"seed": 1, "heldout_loss_trainer": 5.0, "blimp_fast_card_micro": 60.0},
                                            {"seed": 2, "heldout_loss_trainer": 5.0, "blimp_fast_card_micro": 61.0}]}))
    out_json = tmp_path / "fit.json"
    subprocess.run([sys.executable, script, *map(str, rows), "--target", "60", "--json", str(out_json),
                    "--png", str(tmp_path / "fit.png")], check=True, capture_output=True)
    fit = json.loads(out_json.read_text())
    slope = -0.2 / 0.0275
    assert fit["runs"] == 4 and abs(fit["slope_points_per_nat"] - slope) < 1e-9
    assert abs(fit["intercept"] - (61 - slope * 4.925)) < 1e-9
    assert abs(fit["heldout_at_target"] - (4.925 + (60 - 61) / slope)) < 1e-9
    assert [p["row"] for p in fit["points"]] == ["a", "a", "b", "b"] and (tmp_path / "fit.png").stat().st_size > 0
