"""
Specification of report.py: what it reads from a run's log.jsonl, and the plots it draws.

    python -m pytest -q tests/test_report.py

The logs here are written as train.py writes them: {"kind": "train"} records every log interval,
{"kind": "eval"} after every evaluation, and {"kind": "mixer", "iter": ..., **Mixer.update(...)}
after every mixer update.
"""

import json
import os
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
