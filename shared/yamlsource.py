"""The one reader of slawatch's configuration files (the policy file, the routing file):
YAML with line numbers and ``${VAR}`` substitution, validated by pydantic models.

PyYAML's ``safe_load`` forgets where each value came from and silently keeps the last of
two equal keys; an operator fixing a routing file needs "line 42: unknown key `recevier`".
So we compose the node graph, convert it ourselves, and remember the line of every path.

Environment substitution (when the file may hold secrets: pass ``env``) happens on
string scalars only: ``${VAR}``, ``${VAR:-default}`` and ``$$`` for a literal dollar.
Which paths came from the environment is remembered, so error messages can avoid
echoing values that may be secrets.

A file's rules are declared once, as pydantic models (their JSON Schemas are generated
from them); :func:`refusals` turns a :class:`pydantic.ValidationError` into problems at
paths, which :meth:`Located.line` places on lines. Each file words its problems itself
(policies quote keys 'like this', the routing file `like this`), so the messages people
know stay as they are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Path = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

_SUBST = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|(\{[^}]*\}?))")


class Unresolved(str):
    """A string that referenced an unset ``${VAR}``: already reported (or deliberately
    allowed), so checks of its value would only add noise."""

    __slots__ = ()


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
    # Keys the file repeats, and keys that are not strings: (path of the mapping, key,
    # line), for the file to word (the first of two equal keys is kept).
    duplicate_keys: list[tuple[Path, Any, int]] = field(default_factory=list)
    bad_keys: list[tuple[Path, Any, int]] = field(default_factory=list)

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
    def __init__(self, env: Mapping[str, str] | None, allow_unset_env: bool) -> None:
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
        except ValueError as exc:  # a timestamp-shaped scalar that is no date (2028-02-30)
            self.result.issue(path, f"bad value {node.value!r}: {exc}")
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
            key = (
                self.constructor.construct_object(key_node)
                if isinstance(key_node, ScalarNode)
                else None
            )
            if not isinstance(key, str):
                self.result.bad_keys.append((path, key, line))
                continue
            if key in out:
                self.result.duplicate_keys.append((path, key, line))
                continue
            self.result.lines[path + (key,)] = line
            out[key] = self.convert(value_node, path + (key,))
        return out

    def _substitute(self, text: str, path: Path) -> str:
        env = self.env  # a local, so that the closure below sees it narrowed to not-None
        if env is None or "$" not in text:
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
            if name in env:
                return env[name]
            if default is not None:
                return default
            self.result.unresolved.add(path)  # later checks of this value would only add noise
            if self.allow_unset_env:
                return match.group(0)
            self.result.issue(path, f"{describe(path)}: environment variable {name} is not set")
            return ""

        result = _SUBST.sub(replace, text)
        return Unresolved(result) if path in self.result.unresolved else result


def load_located(
    text: str,
    env: Mapping[str, str] | None = None,
    *,
    allow_unset_env: bool = False,
    syntax: str = "invalid YAML",
) -> Located:
    """Parse YAML text; syntax errors become issues with their line (``syntax: problem``),
    never exceptions. ``env``: substitute ``${VAR}`` from it (None: no substitution)."""
    converter = _Converter(env, allow_unset_env)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        converter.result.issues.append(Issue(line, f"{syntax}: {problem}"))
        return converter.result
    except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML parse error is marked
        converter.result.issues.append(Issue(None, f"{syntax}: {exc}"))
        return converter.result
    if node is None:
        converter.result.data = None
        return converter.result
    converter.result.data = converter.convert(node, ())
    return converter.result


# ---------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Refusal:
    """One problem pydantic found: where (the path of the value; ``at`` moves the line to a
    part of it), what kind (pydantic's error type, or a file's own), its message and context."""

    path: Path
    kind: str
    message: str
    context: Mapping[str, Any]

    @property
    def line_path(self) -> Path:
        return self.path + tuple(self.context.get("at", ()))


def refusals(error: ValidationError) -> list[Refusal]:
    """The problems of a ValidationError, each at the path of the value it is about."""
    out = []
    for item in error.errors(include_url=False):
        path = tuple(part for part in item["loc"] if isinstance(part, str | int))
        out.append(Refusal(path, item["type"], item["msg"], item.get("ctx") or {}))
    return out


def validate(doc: Located, model: type[M], word: Callable[[Refusal], Issue | None]) -> M | None:
    """The document as ``model``, or None with every problem added to ``doc.issues``
    (``word`` turns each into a message with its line)."""
    try:
        return model.model_validate(doc.data)
    except ValidationError as error:
        for refusal in refusals(error):
            issue = word(refusal)
            if issue is not None:
                doc.issues.append(issue)
        return None


def fields_at(model: type[BaseModel], path: Path) -> tuple[str, ...] | None:
    """The keys the model allows in the mapping at ``path`` (None: not a model there)."""
    current: Any = model
    for part in path:
        current = _inner(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                return None
            current = info.annotation
        elif get_origin(current) in (list, tuple) and isinstance(part, int):
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    current = _inner(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return tuple(info.alias or name for name, info in current.model_fields.items())
    return None


def _inner(annotation: Any) -> Any:
    """``X`` of ``Annotated[X, ...]`` and of ``X | None``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation
