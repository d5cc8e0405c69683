"""Read YAML text safely into plain Python data, remembering the line of every value.

Uses PyYAML's safe composer only (no object construction beyond standard scalars), then converts the
node tree itself so that it can (a) record ``path -> line`` for error messages, (b) cap the number of
nodes an alias-heavy document may expand to (billion-laughs bombs) and the nesting depth, and (c) reject
custom tags, merge keys and duplicate keys instead of silently accepting them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from boundcalc.errors import SpecError

#: largest spec file read; specs are hand-written and tiny
MAX_BYTES = 1_000_000
#: most values a document may expand to once aliases are followed (stops billion-laughs bombs)
MAX_NODES = 50_000
#: deepest nesting of mappings/sequences (stops stack exhaustion)
MAX_DEPTH = 40

Path = tuple[str | int, ...]
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: the only integer and float spellings read as numbers; YAML 1.1's others (sexagesimal ``1:30`` = 90, octal
#: ``010`` = 8, ``0x10``, ``0b11``, ``1_000``, ``.inf``, ``.nan``) are refused rather than silently converted
_PLAIN_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)\Z")
_PLAIN_FLOAT = re.compile(r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\Z")
_NUMBER_FORMS = {"tag:yaml.org,2002:int": _PLAIN_INT, "tag:yaml.org,2002:float": _PLAIN_FLOAT}
_STANDARD_TAGS = {
    "tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "seq", "map")
}


@dataclass(frozen=True)
class YamlDocument:
    """Plain data (dicts, lists, scalars) plus the 1-based line of each path."""

    data: Any
    lines: dict[Path, int]
    file: str

    def line_of(self, path: Path) -> int | None:
        """Line of ``path``, or of its nearest recorded ancestor."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def format_path(path: Path) -> str:
    """``('layers', 3, 'out')`` -> ``layers[3].out``; a key that is not a plain name is quoted,
    ``data['a\\nb']``, so the path stays on one line whatever the file contains."""
    text = ""
    for part in path:
        if isinstance(part, int) or not _PLAIN_KEY.match(part):
            text += f"[{part!r}]"
        else:
            text += f".{part}" if text else part
    return text


def _short(value: str, limit: int = 40) -> str:
    """``value`` cut to ``limit`` characters for an error line (a 5,000-digit literal is not echoed)."""
    return value if len(value) <= limit else value[:limit] + "…"


def read_yaml(text: str, file: str) -> YamlDocument:
    """Parse ``text``; raises :class:`SpecError` with the file and line for any YAML problem."""
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        raise SpecError(f"file larger than {MAX_BYTES} bytes; a spec is a short hand-written file", file=file)
    loader = None
    try:
        loader = yaml.SafeLoader(text)   # the reader rejects control characters here, before parsing
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        problem = (err.problem or err.context or "invalid YAML").strip()
        raise SpecError(f"YAML syntax error: {problem}", file=file, line=line) from None
    except yaml.YAMLError as err:
        raise SpecError(f"YAML error: {str(err).splitlines()[0]}", file=file) from None
    except RecursionError:
        raise SpecError("YAML nested too deeply", file=file) from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        raise SpecError("the file is empty; expected a mapping with 'data' and 'layers'", file=file)
    converter = _Converter(file, yaml.SafeLoader(""))
    data = converter.convert(node, (), 0)
    return YamlDocument(data=data, lines=converter.lines, file=file)


class _Converter:
    def __init__(self, file: str, constructor: yaml.SafeLoader) -> None:
        self.file = file
        self.constructor = constructor
        self.lines: dict[Path, int] = {}
        self.count = 0

    def fail(self, message: str, node: yaml.Node, path: Path) -> SpecError:
        return SpecError(message, file=self.file, line=node.start_mark.line + 1,
                         path=format_path(path) or None)

    def convert(self, node: yaml.Node, path: Path, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(f"document expands to more than {MAX_NODES} values (YAML alias bomb?)", node, path)
        if depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} levels", node, path)
        self.lines.setdefault(path, node.start_mark.line + 1)
        if node.tag not in _STANDARD_TAGS:
            raise self.fail(f"YAML tag {node.tag!r} is not allowed (plain YAML only)", node, path)
        if isinstance(node, yaml.ScalarNode):
            plain = _NUMBER_FORMS.get(node.tag)
            if plain is not None and not plain.match(node.value):
                raise self.fail(f"{_short(node.value)!r} is not a plain decimal number (YAML 1.1 would read it as a "
                                f"{'base-60, octal, hex or other implicit ' if 'int' in node.tag else 'special '}"
                                "form); write the number in decimal, or quote an expression", node, path)
            try:
                return self.constructor.construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError, OverflowError):
                raise self.fail(f"cannot read the value {_short(node.value)!r}", node, path) from None
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise self.fail("YAML merge keys ('<<') are not supported; write the keys out", key_node, path)
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail("mapping keys must be plain names", key_node, path)
            key = str(key_node.value)
            if key in result:
                raise self.fail(f"duplicate key {key!r}", key_node, path + (key,))
            self.lines[path + (key,)] = key_node.start_mark.line + 1
            result[key] = self.convert(value_node, path + (key,), depth + 1)
        return result
