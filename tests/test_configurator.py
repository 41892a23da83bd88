"""configurator.py: config files and command-line overrides checked against typed dataclasses, and
the config files this repository ships."""

import os
import types
from dataclasses import asdict, dataclass
from typing import Optional

import pytest

from conftest import ROOT
from configurator import load_config
import train


@dataclass
class A:
    lr: float = 0.1
    steps: int = 10
    name: str = "x"
    init_from: Optional[str] = "ckpt.pt"
    flag: bool = False


@dataclass
class B:
    width: int = 4


def test_config_file_then_command_line_later_wins(tmp_path):
    cfg_file = tmp_path / "c.py"
    cfg_file.write_text('"""A docstring is allowed."""\nlr = 0.5\nwidth = 4 * 2\n')
    (a, b), explicit = load_config([str(cfg_file), "--lr=1e-3"], A, B)
    assert a.lr == 1e-3 and b.width == 8 and explicit == {"lr", "width"}


def test_config_int_is_accepted_for_float_and_stays_float():
    (a, _), _ = load_config(["--lr=1"], A, B)
    assert a.lr == 1.0 and isinstance(a.lr, float)


def test_config_none_can_be_set_and_overridden(tmp_path):
    cfg_file = tmp_path / "c.py"
    cfg_file.write_text("init_from = None\n")
    (a, _), _ = load_config([str(cfg_file)], A, B)
    assert a.init_from is None
    (a, _), _ = load_config([str(cfg_file), "--init_from=other.pt"], A, B)
    assert a.init_from == "other.pt"
    (a, _), _ = load_config(["--init_from=None"], A, B)
    assert a.init_from is None


def test_config_value_may_contain_equals_and_bare_flag_is_true():
    (a, _), _ = load_config(["--name=a=b=c", "--flag"], A, B)
    assert a.name == "a=b=c" and a.flag is True


@pytest.mark.parametrize("argv, message", [
    (["--lrr=1"], "unknown config key 'lrr'; did you mean 'lr'?"),
    (["--steps=1.5"], "steps must be int"),
    (["--steps=None"], "steps cannot be None"),
    (["--flag=3"], "flag must be True or False"),
    (["--lr=abc"], "is not a valid float"),
])
def test_config_mistakes_fail_with_one_clear_line(argv, message):
    with pytest.raises(SystemExit) as e:
        load_config(argv, A, B)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_keys_may_be_spelt_with_dashes_and_take_their_value_as_the_next_argument():
    (a, b), explicit = load_config(["--init-from", "other.pt", "--flag", "--width", "7"], A, B)
    assert a.init_from == "other.pt" and a.flag is True and b.width == 7 and explicit == {"init_from", "flag", "width"}
    with pytest.raises(SystemExit, match="--width needs a value"):
        load_config(["--width"], A, B)


def test_a_run_length_on_the_command_line_replaces_the_config_files():
    """config/model_a.py sets epochs; --max_iters=100 on the command line means 100 iterations, not an error."""
    (_, cfg, _), explicit = load_config([os.path.join(ROOT, "config", "model_a.py"), "--max_iters=100"],
                                        train.ModelConfig, train.TrainConfig, train.MixerConfig, exclusive=[train.RUN_LENGTH])
    assert cfg.max_iters == 100 and cfg.epochs is None and "epochs" not in explicit
    (_, cfg, _), _ = load_config(["--max_tokens=5000", "--epochs=2"], train.ModelConfig, train.TrainConfig,
                                 train.MixerConfig, exclusive=[train.RUN_LENGTH])
    assert cfg.epochs == 2.0 and cfg.max_tokens is None


def test_config_unknown_key_in_a_file_names_the_file(tmp_path):
    cfg_file = tmp_path / "c.py"
    cfg_file.write_text("widht = 3\n")
    with pytest.raises(SystemExit, match=r"c\.py: unknown config key 'widht'; did you mean 'width'\?"):
        load_config([str(cfg_file)], A, B)


def config_file_assignments(path):
    """The names a config file assigns and their values, read without configurator.py."""
    namespace = {}
    exec(compile(open(path).read(), path, "exec"), {}, namespace)
    return {k: v for k, v in namespace.items() if not k.startswith("_") and not isinstance(v, types.ModuleType)}


