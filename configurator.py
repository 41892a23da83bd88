"""
Config files and command-line overrides, checked against typed dataclasses.

    python train.py config/model_a.py --lr=1e-3 --max_iters=100 --init_from=None --resume

A config file is a plain Python file of assignments (`lr = 3e-4`). Every name it assigns, and every
`--key=value` on the command line (later ones win), must be a field of one of the config dataclasses
given to `load_config`; a misspelt key fails with "did you mean ...", as nanoGPT's exec-into-globals
configurator cannot. Values are converted to the field's type: `--lr=1` gives the float 1.0,
`--init_from=None` sets an Optional field to None, `--out_dir=a=b` keeps everything after the first
`=`, a bare `--flag` means `--flag=True`, and `--key value` is `--key=value` for a field that is not
a bool. Keys may be written with - or _ (`--max-iters=5` is `--max_iters=5`).

Keys in one `exclusive` group (train.py's run length: max_iters, epochs, max_tokens) replace each
other: `python train.py config/model_a.py --max_iters=100` runs 100 iterations although the file
sets `epochs`. `--help` lists every key with its default.
"""

import ast
import dataclasses
import difflib
import typing


def load_config(argv, *config_classes, exclusive=(), program="train.py"):
    """Parse argv (config files and --key=value) into one instance of each dataclass.

    exclusive: groups of keys of which only the one set last counts.
    Returns (configs: list of instances in the order given, explicit: set of keys that were set).
    Raises SystemExit with one line on any mistake.
    """
    owner = {}  # field name -> its dataclass
    for cls in config_classes:
        for f in dataclasses.fields(cls):
            if f.name in owner:
                raise ValueError(f"config field {f.name!r} is defined by both {owner[f.name].__name__} and {cls.__name__}")
            owner[f.name] = cls
    hints = {cls: typing.get_type_hints(cls) for cls in config_classes}
    rivals = {key: set(group) - {key} for group in exclusive for key in group}

    values = {}  # key -> value, already converted to the field type

    def set_value(key, value):
        for other in rivals.get(key, ()):
            values.pop(other, None)
        values[key] = value

    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("-h", "--help"):
            print(usage(program, config_classes, hints))
            raise SystemExit(0)
        if arg.startswith("--"):
            key, has_value, text = arg[2:].partition("=")
            key = key.replace("-", "_")
            _check_known(key, owner, where="command line")
            field_type = hints[owner[key]][key]
            if not has_value and field_type is not bool:
                if not args or args[0].startswith("--"):
                    raise SystemExit(f"command line: --{key} needs a value (--{key}=VALUE)")
                text, has_value = args.pop(0), True
            set_value(key, _convert(key, text if has_value else "True", field_type, from_text=True))
        else:
            for key, value in _read_config_file(arg).items():
                _check_known(key, owner, where=arg)
                set_value(key, _convert(key, value, hints[owner[key]][key], from_text=False, where=arg))

    configs = []
    for cls in config_classes:
        kwargs = {k: v for k, v in values.items() if owner[k] is cls}
        try:
            configs.append(cls(**kwargs))
        except ValueError as e:  # a dataclass's own check in __post_init__
            raise SystemExit(f"config: {e}")
    return configs, set(values)


def usage(program, config_classes, hints):
    """The --help text: every key with its type and default, grouped by dataclass."""
    lines = [f"usage: python {program} [config.py ...] [--key=value ...]   (later ones win)"]
    for cls in config_classes:
        lines.append(f"\n{cls.__name__}:")
        for f in dataclasses.fields(cls):
            hint = hints[cls][f.name]
            kind = hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
            lines.append(f"  --{f.name}={f.default!r}  ({kind})")
    return "\n".join(lines)


def _read_config_file(path):
    try:
        with open(path) as f:
            source = f.read()
    except OSError as e:
        raise SystemExit(f"{path}: cannot read config file ({e.strerror})")
    namespace = {}
    try:
        exec(compile(source, path, "exec"), {}, namespace)
    except Exception as e:
        raise SystemExit(f"{path}: error in config file: {type(e).__name__}: {e}")
    # keep the assignments; skip private names and anything imported
    return {k: v for k, v in namespace.items() if not k.startswith("_") and not isinstance(v, type(typing))}


def _check_known(key, owner, where):
    if key not in owner:
        close = difflib.get_close_matches(key, owner, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SystemExit(f"{where}: unknown config key {key!r}{hint}")


def _convert(key, value, field_type, from_text, where="command line"):
    """Bring value to field_type: int -> float accepted, None only for Optional fields."""
    optional = typing.get_origin(field_type) is typing.Union and type(None) in typing.get_args(field_type)
    base = next((t for t in typing.get_args(field_type) if t is not type(None)), field_type) if optional else field_type

    if from_text:
        if value == "None":
            value = None
        elif base is str:
            pass  # strings are taken as typed, quotes not needed
        else:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                raise SystemExit(f"{where}: --{key}={value} is not a valid {base.__name__}")

    if value is None:
        if optional:
            return None
        raise SystemExit(f"{where}: {key} cannot be None")
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if base is bool and not isinstance(value, bool):
        raise SystemExit(f"{where}: {key} must be True or False, got {value!r}")
    if base is int and isinstance(value, float) and value.is_integer():
        return int(value)  # 1e6 written for an int field
    if base in (int, float, str) and not isinstance(value, base) or (base is int and isinstance(value, bool)):
        raise SystemExit(f"{where}: {key} must be {base.__name__}, got {value!r}")
    return value
