"""Mutation testing of the trainer, its schedules and early stopping, and the analysis stage.

Run from the repository root (about 15 minutes on 2 cores):

    .venv/bin/python tools/mutation_test.py            # the default modules and tests
    .venv/bin/python tools/mutation_test.py --modules cnnlab.train.schedules --jobs 1
    .venv/bin/python tools/mutation_test.py --out mutation.md   # the survivors, for a note

Each mutant is one small change to one module (a comparison flipped, `+` made `-`, a constant
moved by one, `and` made `or`, a statement removed, a returned value made None). It is killed
when a test that runs its line fails (or errors, or hangs); it survives when they all pass.

Why our own and not mutmut or cosmic-ray: mutmut 3 copies the tree into `mutants/` and juggles
`sys.path`, which the editable install of `src/` defeats (the tests imported the unmutated
package); cosmic-ray starts a fresh interpreter per mutant, and importing torch costs about 3 s
of the 1 s a mutant's tests take. Here one parent imports the heavy libraries once and forks a
child per mutant; the child serves the mutated module from memory through an import hook (no
file is ever changed, so two children run side by side) and runs only the tests that executed
the mutated line, fastest first, stopping at the first failure.

What is not mutated, and why: strings (messages and labels; a changed message fails no
behaviour a test could pin without copying the text), docstrings, type annotations, `__all__`,
and logging calls.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import importlib.abc
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

REPOSITORY = Path(__file__).resolve().parents[1]
# The run works on a copy of the tree taken when it starts (see ``snapshot``), so that editing
# the code while it runs (it takes a while) cannot kill a mutant by accident.
ROOT = REPOSITORY
SRC = ROOT / "src"
SNAPSHOT = ("src", "tests", "examples", "pyproject.toml")

DEFAULT_MODULES = [
    "cnnlab.train.trainer",
    "cnnlab.train.schedules",
    "cnnlab.train.early_stopping",
    "cnnlab.analysis.comparisons",
    "cnnlab.analysis.findings",
    "cnnlab.analysis.selection",
    "cnnlab.analysis.statistics",
    "cnnlab.analysis.study",
    "cnnlab.analysis.tables",
]
# The unit tests of these modules. The end-to-end suites (tests/execute, tests/report) also run
# this code, but a mutant that only they catch is a gap in the unit tests, and they cost seconds
# per mutant.
DEFAULT_TESTS = ["tests/train", "tests/analysis"]
# A mutant runs the tests that executed its line, fastest first, until their measured time adds
# up to this (a mutant that no fast test notices is unlikely to be caught by a slow one).
TEST_SECONDS_PER_MUTANT = 20.0
# Imported once in the parent so that each forked child starts warm. cnnlab itself must not be
# imported here: the child imports it fresh, through the hook, with the one module mutated.
WARM_IMPORTS = ["numpy", "scipy.stats", "torch", "yaml", "pydantic", "pytest", "hypothesis",
                "matplotlib", "matplotlib.pyplot", "jinja2", "sklearn.metrics"]


# ---------------------------------------------------------------------------------------------
# Mutation operators


_SWAP_COMPARE = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
                 ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
                 ast.In: ast.NotIn, ast.NotIn: ast.In}
_SWAP_BINARY = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
                ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult}
_SWAP_BOOL = {ast.And: ast.Or, ast.Or: ast.And}
_QUIET_CALLS = {"debug", "info", "warning", "log"}


@dataclass(frozen=True)
class Mutation:
    index: int          # the n-th mutation point of the module, in walk order
    line: int
    end_line: int
    before: str
    after: str


def _is_quiet_call(node: ast.AST) -> bool:
    """A logging call, whose removal changes only what is printed."""
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute)
            and node.value.func.attr in _QUIET_CALLS)


def _is_docstring(node: ast.AST, parent: Optional[ast.AST]) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


class _Mutator(ast.NodeTransformer):
    """Walks a module; counts mutation points, and applies the one numbered `target`."""

    def __init__(self, target: Optional[int]) -> None:
        self.target = target
        self.count = 0
        self.found: list[Mutation] = []

    def _point(self, node: ast.AST, mutated: ast.AST) -> ast.AST:
        index = self.count
        self.count += 1
        if self.target is None:
            self.found.append(Mutation(index, node.lineno, node.end_lineno or node.lineno,
                                       _show(node), _show(mutated)))
            return node
        if index == self.target:
            return ast.copy_location(mutated, node)
        return node

    # Annotations, f-strings and `__all__` carry no behaviour worth mutating.
    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_arguments(self, node: ast.arguments) -> ast.AST:
        node.defaults = [self.visit(d) for d in node.defaults]
        node.kw_defaults = [d if d is None else self.visit(d) for d in node.kw_defaults]
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.args = self.visit(node.args)
        node.body = self._visit_body(node.body)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.body = self._visit_body(node.body)
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return node

    def _visit_body(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in body:
            result = self.visit(stmt)
            if isinstance(result, list):
                out.extend(result)
            elif result is not None:
                out.append(result)
        return out or [ast.Pass()]

    def generic_visit(self, node: ast.AST) -> ast.AST:
        for name, value in ast.iter_fields(node):
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                setattr(node, name, self._visit_body(value))
            elif isinstance(value, list):
                setattr(node, name, [self.visit(v) if isinstance(v, ast.AST) else v
                                     for v in value])
            elif isinstance(value, ast.AST):
                setattr(node, name, self.visit(value))
        return node

    # -- statements
    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        if _is_docstring(node, None) or _is_quiet_call(node):
            return node
        node = self.generic_visit(node)
        return self._point(node, ast.Pass())

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return node
        node = self.generic_visit(node)
        mutated = copy.copy(node)
        mutated.value = ast.Constant(None)
        return self._point(node, mutated)

    def _swap_operator(self, node: ast.AST, table: dict) -> ast.AST:
        """The mutation point that replaces ``node.op`` by its partner in ``table``, if it has one."""
        swap = table.get(type(node.op))
        if swap is None:
            return node
        mutated = copy.copy(node)
        mutated.op = swap()
        return self._point(node, mutated)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        return self._swap_operator(self.generic_visit(node), _SWAP_BINARY)

    def visit_Return(self, node: ast.Return) -> ast.AST:
        node = self.generic_visit(node)
        if node.value is None or isinstance(node.value, ast.Constant):
            return node                     # a returned constant is mutated as a constant
        return self._point(node, ast.Return(ast.Constant(None)))

    def visit_Break(self, node: ast.Break) -> ast.AST:
        return self._point(node, ast.Continue())

    def visit_Continue(self, node: ast.Continue) -> ast.AST:
        return self._point(node, ast.Break())

    # -- expressions
    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        node = self.generic_visit(node)
        for position, op in enumerate(node.ops):
            swap = _SWAP_COMPARE.get(type(op))
            if swap is None:
                continue
            mutated = copy.copy(node)
            mutated.ops = list(node.ops)
            mutated.ops[position] = swap()
            node = self._point(node, mutated)
            if not isinstance(node, ast.Compare):
                break
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node = self.generic_visit(node)
        if isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
            return node                         # string formatting with %
        return self._swap_operator(node, _SWAP_BINARY)

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        return self._swap_operator(self.generic_visit(node), _SWAP_BOOL)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        node = self.generic_visit(node)
        if isinstance(node.op, (ast.Not, ast.USub)):
            return self._point(node, node.operand)
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if isinstance(value, bool):
            return self._point(node, ast.Constant(not value))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return self._point(node, ast.Constant(value + 1))
        return node


def _show(node: ast.AST) -> str:
    if isinstance(node, ast.Pass):
        return "(removed)"
    text = ast.unparse(node).splitlines()[0]
    return text if len(text) <= 100 else text[:97] + "..."


def module_file(module: str) -> Path:
    return SRC / (module.replace(".", "/") + ".py")


def list_mutations(module: str) -> list[Mutation]:
    tree = ast.parse(module_file(module).read_text())
    mutator = _Mutator(target=None)
    mutator.visit(tree)
    return mutator.found


def mutated_code(module: str, index: int):
    path = module_file(module)
    tree = _Mutator(target=index).visit(ast.parse(path.read_text()))
    ast.fix_missing_locations(tree)
    return compile(tree, str(path), "exec")


class _ServeMutant(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Hands out the mutated module in place of the file on disk."""

    def __init__(self, module: str, code) -> None:
        self.module, self.code = module, code

    def find_spec(self, name, path=None, target=None):
        if name != self.module:
            return None
        return importlib.util.spec_from_file_location(name, module_file(name), loader=self)

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        exec(self.code, module.__dict__)  # noqa: S102 - our own source, one operator changed


