"""Whether the engine runs compiled (mypyc, tools/build_native.py) or as plain Python.

The compiled modules sit beside their sources and Python prefers them. That is only safe
when they were built from these very sources, all together, so the package checks before
it imports them: a partial set, or one older than a source, stops the import with the
command that fixes it, instead of running stale code.
"""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# Compiled together (they share native classes); policy.py and the rest stay Python.
COMPILED = ("calendar", "codec", "machine", "record", "state", "ticket_log", "views")
# Their source, and the sources whose types they were compiled against.
_INPUTS = (*COMPILED, "policy", "durations")


def compiled_files() -> list[Path]:
    """The compiled engine's files: one extension per module and mypyc's shared library."""
    found = [HERE / f"{name}{suffix}" for name in COMPILED for suffix in EXTENSION_SUFFIXES]
    found += [ROOT / f"slawatch_engine__mypyc{suffix}" for suffix in EXTENSION_SUFFIXES]
    return [path for path in found if path.exists()]


def check() -> bool:
    """True when the compiled engine will be imported; raises ImportError if it must not be."""
    built = {path.name.split(".")[0]: path for path in compiled_files()}
    modules = [name for name in COMPILED if name in built]
    if not modules:
        return False
    fix = "run `make install` to rebuild it, or `python tools/build_native.py --clean` to run the pure-Python engine"
    if len(modules) != len(COMPILED) or "slawatch_engine__mypyc" not in built:
        raise ImportError(f"the compiled SLA engine is incomplete ({', '.join(sorted(built))}): {fix}")
    oldest = min(path.stat().st_mtime for path in built.values())
    for name in _INPUTS:
        source = HERE / f"{name}.py"
        if source.stat().st_mtime > oldest:
            raise ImportError(f"the compiled SLA engine is older than shared/engine/{name}.py: {fix}")
    return True
