"""The code base's shape (#12): one import namespace, and the project library never
reaching up into a service."""

from __future__ import annotations

import ast
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE = ("shared", "services", "tests", "bench", "tools")


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def _python_files() -> list[Path]:
    return [p for folder in CODE for p in sorted((ROOT / folder).rglob("*.py"))]


def test_every_import_of_the_project_goes_through_the_slawatch_namespace() -> None:
    # `import shared.x` beside `import slawatch.shared.x` would load the module twice (two
    # metric registries, two settings classes that fail isinstance against each other).
    wrong = [
        f"{path.relative_to(ROOT)}:{line}: import {name}"
        for path in _python_files()
        for line, name in _imports(path)
        if name.split(".")[0] in ("shared", "services")
    ]
    assert wrong == []


def test_the_project_library_never_imports_a_service() -> None:
    upward = [
        f"{path.relative_to(ROOT)}:{line}: import {name}"
        for path in sorted((ROOT / "shared").rglob("*.py"))
        for line, name in _imports(path)
        if name.startswith("slawatch.services")
    ]
    assert upward == []


def test_the_wheel_installs_only_the_slawatch_package(tmp_path: Path) -> None:
    uv = ROOT / ".tools" / "bin" / "uv"
    if not uv.exists():  # `make test` installs it; a bare pytest run without it is a setup error
        pytest.fail("uv is missing: run `make install` first")
    subprocess.run(
        [str(uv), "build", "--wheel", "--quiet", "--out-dir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("slawatch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"slawatch", next(t for t in tops if t.endswith(".dist-info"))}
    # the wheel carries the folders' contents, not the checkout's links
    assert "slawatch/shared/engine/machine.py" in names
    assert "slawatch/services/cli.py" in names
    assert not any("/tests/" in name or name.endswith(".so") for name in names)
    shutil.rmtree(tmp_path, ignore_errors=True)