# ---------------------------------------------------------------------------------------------
# Which tests run which lines


class _LineRecorder:
    """A pytest plugin: for each test, the lines of the target modules it executed."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files                          # file path -> module name
        self.current: Optional[set] = None
        self.imports: set = set()
        self.lines: dict[str, list] = {}
        self.durations: dict[str, float] = {}

    def _trace(self, frame, event, arg):
        module = self.files.get(frame.f_code.co_filename)
        if module is None:
            return None
        seen = self.current

        def local(frame, event, arg):
            if event == "line" and seen is not None:
                seen.add((module, frame.f_lineno))
            return local
        if seen is not None:
            seen.add((module, frame.f_lineno))
        return local

    def start(self) -> None:
        # Lines run while no test runs (imports during collection: class bodies, dataclass
        # defaults, module constants) belong to every test that uses the module.
        self.current = self.imports = set()
        sys.settrace(self._trace)

    def pytest_runtest_setup(self, item):
        self.current = set()
        self.started = time.perf_counter()
        sys.settrace(self._trace)
        threading.settrace(self._trace)

    def pytest_runtest_logreport(self, report):
        if report.when != "teardown":
            return
        threading.settrace(None)
        self.durations[report.nodeid] = time.perf_counter() - self.started
        self.lines[report.nodeid] = sorted(self.current or ())
        self.current = self.imports
        sys.settrace(self._trace)


def _pytest_args(tests: list[str]) -> list[str]:
    return [*tests, "-q", "-x", "-p", "no:cacheprovider", "-o", "addopts=", "--no-header",
            "-W", "ignore", "--rootdir", str(ROOT)]


def _fork(job, timeout: float) -> tuple[str, float]:
    """Runs `job()` in a forked child; its exit code decides. Returns (outcome, seconds)."""
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:                                     # the child
        code = 3
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            code = job()
        finally:
            os._exit(code if isinstance(code, int) else 3)
    deadline = started + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            return ("passed" if code == 0 else "failed"), time.perf_counter() - started
        if time.perf_counter() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout", time.perf_counter() - started
        time.sleep(0.02)


def map_tests(modules: list[str], tests: list[str]) -> tuple[dict, dict]:
    files = {str(module_file(m)): m for m in modules}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "map.json"

        def job() -> int:
            import pytest
            recorder = _LineRecorder(files)
            recorder.start()
            args = [a for a in _pytest_args(tests) if a != "-x"]
            code = pytest.main(args, plugins=[recorder])
            sys.settrace(None)
            out.write_text(json.dumps({"lines": recorder.lines,
                                       "imports": sorted(recorder.imports),
                                       "durations": recorder.durations}))
            return int(code)

        outcome, seconds = _fork(job, timeout=3600)
        if not out.exists() or outcome != "passed":
            sys.exit(f"the unmutated tests do not pass ({outcome}); fix them first: "
                     f"pytest {' '.join(tests)}")
        data = json.loads(out.read_text())
    covering: dict[tuple[str, int], set[str]] = {}
    users: dict[str, set[str]] = {}
    for nodeid, lines in data["lines"].items():
        for module, line in lines:
            covering.setdefault((module, line), set()).add(nodeid)
            users.setdefault(module, set()).add(nodeid)
    for module, line in data["imports"]:
        covering.setdefault((module, line), set()).update(users.get(module, ()))
    print(f"mapped {len(data['durations'])} tests in {seconds:.0f} s", flush=True)
    return covering, data["durations"]


# ---------------------------------------------------------------------------------------------
# The run


@dataclass
class Outcome:
    module: str
    mutation: Mutation
    result: str                 # killed, timeout, survived, not covered
    seconds: float = 0.0
    tests: list[str] = field(default_factory=list)


def _run_mutant(module: str, mutation: Mutation, tests: list[str], timeout: float) -> Outcome:
    def job() -> int:
        os.environ["CNNLAB_MUTANT"] = f"{module}:{mutation.index}"
        try:
            code = mutated_code(module, mutation.index)
        except (SyntaxError, ValueError):
            return 4                             # an uncompilable mutant counts as killed
        sys.meta_path.insert(0, _ServeMutant(module, code))
        import pytest
        return int(pytest.main(_pytest_args(tests)))

    result, seconds = _fork(job, timeout)
    verdict = {"passed": "survived", "failed": "killed", "timeout": "timeout"}[result]
    return Outcome(module, mutation, verdict, seconds, tests)


_LISTED = re.compile(r"^- (?P<path>\S+?):(?P<line>\d+): `(?P<before>.*)` -> `(?P<after>.*)`")


def listed_mutants(path: Path) -> set[tuple[str, int, str, str]]:
    """(file, line, before, after) of each survivor listed in an earlier run's ``--out`` file."""
    found = set()
    for text in path.read_text().splitlines():
        match = _LISTED.match(text)
        if match:
            found.add((match["path"], int(match["line"]), match["before"], match["after"]))
    return found


