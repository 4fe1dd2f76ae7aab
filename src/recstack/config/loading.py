"""Reading a run config: YAML file, ``--set key.path=value`` overrides, validation with messages a person can act on."""

from __future__ import annotations

import copy
import difflib
import os
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ValidationError

from recstack.config.errors import ConfigError
from recstack.config.registry import check_model_params, model_entry
from recstack.config.schema import RunConfig


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping a YAML config file holds; `ConfigError` naming the file when it is missing or malformed."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a directory: give a YAML config file (see configs/ for examples)")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found: give the path of a YAML file (see configs/)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if raw is None:
        raise ConfigError(f"{path} is empty: a config needs at least the data and model sections")
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections (data:, model:...), got a {type(raw).__name__}"
        )
    return raw


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``raw`` with each ``key.path=value`` set; the value is read as YAML (``5``, ``0.1``, ``[64, 32]``,
    ``null``), so its type is checked by the schema like the file's; list items are addressed by index."""
    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key.path=value, e.g. --set trainer.epochs=5")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        parts = key.split(".")
        node: Any = out
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
                    raise ConfigError(f"--set {key}: {where} is not an index of a list of {len(node)} items")
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
                continue
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {'.'.join(parts[:depth])} is a value, not a section with keys")
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
    return out


def validate(raw: dict[str, Any], source: str = "config") -> RunConfig:
    """A `RunConfig` from a mapping; `ConfigError` with one line per problem, each naming the key path."""
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: e.get("type") != "extra_forbidden")
        lines: dict[str, str] = {}
        for err in errors:
            key, line = describe_error(err)
            if key in lines:  # a union reports each member's mismatch: the first line already names them all
                lines[key] = lines[key].split(" (", 1)[0]
            else:
                lines[key] = line
        raise ConfigError("\n".join(f"{source}: {line}" for line in lines.values())) from None
    try:
        check_model_params(model_entry(config.model.name), config.model.params)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return config


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> RunConfig:
    """Read, override and validate the config at ``path``."""
    return validate(apply_overrides(read_yaml(path), overrides), str(path))


def dump_config(config: RunConfig) -> str:
    """The resolved config as YAML (every default written out), readable by `load_config`."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, default_flow_style=None, width=120)


# ---- error messages --------------------------------------------------------------------------------------


def describe_error(err: dict[str, Any]) -> tuple[str, str]:
    """(key path, one line) for one pydantic error: the key path, what is wrong, and what is expected."""
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        path, _, model = _walk(loc[:-1])
        key = str(loc[-1])
        full = f"{path}.{key}" if path else key
        valid = list(model.model_fields) if model is not None else []
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return full, f"{full}: unknown key; {hint}valid keys here: {', '.join(valid)}"
    path, annotation, _ = _walk(loc)
    path = path or "(top level)"
    if kind == "missing":
        return path, f"{path}: required key missing (expected {describe_type(annotation)})"
    msg = str(err.get("msg", "invalid value"))
    if kind in ("value_error", "assertion_error"):
        return path, f"{path}: {msg.removeprefix('Value error, ').removeprefix('Assertion failed, ')}"
    got = err.get("input")
    return path, f"{path}: expected {describe_type(annotation)}, got {_short(got)} ({msg[:1].lower() + msg[1:]})"


def _short(value: Any) -> str:  # noqa: ANN401
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _walk(loc: tuple[Any, ...]) -> tuple[str, Any, type[BaseModel] | None]:
    """(dotted key path, annotation, section model) of a pydantic error location, skipping union member tags."""
    model: type[BaseModel] | None = RunConfig
    annotation: Any = RunConfig
    path = ""
    for item in loc:
        if isinstance(item, int):
            element = _list_element(annotation)
            if element is not None:
                path += f".{item}"
                annotation = element
                model = _section(element)
            continue
        if model is not None and item in model.model_fields:
            path = f"{path}.{item}" if path else str(item)
            field = model.model_fields[item]
            annotation = typing.Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
            model = _section(annotation)
        elif _is_mapping(annotation):
            path = f"{path}.{item}" if path else str(item)
            annotation = Any
            model = None
    return path, annotation, model


def _members(annotation: Any) -> list[Any]:  # noqa: ANN401
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    return [annotation]


def _section(annotation: Any) -> type[BaseModel] | None:  # noqa: ANN401
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _list_element(annotation: Any) -> Any:  # noqa: ANN401
    for member in _members(annotation):
        if typing.get_origin(member) is list:
            return typing.get_args(member)[0]
    return None


def _is_mapping(annotation: Any) -> bool:  # noqa: ANN401
    return any(typing.get_origin(m) is dict or m is dict for m in _members(annotation))


def describe_type(annotation: Any) -> str:  # noqa: ANN401
    """A reader's name for a field's type: ``an integer > 0``, ``one of 'adam', 'sgd'``, ``a list of strings``..."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        bounds = [
            f"{op} {getattr(m, attr)}"
            for m in meta
            for attr, op in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
            if getattr(m, attr, None) is not None
        ]
        return describe_type(base) + (f" {' and '.join(bounds)}" if bounds else "")
    if origin in (Union, types.UnionType):
        args = typing.get_args(annotation)
        named = [describe_type(a) for a in args if a is not type(None)]
        text = " or ".join(named)
        return text + (" (or null)" if type(None) in args else "")
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin is list:
        (element,) = typing.get_args(annotation) or (Any,)
        return f"a list of {_plural(describe_type(element))}"
    if origin is dict or annotation is dict:
        return "a mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"a mapping with keys {', '.join(annotation.model_fields)}"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _plural(text: str) -> str:
    for article in ("an ", "a "):
        if text.startswith(article):
            head, _, rest = text[len(article) :].partition(" ")
            return f"{head}s {rest}".strip()
    return text
