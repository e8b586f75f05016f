"""Loading a script of ``benchmarks/`` in a test, by its file path.

``benchmarks/`` itself never goes on ``sys.path`` for good: its ``profile.py`` would shadow
the standard library's ``profile``, which pyspark imports, and every later Spark test would
fail. A script that imports its neighbours (``seed_table`` imports ``peers``, which imports
``throughput``) gets the folder on the path while it loads (``neighbours=True``).
"""

from __future__ import annotations

import importlib.util
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@contextmanager
def benchmarks_on_path():
    """``benchmarks/`` first on ``sys.path`` for the block, then gone again."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield
    finally:
        sys.path.remove(str(BENCHMARKS))


def load_benchmark(name: str, *, module_name: str | None = None, register: bool = False,
                   neighbours: bool = False) -> ModuleType:
    """``benchmarks/NAME.py`` as a module (named ``module_name``, default ``NAME``);
    ``register`` puts it in ``sys.modules`` (forked workers and pickling find it by name)."""
    module_name = module_name or name
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[module_name] = module
    if neighbours:
        with benchmarks_on_path():
            spec.loader.exec_module(module)
    else:
        spec.loader.exec_module(module)
    return module
