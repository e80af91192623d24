"""Compile the SLA engine's hot modules with mypyc, as C extensions beside their sources.

    python tools/build_native.py          # build in place (what `make install` runs)
    python tools/build_native.py --clean  # remove them: the pure-Python engine runs

Why: the engine is pure, fully typed Python; compiled by mypyc it applies about 1.4 times
as many events per second (bench/engine.py reports which engine it measured). The sources
stay the only implementation: Python imports the compiled module when it is there, and
shared/engine/native.py refuses a compiled engine older than its sources, so an edit
without a rebuild fails loudly instead of running stale code.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _load_native() -> ModuleType:
    """shared/engine/native.py alone: importing the package would refuse a stale build."""
    spec = importlib.util.spec_from_file_location("_slawatch_native", ROOT / "shared/engine/native.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_native = _load_native()
COMPILED: tuple[str, ...] = _native.COMPILED
compiled_files = _native.compiled_files


def clean() -> None:
    for path in compiled_files():
        path.unlink()


def build() -> None:
    from mypyc.build import mypycify
    from setuptools import setup

    clean()  # all or nothing: never a mix of old and new modules
    # Through the slawatch/ namespace links, so mypyc names the modules slawatch.shared.engine.*
    # (the names they are imported by); the extensions land beside the sources in shared/engine.
    sources = [f"slawatch/shared/engine/{name}.py" for name in COMPILED]
    with tempfile.TemporaryDirectory(prefix="slawatch-native-") as tmp:
        modules = mypycify(
            ["--ignore-missing-imports", "--cache-dir", f"{tmp}/mypy", *sources],
            opt_level="3",
            target_dir=f"{tmp}/c",
            group_name="slawatch_engine",
        )
        setup(
            name="slawatch-engine-native",
            packages=[],
            py_modules=[],
            ext_modules=modules,
            script_args=["--quiet", "build_ext", "--inplace", "--build-temp", f"{tmp}/o"],
        )
    built = compiled_files()
    missing = [name for name in COMPILED if not any(p.name.startswith(name + ".") for p in built)]
    if missing:
        raise SystemExit(f"mypyc did not produce: {', '.join(missing)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clean", action="store_true", help="remove the compiled modules")
    args = parser.parse_args()
    os.chdir(ROOT)
    if args.clean:
        clean()
    else:
        build()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
