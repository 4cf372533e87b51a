"""Stage caching: a stage is skipped when the fingerprint of its inputs matches the one recorded
when it last ran and its outputs are still there.

A fingerprint is a small dict — the config fields the stage reads, the hashes of the files it reads,
the hash of its own code and the package version — so the log can say *which* part changed.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from nu_keras import __version__, artifacts
from nu_keras.errors import NuKerasError

PACKAGE = Path(__file__).resolve().parent


def file_hash(path: Path) -> str | None:
    """sha256 of a file's bytes, or None when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_hash(folder: Path) -> str | None:
    """One hash over every file below `folder` (names and bytes), or None when it does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(file_hash(path).encode())
    return digest.hexdigest()


def templates_hash(folder: Path) -> str | None:
    """One hash over the Jinja2 templates (`*.j2`) at the top of `folder`: only the files the renderer
    can load, so `--templates` aimed at a big or mixed folder reads nothing else."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.glob("*.j2") if p.is_file()):
        try:
            digest.update(path.name.encode() + file_hash(path).encode())
        except OSError as exc:
            raise NuKerasError(f"cannot read template {path}: {exc.strerror}") from exc
    return digest.hexdigest()


def file_signature(path: Path) -> list | None:
    """What changes whenever a file's content can have changed (path, size, inode, modification and
    status-change times); None when it is not a regular file."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return [str(Path(path).resolve()), info.st_size, info.st_ino, info.st_mtime_ns, info.st_ctime_ns]


def code_hash(functions: tuple[str, ...]) -> str:
    """Hash of a stage's functions, named "module.function" (`function_source`), and of every nu_keras module
    they reach through imports, at any depth.

    Derived, not listed by hand: the sweep calls analysis.py through robustness.py, so editing
    analysis.py re-runs the sweep; editing charts.py re-renders but does not retrain.
    """
    sources = [function_source(function) for function in functions]
    digest = hashlib.sha256("".join(sources).encode())
    for name in sorted(stage_modules(functions)):
        digest.update(name.encode() + file_hash(module_file(name)).encode())
    return digest.hexdigest()


RUN_LOOP = "pipeline"  # imports no stage's module; its own stage bodies import inside them what they use


def stage_modules(functions: tuple[str, ...]) -> set[str]:
    """The nu_keras modules a stage's functions reach, at any depth (relative names): the module each
    function lives in (its helpers and imports are the function's code too) and the modules imported
    inside the function; for a function of the run loop's module, only the latter."""
    homes = {function.rpartition(".")[0] for function in functions} - {RUN_LOOP}
    inner = set().union(*(source_imports(function_source(function), PACKAGE) for function in functions))
    return module_closure(homes | inner)


def function_source(function: str) -> str:
    """The source of a top-level function named "module.function" ("train.run", "charts.units.draw"), read
    from the package's file without importing it: a warm run fingerprints every stage, and importing the
    modules of the stages that need Keras would cost seconds."""
    module, _, name = function.rpartition(".")
    path = module_file(module)
    if path is None:
        raise LookupError(f"no module nu_keras.{module} for {function}")
    found = top_level_functions(path.read_text(encoding="utf-8")).get(name)
    if found is None:
        raise LookupError(f"no function {name} in nu_keras.{module}")
    return found


@functools.lru_cache(maxsize=64)
def top_level_functions(source: str) -> dict[str, str]:
    """A module's top-level functions by name, each with its source lines; parsed once per process.

    Sliced from the module's lines by the nodes' line numbers: `ast.get_source_segment` splits the whole
    source again for every node, which made fingerprinting the stages most of a warm report's time."""
    lines = source.splitlines(keepends=True)
    return {
        node.name: "".join(lines[node.lineno - 1 : node.end_lineno])
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def module_closure(roots: set[str]) -> set[str]:
    """The nu_keras modules reachable from `roots` by import statements (module-level or inside functions)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += source_imports(module_file(name).read_text(encoding="utf-8"), PACKAGE)
    return seen


@functools.lru_cache(maxsize=512)
def source_imports(source: str, package: Path) -> frozenset[str]:
    """`imported_modules` of a source text, parsed once per process: every stage's fingerprint walks
    the same modules, and parsing them all again is most of a warm report's time."""
    return frozenset(imported_modules(ast.parse(source)))


def module_file(name: str) -> Path | None:
    """The file of a package module given relative to nu_keras ("analysis", "charts", "charts.units")."""
    path = PACKAGE.joinpath(*name.split("."))
    return next((f for f in (path.with_suffix(".py"), path / "__init__.py") if f.is_file()), None)


def imported_modules(tree: ast.AST) -> set[str]:
    """The package's modules an AST imports, relative to nu_keras: `from nu_keras import x`,
    `from nu_keras.x import y` (y may itself be a module of package x), `import nu_keras.x.y`; importing a
    module of a subpackage also runs the subpackage's __init__, so that counts as imported too."""
    found = set()
    for node in statements(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "nu_keras":
            base = node.module.split(".")[1:]
            found |= {".".join([*base, alias.name]) for alias in node.names} | ({".".join(base)} if base else set())
        elif isinstance(node, ast.Import):
            found |= {
                alias.name.removeprefix("nu_keras.") for alias in node.names if alias.name.startswith("nu_keras.")
            }
    parents = {".".join(name.split(".")[:i]) for name in found for i in range(1, name.count(".") + 1)}
    return {name for name in found | parents if module_file(name) is not None}


STATEMENT_LISTS = ("body", "orelse", "finalbody", "handlers", "cases")  # where statements nest in statements


def statements(node: ast.AST) -> Iterator[ast.AST]:
    """Every statement below `node`, at any depth (in functions, classes, if, try, with, match), without
    visiting expressions: an import is a statement, and skipping the expressions makes this several times
    faster than `ast.walk`, which a warm report spends most of its time in."""
    for field in STATEMENT_LISTS:
        for child in getattr(node, field, ()):
            yield child
            yield from statements(child)


def fingerprint(config: dict, inputs: dict[str, str | None], functions: tuple[str, ...]) -> dict:
    return {"version": __version__, "code": code_hash(functions), "config": config, "inputs": inputs}


def why_run(new: dict, old: dict | None, outputs_ready: bool, force: bool) -> str | None:
    """The reason a stage must run, or None when its recorded result can be reused."""
    if force:
        return "--force"
    if old is None:
        return "no earlier run recorded"
    if not outputs_ready:
        return "its outputs are missing, were changed, or do not cover this request"
    for part in ("version", "code"):
        if new[part] != old.get(part):
            return f"the {'package version' if part == 'version' else 'stage code'} changed"
    for part in ("config", "inputs"):
        changed = sorted(
            k for k in set(new[part]) | set(old.get(part, {})) if new[part].get(k) != old.get(part, {}).get(k)
        )
        if changed:
            return f"{part} changed: {', '.join(changed)}"
    return None


def read_record(path: Path) -> dict:
    return artifacts.read_json(path) if Path(path).exists() else {}


def write_record(path: Path, stage: str, print_: dict) -> None:
    artifacts.write_json(path, {**read_record(path), stage: print_})
