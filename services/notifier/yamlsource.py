"""YAML with line numbers and ``${VAR}`` substitution, for configuration files people edit.

PyYAML's ``safe_load`` forgets where each value came from and silently keeps the last of
two equal keys; an operator fixing a routing file needs "line 42: unknown key `recevier`".
So we compose the node graph, convert it ourselves, and remember the line of every path.

Environment substitution happens on string scalars only: ``${VAR}``, ``${VAR:-default}``
and ``$$`` for a literal dollar. Which paths came from the environment is remembered, so
error messages can avoid echoing values that may be secrets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Path = tuple[str | int, ...]

_SUBST = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|(\{[^}]*\}?))")


@dataclass(frozen=True)
class Issue:
    line: int | None
    message: str

    def render(self, source: str) -> str:
        return f"{source}:{self.line}: {self.message}" if self.line else f"{source}: {self.message}"


@dataclass
class Located:
    """A converted document plus where each path came from."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    from_env: set[Path] = field(default_factory=set)
    unresolved: set[Path] = field(default_factory=set)  # referenced unset variables
    issues: list[Issue] = field(default_factory=list)

    def line(self, path: Path) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]

    def issue(self, path: Path, message: str) -> None:
        self.issues.append(Issue(self.line(path), message))


def describe(path: Path) -> str:
    """``("receivers", 0, "url")`` -> ``receivers[0].url`` for messages."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(document)"


class _Converter:
    def __init__(self, env: Mapping[str, str], allow_unset_env: bool) -> None:
        self.env = env
        self.allow_unset_env = allow_unset_env
        self.constructor = SafeConstructor()
        self.result = Located(None)

    def convert(self, node: Node, path: Path) -> Any:
        self.result.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.convert(item, path + (i,)) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        try:
            value = self.constructor.construct_object(node, deep=True)
        except ConstructorError as exc:
            self.result.issue(path, f"bad value: {exc.problem}")
            return None
        if isinstance(value, str) and node.tag == "tag:yaml.org,2002:str":
            return self._substitute(value, path)
        return value

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        try:
            self.constructor.flatten_mapping(node)  # `<<: *anchor` merge keys
        except ConstructorError as exc:
            self.result.issue(path, f"bad merge key: {exc.problem}")
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                self.result.issues.append(Issue(line, "mapping keys must be plain strings"))
                continue
            key = str(key_node.value)
            if key in out:
                self.result.issues.append(Issue(line, f"duplicate key `{key}` in {describe(path)}"))
                continue
            self.result.lines[path + (key,)] = line
            out[key] = self.convert(value_node, path + (key,))
        return out

    def _substitute(self, text: str, path: Path) -> str:
        if "$" not in text:
            return text

        def replace(match: re.Match[str]) -> str:
            dollar, name, default, broken = match.groups()
            if dollar:
                return "$"
            if broken is not None:
                self.result.issue(
                    path,
                    f"{describe(path)}: malformed variable reference; write ${{NAME}}, "
                    "${NAME:-default} or $$ for a dollar sign",
                )
                return ""
            self.result.from_env.add(path)
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            self.result.unresolved.add(path)  # later checks of this value would only add noise
            if self.allow_unset_env:
                return match.group(0)
            self.result.issue(path, f"{describe(path)}: environment variable {name} is not set")
            return ""

        return _SUBST.sub(replace, text)


def load_located(text: str, env: Mapping[str, str], *, allow_unset_env: bool = False) -> Located:
    """Parse YAML text; syntax errors become issues with their line, never exceptions."""
    converter = _Converter(env, allow_unset_env)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        converter.result.issues.append(Issue(line, f"invalid YAML: {problem}"))
        return converter.result
    except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML parse error is marked
        converter.result.issues.append(Issue(None, f"invalid YAML: {exc}"))
        return converter.result
    if node is None:
        converter.result.data = None
        return converter.result
    converter.result.data = converter.convert(node, ())
    return converter.result
