"""The package's shape: data flows one way (no import cycles, lower stages never import higher
ones), no function is too long to read at once, and the README stays a guide."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "asr"
# The stages that use the others: the training loop, scoring, adaptation, the inference facade, transcription,
# streaming and the command line. Every other module is a lower layer and imports none of these.
HIGHER = {"train", "evaluate", "adapt", "recognizer", "transcribe", "stream", "cli"}
MAX_FUNCTION_LINES = 80
MAX_README_LINES = 200  # a guide read in minutes: figures and history belong in the RESULTS files


def package_imports(source: str) -> set[str]:
    """The package modules ``source`` imports, at module level, inside functions or under ``if
    TYPE_CHECKING:`` (an import for annotations is a dependency too)."""
    imported: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                imported.add(node.module.split(".")[0])
            elif node.level == 1:  # from . import x
                imported.update(alias.name for alias in node.names)
            elif node.module and node.module.split(".")[0] == "asr" and "." in node.module:
                imported.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            imported.update(a.name.split(".")[1] for a in node.names if a.name.startswith("asr."))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return imported


def import_graph() -> dict[str, set[str]]:
    modules = {path.stem: path for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    return {name: package_imports(path.read_text()) & set(modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path of module names (first == last), or [] when there is none."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = "open"
        stack.append(name)
        for other in sorted(graph[name]):
            if state.get(other) == "open":
                return stack[stack.index(other) :] + [other]
            if other not in state and (cycle := visit(other)):
                return cycle
        stack.pop()
        state[name] = "done"
        return []

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)):
            return cycle
    return []


def test_the_walker_sees_imports_inside_functions_and_for_type_checking():
    source = (
        "from typing import TYPE_CHECKING\nfrom .audio import load_audio\nimport asr.text\n"
        "if TYPE_CHECKING:\n    from .recognizer import Recognizer\n"
        "def f():\n    from .transcribe import transcribe\n    from . import lm\n"
    )
    assert package_imports(source) == {"audio", "text", "recognizer", "transcribe", "lm"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_a_module_that_imports_it_back():
    assert find_cycle(import_graph()) == []


def test_lower_layers_import_nothing_from_the_stages_above_them():
    upward = {
        f"{name} imports {other}"
        for name, imports in import_graph().items()
        if name not in HIGHER
        for other in imports & HIGHER
    }
    assert not upward


def test_no_function_in_the_package_is_longer_than_80_lines():
    long = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({lines} lines)")
    assert not long


def test_the_readme_stays_a_guide_of_at_most_200_lines():
    lines = (PACKAGE.parent / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines"