def run(modules: list[str], tests: list[str], jobs: int,
        only: Optional[set[tuple[str, int, str, str]]] = None) -> list[Outcome]:
    for name in WARM_IMPORTS:
        with contextlib.suppress(ImportError):       # only a head start; the child imports it anyway
            __import__(name)
    covering, durations = map_tests(modules, tests)
    pending: list[tuple[str, Mutation, list[str], float]] = []
    outcomes: list[Outcome] = []
    for module in modules:
        for mutation in list_mutations(module):
            key = (str(module_file(module).relative_to(ROOT)), mutation.line, mutation.before,
                   mutation.after)
            if only is not None and key not in only:
                continue
            found: set[str] = set()
            for line in range(mutation.line, mutation.end_line + 1):
                found.update(covering.get((module, line), ()))
            if not found:
                outcomes.append(Outcome(module, mutation, "not covered"))
                continue
            ordered = []
            spent = 0.0
            for nodeid in sorted(found, key=lambda n: durations.get(n, 0.0)):
                if ordered and spent + durations.get(nodeid, 0.0) > TEST_SECONDS_PER_MUTANT:
                    break
                ordered.append(nodeid)
                spent += durations.get(nodeid, 0.0)
            budget = 10.0 + 3.0 * sum(durations.get(n, 0.0) for n in ordered)
            pending.append((module, mutation, ordered, budget))
    total = len(pending) + len(outcomes)
    print(f"{total} mutants, {len(outcomes)} on lines no test runs; {jobs} at a time",
          flush=True)
    from concurrent.futures import ThreadPoolExecutor
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_run_mutant, m, mu, t, b) for m, mu, t, b in pending]
        for done, future in enumerate(futures, 1):
            outcome = future.result()
            outcomes.append(outcome)
            if outcome.result == "survived":     # shown at once: the run is long
                print(f"  survived: {module_file(outcome.module).relative_to(ROOT)}:"
                      f"{outcome.mutation.line}: {outcome.mutation.before} -> "
                      f"{outcome.mutation.after}", flush=True)
            if done % 20 == 0 or done == len(futures):
                killed = sum(o.result in ("killed", "timeout") for o in outcomes)
                print(f"  {done}/{len(futures)} run, {killed} killed so far, "
                      f"{time.perf_counter() - started:.0f} s", flush=True)
    return outcomes


