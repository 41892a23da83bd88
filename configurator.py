"""
Config files and command-line overrides, checked against typed dataclasses.

    python train.py config/model_a.py --lr=1e-3 --max_iters=100 --init_from=None --resume

A config file is lines of plain assignments in Python's syntax (`lr = 3e-4`, `hidden_dim = 4 * 384`).
It is parsed, never run: a value must be a literal (a number, a string, True/False/None, a list,
tuple or dict of those, or arithmetic on numbers); an import, a call, a name or a loop is refused
with one line naming the file, the line and the construct, so a config file from somebody else
cannot run code. Every name it assigns, and every
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
            in_file = _read_config_file(arg)
            for group in exclusive:
                given = [k for k in group if k in in_file]
                if len(given) > 1:
                    raise SystemExit(f"{arg}: sets {' and '.join(given)}; give one of {', '.join(group)}")
            for key, value in in_file.items():
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
    """A config file's assignments as {name: value}, read without running the file: it is parsed
    (`ast`) and each line must be `name = value` with a literal value (see config_value)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise SystemExit(f"{path}: cannot read config file ({e.strerror or e})")
    if len(raw) > MAX_CONFIG_BYTES:
        raise SystemExit(f"{path}: over {MAX_CONFIG_BYTES // 1000} kB; a config file is a page of assignments")
    try:
        tree = ast.parse(raw.decode("utf-8"), filename=path)
    except UnicodeDecodeError:
        raise SystemExit(f"{path}: not a text file (not UTF-8); a config file is lines of name = value")
    except (SyntaxError, ValueError) as e:
        raise SystemExit(f"{path}:{getattr(e, 'lineno', '?')}: not a config file: {getattr(e, 'msg', e)}")
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue  # a docstring
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise SystemExit(f"{path}:{node.lineno}: {_construct(node)} is not allowed in a config file "
                             f"(only name = value lines; nothing in a config file is run)")
        values[node.targets[0].id] = config_value(node.value, path)
    return values


MAX_CONFIG_BYTES = 1_000_000
NUMBER_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
              ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
              ast.Pow: lambda a, b: a ** b}


def config_value(node, path):
    """The value of a config line's right-hand side: a number, string, bool or None; a list, tuple
    or dict of those; or arithmetic on numbers (`6 * 64`, `3e-4 / 10`, `-1`, `2 ** 10`). A name, a
    call, an attribute or anything else is refused: evaluating it could run code."""
    def value(n):
        if isinstance(n, ast.Constant) and (n.value is None or isinstance(n.value, (bool, int, float, str))):
            return n.value
        if isinstance(n, (ast.List, ast.Tuple)):
            items = [value(e) for e in n.elts]
            return items if isinstance(n, ast.List) else tuple(items)
        if isinstance(n, ast.Dict) and None not in n.keys:
            return {value(k): value(v) for k, v in zip(n.keys, n.values)}
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd)):
            x = number(n.operand)
            return -x if isinstance(n.op, ast.USub) else x
        if isinstance(n, ast.BinOp) and type(n.op) in NUMBER_OPS:
            a, b = number(n.left), number(n.right)
            if isinstance(n.op, ast.Pow) and abs(b) > 64:  # 10 ** 10 ** 9 would take all the memory there is
                raise SystemExit(f"{path}:{n.lineno}: exponent {b} is too large for a config value")
            try:
                return NUMBER_OPS[type(n.op)](a, b)
            except (ArithmeticError, ValueError) as e:
                raise SystemExit(f"{path}:{n.lineno}: {type(e).__name__}: {e}")
        raise SystemExit(f"{path}:{n.lineno}: {_construct(n)} is not allowed in a config value (only literals: "
                         f"numbers, strings, True/False/None, lists/tuples/dicts of them, arithmetic on numbers)")

    def number(n):
        x = value(n)
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise SystemExit(f"{path}:{n.lineno}: arithmetic on {type(x).__name__} {x!r}; only numbers add up")
        return x
    return value(node)


def _construct(node) -> str:
    """How a user would name this piece of Python: "import", "a call of os.system", "a name (dim)"."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return "import"
    if isinstance(node, ast.Call):
        return f"a call of {ast.unparse(node.func)}"
    if isinstance(node, ast.Name):
        return f"a name ({node.id})"
    if isinstance(node, ast.Assign):
        return "an assignment to " + ", ".join(ast.unparse(t) for t in node.targets)
    if isinstance(node, ast.Expr):
        return _construct(node.value) if isinstance(node.value, ast.Call) else "an expression statement"
    return {ast.While: "a while loop", ast.For: "a for loop", ast.If: "an if statement",
            ast.FunctionDef: "a function definition", ast.ClassDef: "a class definition",
            ast.Attribute: "an attribute", ast.AugAssign: "an augmented assignment",
            ast.AnnAssign: "an annotated assignment", ast.With: "a with statement",
            ast.Lambda: "a lambda", ast.Subscript: "a subscript"}.get(type(node), type(node).__name__)


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
