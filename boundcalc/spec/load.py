"""Load a YAML spec into a validated, resolved :class:`Spec` (expressions parsed to sympy).

Every error is a :class:`SpecError` naming the file, the line and the field, e.g.
``mlp.yaml:14 layers[3].spectral: unknown symbol 'Bb' (declared: B, gamma). Did you mean 'B'?``
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any, Union

import sympy as sp

from boundcalc.errors import ExpressionError, SpecError
from boundcalc.files import FileInputError, read_bytes
from boundcalc.spec.attention import AttentionFields
from boundcalc.spec.attention import expand as expand_attention
from boundcalc.spec.expr import NAME_PATTERN, NAMES_IN_TEXT, parse_expression
from boundcalc.spec.field_errors import validate as _validate
from boundcalc.ops import OPS
from boundcalc.spec.model import RawRepeat, RawSpec
from boundcalc.spec.yaml_source import MAX_BYTES, Path, YamlDocument, format_path, read_yaml
from boundcalc.symbols import SymbolTable, reserved_reason

#: most layers a spec may have once numeric repeats are unrolled; a 1.5 KB spec (or --set L=10000) could
#: otherwise ask for a graph of millions of nodes. A symbolic count keeps the closed form at any depth.
MAX_LAYERS = 5_000
LAYER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,47}\Z")
RESERVED_NAMES = {"input"}
#: fields whose names are integer symbols (repeat counts)
INTEGER_FIELDS = frozenset({"count"})


@dataclass(frozen=True)
class Layer:
    """One operation. ``params`` holds parsed values (sympy expressions or ints)."""

    name: str
    op: str
    inputs: tuple[str, ...] | None
    params: dict[str, Any]
    path: Path
    line: int | None


@dataclass(frozen=True)
class Repeat:
    """A block of layers applied ``count`` times; ``index`` names the iteration (1-based)."""

    name: str
    count: sp.Expr
    index: sp.Symbol
    body: tuple["Item", ...]
    inputs: tuple[str, ...] | None
    path: Path
    line: int | None


Item = Union[Layer, Repeat]


@dataclass(frozen=True)
class Data:
    samples: sp.Expr
    shape: tuple[sp.Expr, ...]
    norm: sp.Expr
    norm_note: str


@dataclass(frozen=True)
class Loss:
    lipschitz: sp.Expr
    delta: sp.Expr
    note: str
    margin: sp.Expr | None = None   # γ when the loss is the ramp loss of a margin


@dataclass(frozen=True)
class Spec:
    """A validated spec: data, layers (with nested repeats), output name, loss, symbols."""

    name: str
    file: str
    data: Data
    layers: tuple[Item, ...]
    output: str | None
    loss: Loss
    symbols: SymbolTable = field(repr=False)
    document: YamlDocument = field(repr=False)
    values: dict[str, sp.Expr] = field(default_factory=dict)
    #: names in the fields a data file or an option measures: samples, norm, margin, delta (m, gamma, delta …)
    data_names: frozenset[str] = frozenset()

    def error(self, path: Path, message: str, hint: str | None = None) -> SpecError:
        """A :class:`SpecError` located at ``path`` of this spec's YAML."""
        return SpecError(message, file=self.file, line=self.document.line_of(path),
                         path=format_path(path) or None, hint=hint)


