"""The core a student reads stays small: its line count is measured here, so that it cannot creep.

    python tests/test_core_size.py                       # the table, as the README's reading order shows it
    python -m pytest -q -s tests/test_core_size.py       # the same table, and the checks

The core is the path from a token file to a trained model and its minimal-pair score: the files in
CORE, whole, and of eval_blimp.py only its scoring rule (the definitions named in CORE). Lines are
lines of the file as a reader sees them: code, docstrings, comments and blank lines alike (`wc -l`).

When a file joins the core (say tokenizer.py is split and tokenizer.py imports the new file), add it
to CORE; a repository module that a core file imports must be in CORE or in OUTSIDE_CORE, so that
code cannot leave the count by moving to a new file.
"""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# file -> None (the whole file) or the top-level definitions that count (functions, classes, assignments)
CORE = {
    "model.py": None,
    "tokenizer.py": None,
    "data.py": None,
    "configurator.py": None,
    "train.py": None,
    "checkpoint.py": None,
    "load.py": None,
    "machine.py": None,
    "eval_blimp.py": ("score_sentence", "Protocol", "PROTOCOLS", "credit"),  # "the scoring rule"
}
MAX_CORE_LINES = 2600

# repository modules a core file imports that are deliberately not core, and why
OUTSIDE_CORE = {
    "atomic": "writing a file or folder atomically: a utility, not an idea of the trainer",
    "distributed": "DDP's ranks and its failures: needed for several GPUs only",
    "mixer": "TAAM, the multilingual mixer: an extension of the loop",
    "export_hf": "the Transformers boundary (load.py reads an exported folder through it)",
    "bpe_fast": "the same ids as tokenizer.py's BPE, faster (tiktoken): a speed-up, not an idea",
    "tokenizer_backends": "SentencePiece and OpenAI's tiktoken files: other tokenizers, loaded only when used",
    "pairs": "reading minimal-pair files (eval_blimp.py, outside its scoring rule)",
    "report": "plots and tables of runs (eval_blimp.py checks for matplotlib with report.pyplot before --png)",
    "eval_outputs": "what eval_blimp.py writes: per-pair files, the BabyLM results tree, the learning curve",
    "meter": "what a run prints while it trains (progress bar, speed, eval lines): display, not training",
    "stopping": "how a run stops on Ctrl-C or SIGTERM (a checkpoint, then 128 + the signal): reliability, not training",
    "babylm": "the challenge's rules and the end of a run (make the data, score, export): around the loop, not in it",
}


def definition_lines(tree, name):
    """Lines of the top-level definition `name`, from its first decorator to its last line."""
    for node in tree.body:
        names = [node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else \
            [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        if name in names:
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            return node.end_lineno - first + 1
    raise AssertionError(f"CORE names {name!r}, which is not a top-level definition of its file: edit CORE")


def core_lines():
    """{file: lines that count}, in CORE's order."""
    counts = {}
    for name, definitions in CORE.items():
        path = os.path.join(ROOT, name)
        assert os.path.isfile(path), f"CORE names {name}, which does not exist: edit CORE in {__file__}"
        with open(path, encoding="utf-8") as f:
            source = f.read()
        if definitions is None:
            counts[name] = len(source.splitlines())
        else:
            tree = ast.parse(source)
            counts[name] = sum(definition_lines(tree, d) for d in definitions)
    return counts


def table(counts):
    rows = [f"| {name}{'' if CORE[name] is None else ' (' + ', '.join(CORE[name]) + ')'} | {n:,} |"
            for name, n in counts.items()]
    return "\n".join(["| core file | lines |", "|---|---|", *rows, f"| total | {sum(counts.values()):,} |"])


def test_the_core_is_under_2600_lines():
    counts = core_lines()
    print("\n" + table(counts))
    assert sum(counts.values()) < MAX_CORE_LINES, \
        f"the core is {sum(counts.values())} lines, over {MAX_CORE_LINES}: move what is not core out, or say why"


def test_every_repository_module_a_core_file_imports_is_core_or_named_as_outside_it():
    modules = {n[:-3] for n in os.listdir(ROOT) if n.endswith(".py")}
    core = {n[:-3] for n in CORE}
    for name in CORE:
        with open(os.path.join(ROOT, name), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        imported = {a.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
        unplaced = sorted((imported & modules) - core - set(OUTSIDE_CORE))
        assert not unplaced, f"{name} imports {unplaced}: add each to CORE or OUTSIDE_CORE in {__file__}"


def test_the_readmes_reading_order_gives_each_files_lines_and_the_cores_total():
    """The line counts a student is promised are the files' (row "14", the tests, is rounded)."""
    import re
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    rows = re.findall(r"^\| \d+ \| (.*?) \| ([\d,+ ]+) \|", readme, re.M)
    assert len(rows) >= 10, "README.md: the reading order table is gone or changed shape"
    wrong = []
    for files, counts in rows:
        names = re.findall(r"\[`([\w/.]+\.py)`\]", files)
        if not names:  # the tests/ folder
            continue
        given = [int(n.replace(",", "")) for n in counts.split("+")]
        actual = [len(open(os.path.join(ROOT, n), encoding="utf-8").read().splitlines()) for n in names]
        if given != actual:
            wrong.append(f"{' + '.join(names)}: {' + '.join(map(str, actual))} lines, the table says {counts.strip()}")
    assert not wrong, "README.md reading order:\n" + "\n".join(wrong)
    total = sum(core_lines().values())
    assert f"is {total:,} lines" in readme, f"README.md: the core is {total:,} lines; say so under the reading order"


if __name__ == "__main__":
    print(table(core_lines()))