@pytest.mark.parametrize("name", sorted(n for n in os.listdir(os.path.join(ROOT, "config")) if n.endswith(".py")))
def test_every_shipped_config_loads_and_sets_the_values_it_assigns(name):
    path = os.path.join(ROOT, "config", name)
    assigned = config_file_assignments(path)
    configs, explicit = load_config([path], train.ModelConfig, train.TrainConfig, train.MixerConfig)
    assert assigned and explicit == set(assigned), name
    read_back = {k: v for cfg in configs for k, v in asdict(cfg).items() if k in assigned}
    assert read_back == assigned, name


def test_every_results_variant_is_a_valid_config():
    """results/model_a_card/run_model_a_card_levers.sh runs for hours; a mistyped flag in its table must
    fail here, not after the variants before it have trained."""
    with open(os.path.join(ROOT, "results", "model_a_card", "run_model_a_card_levers.sh")) as f:
        script = f.read()
    three = script.split('THREE="', 1)[1].split('"', 1)[0]
    best = script.split('BEST="', 1)[1].split('"', 1)[0]
    wsd = script.split('WSD="', 1)[1].split('"', 1)[0].replace("$BEST", best)
    rows = [line.split("|") for line in script.split('VARIANTS="', 1)[1].split('"', 1)[0].strip().splitlines()]
    assert len(rows) >= 10 and len({name for name, *_ in rows}) == len(rows)
    for name, flags, seeds, full in rows:
        args = flags.replace("$THREE", three).replace("$BEST", best).replace("$WSD", wsd).split()
        assert "$" not in " ".join(args), f"{name}: a variable the test does not expand"
        argv = [os.path.join(ROOT, "config", "model_a_card.py"),
                *(a if a.startswith("--") else os.path.join(ROOT, a) for a in args)]  # flags and config files
        model_cfg, cfg, _, explicit = train.read_config(argv)
        assert explicit >= {a[2:].split("=")[0] for a in args if a.startswith("--")}, name
        assert seeds.split() and full in ("0", "1"), name
        if "--grad_accum=2" in flags:  # 32 samples a step: half the card's 64
            assert cfg.batch_size * cfg.grad_accum == 32, name


def test_model_a_config_has_the_reference_shape_and_26M_parameters():
    (model_cfg, cfg, _), _ = load_config([os.path.join(ROOT, "config", "model_a.py")],
                                         train.ModelConfig, train.TrainConfig, train.MixerConfig)
    n = train.Transformer(model_cfg).num_params()
    assert abs(n - 26.4e6) < 0.3e6
    assert (cfg.lr, cfg.warmup_iters, cfg.batch_size, cfg.grad_accum, cfg.epochs) == (3e-4, 200, 16, 4, 5.0)


@pytest.mark.parametrize("text, message", [
    ("import os\nos.system('touch {marker}')\n", "c.py:1: import is not allowed in a config file"),
    ("lr = 0.1\n__import__('os').system('touch {marker}')\n", "c.py:2: a call of __import__('os').system is not allowed"),
    ("lr = __import__('os').system('touch {marker}')\n", "c.py:1: a call of __import__('os').system is not allowed"),
    ("while True:\n    pass\n", "c.py:1: a while loop is not allowed"),
    ("width = lr\n", "c.py:1: a name (lr) is not allowed in a config value"),
    ("lr = 10 ** 10 ** 9\n", "c.py:1: exponent 1000000000 is too large"),
    ("lr = 'a' * 3\n", "c.py:1: arithmetic on str 'a'"),
    ("lr = (\n", "c.py:1: not a config file"),
])
def test_a_config_file_is_parsed_never_run(tmp_path, text, message):
    """Nothing in a config file runs: an import, a call or a loop is one line naming the file and line."""
    marker = tmp_path / "code_ran"
    cfg_file = tmp_path / "c.py"
    cfg_file.write_text(text.format(marker=marker))
    with pytest.raises(SystemExit) as e:
        load_config([str(cfg_file)], A, B)
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert not marker.exists()


def test_config_values_may_be_literals_and_arithmetic_on_numbers(tmp_path):
    cfg_file = tmp_path / "c.py"
    cfg_file.write_text("lr = 3e-4 / 10\nsteps = 6 * 64\nwidth = -(2 ** 3) + 16\nname = 'x'\ninit_from = None\n")
    (a, b), _ = load_config([str(cfg_file)], A, B)
    assert (a.lr, a.steps, b.width, a.name, a.init_from) == (3e-4 / 10, 384, 8, "x", None)
