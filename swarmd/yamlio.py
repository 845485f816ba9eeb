"""YAML in one place: safe load, a stable dump, and errors that name the file, the field and the value."""

from __future__ import annotations

import reprlib
from typing import Any, TypeVar

import pydantic
import yaml

from swarmd.errors import ValidationError

Model = TypeVar("Model", bound=pydantic.BaseModel)


# libyaml's C parser when PyYAML was built with it (its wheels are): a task file parses in 0.15 ms
# instead of 0.7, and a daemon with a hundred agents reads one per event. Not its emitter: it escapes
# characters outside the BMP (an emoji) and then gives up `|` literals, and people and agents read these.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Dumper(yaml.SafeDumper):
    """Block style, multi-line text as `|` literals, keys in the order the model declares them."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)


class _TextLoader(_SafeLoader):  # type: ignore[misc, valid-type]
    """Every unquoted scalar but `null` stays text: a task id `2.10` is not the float 2.1, and a title
    `yes` is not a boolean. The models turn text back into numbers where a field wants one."""


_TextLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag == "tag:yaml.org,2002:null"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def load(text: str | bytes, source: str, *, numbers: bool = True) -> Any:
    """Parse YAML safely; bytes must be UTF-8. A syntax error names `source` and the line. With
    `numbers=False`, unquoted scalars other than null are read as text."""
    if isinstance(text, bytes):
        text = decode(text, source)
    try:
        data = yaml.load(text, Loader=_SafeLoader if numbers else _TextLoader)
    except yaml.YAMLError as exc:
        line = _line(text, exc)
        where = f" line {line}:" if line is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValidationError([f"{source}:{where} not valid YAML: {problem}"]) from None
    except RecursionError:
        raise ValidationError([f"{source}: not valid YAML: nested too deeply"]) from None
    _check_expanded_size(data, source, max(2 * len(text), 4096))
    return data


def _check_expanded_size(data: Any, source: str, budget: int) -> None:
    """YAML aliases let a small file stand for a huge structure (`notes: [*a, *a, ...]`, nested): every
    later step (validating, dumping, a repr in an error) would walk it whole. Count what it expands to,
    stopping as soon as it is more than twice the text."""
    left = budget
    stack = [data]
    while stack:
        item = stack.pop()
        left -= 1 + (len(item) if isinstance(item, str) else 0)
        if left < 0:
            raise ValidationError([f"{source}: expands to far more than its own size (YAML aliases?); "
                                   "write every value out instead"])
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def decode(data: bytes, source: str) -> str:
    """Strict UTF-8; a bad byte is named with its offset and line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ValidationError([
            f"{source}: line {line}: not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}; "
            "save the file as UTF-8"
        ]) from None


def _line(text: str, exc: yaml.YAMLError) -> int | None:
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow: it has an offset
        if _SafeLoader is yaml.SafeLoader:
            return text.count("\n", 0, exc.position) + 1
        return text.encode("utf-8", "surrogatepass").count(b"\n", 0, exc.position) + 1  # libyaml counts bytes
    return None


def parse(model: type[Model], data: Any, source: str) -> Model:
    """Validate loaded YAML against a model; every problem becomes one line naming the field."""
    if not isinstance(data, dict):
        raise ValidationError([f"{source}: expected a mapping of keys to values, found {_describe(data)}"])
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError([_problem(source, err) for err in exc.errors()]) from None


def load_model(model: type[Model], text: str | bytes, source: str, *, numbers: bool = True) -> Model:
    return parse(model, load(text, source, numbers=numbers), source)


def _problem(source: str, err: Any) -> str:
    field = ".".join(str(part) for part in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"{source}: field `{field}`: unknown key (check its spelling; see the documented keys)"
    if err["type"] == "missing":
        return f"{source}: field `{field}`: required, but missing"
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return f"{source}: field `{field}`: {message} (got {_describe(err.get('input'))})"


_SHORT = reprlib.Repr()  # Python 3.11 takes no arguments here
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlevel = 3


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    text = _SHORT.repr(value)  # bounded, however large the value
    return text if len(text) <= 60 else text[:57] + "..."