def summarize(outcomes: list[Outcome]) -> str:
    lines = ["| module | mutants | killed | of which by timeout | survived | not covered | score |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    modules = sorted({o.module for o in outcomes}, key=lambda m: m)
    for module in [*modules, "all"]:
        chosen = [o for o in outcomes if module in ("all", o.module)]
        killed = sum(o.result in ("killed", "timeout") for o in chosen)
        timeouts = sum(o.result == "timeout" for o in chosen)
        survived = sum(o.result == "survived" for o in chosen)
        uncovered = sum(o.result == "not covered" for o in chosen)
        score = 100.0 * killed / max(len(chosen), 1)
        lines.append(f"| {module} | {len(chosen)} | {killed} | {timeouts} | {survived} | {uncovered} | "
                     f"{score:.1f}% |")
    lines += ["", "Survivors (file:line: before -> after):", ""]
    for o in sorted(outcomes, key=lambda o: (o.module, o.mutation.line, o.mutation.index)):
        if o.result in ("survived", "not covered"):
            path = module_file(o.module).relative_to(ROOT)
            tag = "" if o.result == "survived" else " [no test runs this line]"
            lines.append(f"- {path}:{o.mutation.line}: `{o.mutation.before}` -> "
                         f"`{o.mutation.after}`{tag}")
    return "\n".join(lines)


def snapshot(into: Path, source_at: Optional[str] = None) -> None:
    """Copy what the tests need into ``into`` and import cnnlab from there (the editable install
    puts ``src`` on ``sys.path``; the copy goes in front of it). With ``source_at``, ``src`` is
    and ``tests`` are taken from that commit instead of the working tree."""
    global ROOT, SRC
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    into.mkdir(parents=True)
    for name in SNAPSHOT:
        source = REPOSITORY / name
        if name in ("src", "tests") and source_at:
            archive = subprocess.run(["git", "-C", str(REPOSITORY), "archive", source_at, name],
                                     check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
        elif source.is_dir():
            shutil.copytree(source, into / name, ignore=ignore)
        else:
            shutil.copy2(source, into / name)
    shared = REPOSITORY.parent / "shared"
    if shared.exists():
        (into.parent / "shared").symlink_to(shared)   # tests look for ../shared beside the root
    ROOT, SRC = into, into / "src"
    sys.path.insert(0, str(SRC))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    os.chdir(ROOT)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--modules", nargs="+", default=DEFAULT_MODULES,
                        help="dotted module names to mutate (default: trainer, schedules, "
                             "early stopping, analysis)")
    parser.add_argument("--tests", nargs="+", default=DEFAULT_TESTS,
                        help="test files or folders whose tests may kill a mutant")
    parser.add_argument("--jobs", type=int, default=max(1, min(os.cpu_count() or 1, 8)),
                        help="mutants run at once (default: the CPU count, at most 8)")
    parser.add_argument("--list", action="store_true",
                        help="only list the mutation points, run nothing")
    parser.add_argument("--source-at", metavar="COMMIT",
                        help="take src/ and tests/ as they are at this commit (default: the working tree)")
    parser.add_argument("--survivors", type=Path, metavar="FILE",
                        help="run only the mutants listed as survivors in an earlier --out file")
    parser.add_argument("--out", type=Path, help="also write the summary (Markdown) here")
    args = parser.parse_args(argv)
    if args.out:
        args.out = args.out.resolve()
    if args.survivors:
        args.survivors = args.survivors.resolve()
    os.chdir(ROOT)
    os.environ.setdefault("OMP_NUM_THREADS", "1")   # one thread per child: jobs share the cores
    if args.list:
        for module in args.modules:
            for m in list_mutations(module):
                print(f"{module}:{m.line}: {m.before} -> {m.after}")
        return 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cnnlab-mutants-") as tree:
        snapshot(Path(tree) / "cnnlab", args.source_at)
        only = listed_mutants(args.survivors) if args.survivors else None
        outcomes = run(args.modules, args.tests, args.jobs, only)
        text = summarize(outcomes)
    print(text)
    print(f"\n{len(outcomes)} mutants in {time.perf_counter() - started:.0f} s")
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
