"""
How the top-level files import each other, as a specification: the arrows form no circle, and
every one of them is at the top of its file, where a reader sees it.

    python -m pytest tests/test_imports.py -q

The files are discovered (every *.py next to README.md), not listed, and only imports of one of
them count: torch, transformers or matplotlib imported inside a function is no arrow between
our files. A circle (a imports b, b imports a) means neither file can be read, or imported, without
the other; an import hidden in a function is how a circle usually starts.
"""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (file, the repo file it imports inside a function): why it must be there. Keep this short.
INSIDE_A_FUNCTION_ALLOWED = {
    ("tokenizer", "tokenizer_backends"): "SentencePiece and the tiktoken files load only for a tokenizer that uses "
                                         "them: the ByteLevel BPE a student reads never opens that file (no circle: "
                                         "tokenizer_backends imports only bpe_fast)",
}


def repo_modules() -> set:
    return {f[:-3] for f in os.listdir(ROOT) if f.endswith(".py")}


def imports(module: str, modules: set) -> list:
    """(imported repo module, line, inside a function?) for every import in module's file."""
    with open(os.path.join(ROOT, module + ".py"), encoding="utf-8") as f:
        tree = ast.parse(f.read(), module + ".py")
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [child.module]
            else:
                names = []
            found.extend((n.split(".")[0], child.lineno, in_function) for n in names if n.split(".")[0] in modules)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return found


def import_graph() -> dict:
    modules = repo_modules()
    return {m: imports(m, modules) for m in sorted(modules)}


def find_circle(graph: dict):
    """One circle of imports as a list of modules [a, b, ..., a], or None."""
    arrows = {m: sorted({target for target, _, _ in found}) for m, found in graph.items()}
    state = {}  # module -> "open" while on the current path, "done" once all it reaches is searched

    def search(m, path):
        state[m] = "open"
        for target in arrows[m]:
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                circle = search(target, path + [target])
                if circle:
                    return circle
        state[m] = "done"
        return None

    for m in arrows:
        if m not in state:
            circle = search(m, [m])
            if circle:
                return circle
    return None


def test_the_files_import_each_other_without_a_circle():
    circle = find_circle(import_graph())
    assert circle is None, f"import circle: {' -> '.join(f'{m}.py' for m in circle)}"


def test_every_import_of_a_repo_file_is_at_the_top_of_its_file():
    hidden = [f"{m}.py:{line} imports {target} inside a function"
              for m, found in import_graph().items() for target, line, in_function in found
              if in_function and (m, target) not in INSIDE_A_FUNCTION_ALLOWED]
    assert not hidden, "\n".join(hidden)


def test_the_allow_list_names_only_imports_that_are_still_there():
    inside = {(m, target) for m, found in import_graph().items() for target, _, in_function in found if in_function}
    stale = sorted(set(INSIDE_A_FUNCTION_ALLOWED) - inside)
    assert not stale, f"INSIDE_A_FUNCTION_ALLOWED lists imports no longer inside a function: {stale}"


def test_a_circle_is_found_and_named():
    """The search itself: a circle through an import inside a function counts too."""
    graph = {"a": [("b", 1, False)], "b": [("c", 1, False)], "c": [("a", 9, True)], "d": [("a", 1, False)]}
    assert find_circle(graph) == ["a", "b", "c", "a"]
    assert find_circle({"a": [("b", 1, False)], "b": [], "c": [("a", 1, True)]}) is None