def load_spec(source: str | FsPath, values: dict[str, float | int] | None = None) -> Spec:
    """Read and validate a spec file. ``values`` fixes symbols to numbers (e.g. ``{"L": 3}`` unrolls)."""
    path = FsPath(source)
    try:   # a regular file only (a FIFO would block, /dev/zero never ends), size checked before reading
        raw = read_bytes(path, "spec", MAX_BYTES, "MAX_BYTES")
    except FileInputError as err:
        raise SpecError(f"cannot read the spec: {err.reason}", file=str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError("the spec is not UTF-8 text", file=str(path)) from None
    return parse_spec(text, file=str(path), values=values)


def parse_spec(text: str, file: str = "<spec>", values: dict[str, float | int] | None = None) -> Spec:
    """Like :func:`load_spec`, from text already in memory."""
    document = read_yaml(text, file)
    if not isinstance(document.data, dict):
        raise SpecError("expected a mapping with 'data' and 'layers' at the top level", file=file, line=1)
    raw = _validate(RawSpec, document.data, document, ())
    return _Resolver(document, raw, values or {}).spec()


def unrolled_size(items: tuple[Item, ...] | list[Item]) -> int:
    """Number of layers once every numeric repeat is unrolled (a symbolic repeat counts its body once)."""
    total = 0
    for item in items:
        if isinstance(item, Repeat):
            times = int(item.count) if item.count.is_number else 1
            total += times * unrolled_size(item.body)
        else:
            total += 1
    return total


def _integer_valued(expr: sp.Expr) -> bool:
    """An integer, or a polynomial with integer coefficients in size symbols (which stand for positive integers:
    ``h``, ``2*h``, ``h*k + 1``); ``h/2`` and ``sqrt(h)`` are not."""
    if expr.is_integer:
        return True
    if expr.is_number or not expr.is_polynomial(*expr.free_symbols):
        return False
    return all(c.is_integer for c in sp.Poly(expr, *expr.free_symbols).coeffs())


class _Resolver:
    """Turns a validated RawSpec into a resolved Spec: names, symbols, parsed expressions."""

    def __init__(self, document: YamlDocument, raw: RawSpec, values: dict[str, float | int]) -> None:
        self.document = document
        self.raw = raw
        self.file = document.file
        self.values = {k: parse_expression(v, lambda n: sp.Symbol(n)) for k, v in values.items()}
        self.declared = set(raw.symbols) if raw.symbols is not None else None
        self.counters: dict[str, int] = {}
        self.names: dict[str, Path] = {}
        self.integers: set[str] = set()
        self._collect_integer_names(document.data)
        self.table = SymbolTable(self.integers, fixed=self.values)
        self.scope_index: dict[str, sp.Symbol] = {}
        self._check_declared()

    # -- errors and expressions -------------------------------------------------------------
    def fail(self, path: Path, message: str, hint: str | None = None) -> SpecError:
        return SpecError(message, file=self.file, line=self.document.line_of(path),
                         path=format_path(path) or None, hint=hint)

    def expr(self, value: Any, path: Path) -> sp.Expr:
        def resolve(name: str) -> sp.Expr:
            if name in self.scope_index:
                return self.scope_index[name]
            reserved = reserved_reason(name)
            if reserved is not None:
                raise ExpressionError(reserved)
            if self.declared is not None and name not in self.declared and name not in self.integers:
                known = sorted(self.declared | self.integers)
                close = difflib.get_close_matches(name, known, n=1)
                raise ExpressionError(f"unknown symbol {name!r} (declared: {', '.join(known) or 'none'})"
                                      + (f". Did you mean {close[0]!r}?" if close else ""))
            return self.table(name)

        try:
            return parse_expression(value, resolve)
        except ExpressionError as err:
            raise self.fail(path, str(err)) from None

    def positive(self, value: Any, path: Path, what: str) -> sp.Expr:
        result = self.expr(value, path)
        if result.is_number and not result.is_positive:
            raise self.fail(path, f"{what} must be positive, got {result}")
        if result.is_positive is False:
            raise self.fail(path, f"{what} must be positive, got {result}")
        return result

    def size(self, value: Any, path: Path, what: str) -> sp.Expr:
        """A size (width, channels, rank, samples, dimension): a positive integer, or an integer-valued
        expression of size symbols (which are declared integers), e.g. ``h``, ``2*h``, ``h + 1``."""
        result = self.positive(value, path, what)
        if not _integer_valued(result):
            kind = "a positive integer" if result.is_number else "integer-valued (e.g. h, 2*h, h*k)"
            raise self.fail(path, f"{what} must be {kind}, got {result}")
        return result

    def _check_declared(self) -> None:
        """Declared names are plain ASCII names (a reserved one is refused where an expression uses it)."""
        for i, name in enumerate(self.raw.symbols or ()):
            if not NAME_PATTERN.match(name):
                raise self.fail(("symbols", i), f"symbol {name!r} is not a plain ASCII name (a letter, then "
                                "letters, digits or _)")

    def _collect_integer_names(self, data: Any) -> None:
        """Names in repeat counts are integer symbols."""
        if isinstance(data, list):
            for value in data:
                self._collect_integer_names(value)
        elif isinstance(data, dict):
            for key, value in data.items():
                if key in INTEGER_FIELDS and isinstance(value, (str, list)):
                    for text in value if isinstance(value, list) else [value]:
                        if isinstance(text, str):
                            self.integers.update(NAMES_IN_TEXT.findall(text))
                elif isinstance(value, (dict, list)):
                    self._collect_integer_names(value)

    # -- the spec ------------------------------------------------------------------------------
    def spec(self) -> Spec:
        data = self.data()
        layers = self.items(self.raw.layers, ("layers",))
        loss = self.loss()
        raw_data, raw_loss = self.raw.data, self.raw.loss
        data_names = {name for value in (raw_data.samples, raw_data.norm, raw_loss.delta,
                                         (raw_loss.margin or "gamma") if raw_loss.lipschitz is None else None)
                      if isinstance(value, str) for name in NAMES_IN_TEXT.findall(value)}
        output = self.raw.output
        if output is not None and output not in self.names:
            raise self.fail(("output",), f"output {output!r} is not a layer name",
                            hint=self._suggest(output, self.names))
        size = unrolled_size(layers)
        if size > MAX_LAYERS:
            raise self.fail(("layers",), f"the network has {size} layers once numeric repeats are unrolled; the limit "
                            f"is {MAX_LAYERS} (keep a repeat count symbolic for a closed form at any depth)")
        name = self.raw.name or FsPath(self.file).stem
        return Spec(name=name, file=self.file, data=data, layers=tuple(layers), output=output,
                    loss=loss, symbols=self.table, document=self.document, values=self.values,
                    data_names=frozenset(data_names))

    def data(self) -> Data:
        raw = self.raw.data
        samples = self.size(raw.samples, ("data", "samples"), "samples")
        if (raw.dim is None) == (raw.shape is None):
            raise self.fail(("data",), "give exactly one of 'dim' (vector inputs; with 'tokens' for "
                            "sequences) or 'shape' ([channels, height, width] for images)")
        if raw.tokens is not None and raw.dim is None:
            raise self.fail(("data", "tokens"), "'tokens' needs 'dim' (sequence data: each sample is tokens × dim)")
        if raw.dim is not None:
            shape = (self.size(raw.dim, ("data", "dim"), "dim"),)
            if raw.tokens is not None:
                shape = (self.size(raw.tokens, ("data", "tokens"), "tokens"),) + shape
        else:
            shape = tuple(self.size(v, ("data", "shape", i), "shape entry") for i, v in enumerate(raw.shape))
        if raw.norm == "frobenius":
            norm, note = self.table("X_F"), "input norm: X_F = ‖X‖_F of the data matrix"
        elif raw.norm == "max":
            norm = sp.sqrt(samples) * self.table("R")
            note = "input norm: ‖X‖_F ≤ sqrt(m)·R with R = max_i ‖x_i‖"
        else:
            norm = self.positive(raw.norm, ("data", "norm"), "norm")
            note = f"input norm: ‖X‖_F ≤ {norm} (from the spec)"
        return Data(samples=samples, shape=shape, norm=norm, norm_note=note)

    def loss(self) -> Loss:
        raw = self.raw.loss
        delta = self.positive(raw.delta, ("loss", "delta"), "delta")
        if delta.is_number and delta >= 1:
            raise self.fail(("loss", "delta"), f"delta must be in (0, 1), got {delta}")
        if raw.lipschitz is not None and raw.margin is not None:
            raise self.fail(("loss",), "give either 'lipschitz' or 'margin', not both")
        if raw.lipschitz is not None:
            lip = self.positive(raw.lipschitz, ("loss", "lipschitz"), "lipschitz")
            return Loss(lip, delta, f"loss is {lip}-Lipschitz in the network output, values in [0, 1]")
        margin = self.positive(raw.margin if raw.margin is not None else "gamma", ("loss", "margin"), "margin")
        return Loss(sp.sqrt(2) / margin, delta,
                    f"ramp loss with margin {margin}: Lipschitz sqrt(2)/{margin} in the output "
                    "(multiclass margin map is sqrt(2)-Lipschitz, Bartlett et al. 2017 Lemma 3.1)", margin=margin)

    # -- layers ----------------------------------------------------------------------------------
    def items(self, raw_items: list[Any], path: Path) -> list[Item]:
        out: list[Item] = []
        for i, raw in enumerate(raw_items):
            if isinstance(raw, dict) and raw.get("op") == "attention":
                out += self.attention(raw, path + (i,), out[-1].name if out else "input")
            else:
                out.append(self.item(raw, path + (i,)))
        return out

    def attention(self, raw: dict, path: Path, previous: str) -> list[Layer]:
        """The layers the ``attention`` composite stands for (:mod:`boundcalc.spec.attention`)."""
        model = _validate(AttentionFields, raw, self.document, path)
        if model.inputs is not None and len(model.inputs) != 1:
            raise self.fail(path + ("inputs",), "attention reads one layer (self-attention)")
        name = self.layer_name(model.name, "attn", path)
        layers = []
        for sub in expand_attention(self, model, name, (model.inputs or [previous])[0], path):
            kind = OPS[sub["op"]]
            self.names[sub["name"]] = path
            params = kind.params(self, _validate(kind.fields, sub, self.document, path), path)
            layers.append(Layer(name=sub["name"], op=sub["op"], inputs=tuple(sub["inputs"]), params=params,
                                path=path, line=self.document.line_of(path)))
        return layers

    def item(self, raw: Any, path: Path) -> Item:
        if isinstance(raw, str):
            raw = {"op": raw}
        if not isinstance(raw, dict):
            raise self.fail(path, f"expected a layer (a mapping with 'op', or an op name), found {raw!r}")
        if "repeat" in raw:
            if set(raw) != {"repeat"}:
                raise self.fail(path, "a repeat item holds only 'repeat:' (put name/count/index/body inside it)")
            return self.repeat(raw["repeat"], path + ("repeat",))
        op = raw.get("op")
        if op is None:
            raise self.fail(path, f"layer has no 'op' (one of: {', '.join(OPS)}, attention)")
        if not isinstance(op, str) or op not in OPS:
            raise self.fail(path + ("op",), f"unknown op {op!r} (known: {', '.join(OPS)}, attention)",
                            hint=self._suggest(str(op), [*OPS, "attention"]))
        kind = OPS[op]
        model = _validate(kind.fields, raw, self.document, path)
        name = self.layer_name(model.name, kind.prefix, path)
        params = kind.params(self, model, path)
        line = self.document.line_of(path)
        return Layer(name=name, op=op, inputs=tuple(model.inputs) if model.inputs else None,
                     params=params, path=path, line=line)

    def repeat(self, raw: Any, path: Path) -> Repeat:
        if not isinstance(raw, dict):
            raise self.fail(path, "repeat needs a mapping with count, index and body")
        model = _validate(RawRepeat, raw, self.document, path)
        name = self.layer_name(model.name, "repeat", path)
        if model.index is None:
            raise self.fail(path, "repeat declares no index; add e.g. 'index: t' (it numbers the "
                            "iterations 1..count and indexes per-layer symbols)")
        if not NAME_PATTERN.match(model.index) or model.index in self.scope_index:
            raise self.fail(path + ("index",), f"index {model.index!r} must be a new plain name")
        count = self.expr(model.count, path + ("count",))
        if count.is_number:
            if not (count.is_integer and count >= 1):
                raise self.fail(path + ("count",), f"count must be a positive integer or a symbol, got {count}")
            if count > MAX_LAYERS:
                raise self.fail(path + ("count",), f"count {count} is too large to unroll (the limit is {MAX_LAYERS} "
                                "layers); use a symbol such as L for a closed form")
        elif not count.is_integer:
            raise self.fail(path + ("count",), f"count {count} is not integer-valued")
        index = sp.Symbol(model.index, positive=True, integer=True)
        self.scope_index[model.index] = index
        try:
            body = self.items(model.body, path + ("body",))
        finally:
            del self.scope_index[model.index]
        return Repeat(name=name, count=count, index=index, body=tuple(body),
                      inputs=tuple(model.inputs) if model.inputs else None, path=path,
                      line=self.document.line_of(path))

    def layer_name(self, given: str | None, prefix: str, path: Path) -> str:
        """``given``, checked; else ``prefix`` with the next free number (fc1, fc2, relu1 …)."""
        if given is None:
            n = self.counters.get(prefix, 0) + 1
            while f"{prefix}{n}" in self.names:
                n += 1
            self.counters[prefix] = n
            given = f"{prefix}{n}"
        elif not LAYER_NAME.match(given) or given in RESERVED_NAMES:
            raise self.fail(path + ("name",), f"layer name {given!r} is not allowed (letters, digits, _; "
                            "starts with a letter; 'input' is reserved)")
        if given in self.names:
            first = self.document.line_of(self.names[given])
            raise self.fail(path + ("name",), f"duplicate layer name {given!r} (first used on line {first})")
        self.names[given] = path
        return given

    @staticmethod
    def _suggest(name: str, known: Any) -> str | None:
        close = difflib.get_close_matches(name, list(known), n=1)
        return f"Did you mean {close[0]!r}?" if close else None
