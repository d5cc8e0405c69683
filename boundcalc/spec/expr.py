"""A restricted parser for the expressions written inside specs (``2*B``, ``1/gamma``, ``sqrt(h)``).

Grammar: numbers, names, ``+ - * / **``, unary minus, parentheses, and calls of the whitelisted
functions in :data:`FUNCTIONS`. The text goes through ``ast.parse(mode="eval")`` and only the node kinds
below are accepted (adapted from pint's ``pint_eval``); nothing is ever passed to ``eval``, ``sympify``
or ``parse_expr``. Attribute access, indexing, lambdas, comprehensions, strings, keywords and calls of
anything else are rejected with one sentence naming the construct.
"""
from __future__ import annotations

import ast
import math
import re
import warnings
from collections.abc import Callable

import sympy as sp

from boundcalc.errors import ExpressionError

#: longest accepted expression; stops pathological inputs before the AST is built
MAX_LENGTH = 200
#: deepest accepted AST; stops stack exhaustion from inputs such as "((((...))))" or "-(-(-(...)))"
MAX_DEPTH = 24
#: largest integer literal; stops huge numbers from turning into slow arbitrary-precision arithmetic
MAX_INT = 10**15
#: largest |exponent| when the exponent is a number; stops CPU bombs such as 9**9**9
MAX_EXPONENT = 64
#: largest |log10| of any number an expression computes, literal or not: ((9**64)**64)**64 passes the literal
#: caps but has 250,000 digits, and exp(exp(100)) cannot be held at all; 1e±300 is what a float64 can hold
MAX_LOG10 = 300

FUNCTIONS: dict[str, tuple[Callable[..., sp.Expr], int | None]] = {
    "sqrt": (sp.sqrt, 1),
    "log": (sp.log, 1),
    "exp": (sp.exp, 1),
    "abs": (sp.Abs, 1),
    "min": (sp.Min, None),
    "max": (sp.Max, None),
}
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi}
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}\Z")
#: smallest non-zero magnitude of a number (literal or --set value)
MIN_MAGNITUDE = 1e-15
#: the names an expression's text mentions (before parsing), e.g. to collect repeat-count symbols
NAMES_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def in_accepted_range(value: float) -> bool:
    """Zero, or a magnitude in MIN_MAGNITUDE..MAX_INT: what a spec literal and a --set value may be."""
    return value == 0 or MIN_MAGNITUDE <= abs(value) <= MAX_INT

_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}

Resolver = Callable[[str], sp.Expr]


def parse_expression(text: str | int | float, resolve: Resolver) -> sp.Expr:
    """Parse ``text`` into a sympy expression; names are turned into symbols by ``resolve``.

    Raises :class:`ExpressionError` for anything outside the grammar; ``resolve`` may raise it too
    (for an undeclared name).
    """
    if isinstance(text, bool):
        raise ExpressionError(f"expected a number or an expression, got the boolean {text}")
    if isinstance(text, int):
        return _number(text, str(text))
    if isinstance(text, float):
        return _number(text, str(text))
    if not isinstance(text, str):
        raise ExpressionError(f"expected a number or an expression, got {type(text).__name__}")
    source = text.strip()
    if not source:
        raise ExpressionError("empty expression")
    if not source.isascii():     # Python folds identifiers by NFKC: '𝐁' would silently become 'B'
        char = next(c for c in source if not c.isascii())
        raise ExpressionError(f"non-ASCII character {char!r} (U+{ord(char):04X}); expressions use ASCII names, "
                              "numbers and + - * / **", source[:40])
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_LENGTH} characters", source[:40] + "…")
    try:
        with warnings.catch_warnings():          # e.g. "invalid hexadecimal literal" for '0x1for': the error says it
            warnings.simplefilter("ignore")
            tree = ast.parse(source, mode="eval")
    except SyntaxError:
        raise ExpressionError("not a valid expression (syntax error)", source) from None
    except (ValueError, MemoryError, RecursionError):
        raise ExpressionError("not a valid expression", source) from None
    result = _Converter(source, resolve).visit(tree.body, 1)
    if result.is_real is False or result.has(sp.I):
        raise ExpressionError("the expression is not a real number", source)
    return result


def _number(value: int | float, source: str) -> sp.Expr:
    if isinstance(value, int):
        if abs(value) > MAX_INT:
            raise ExpressionError(f"integer literal larger than {MAX_INT:.0e}", source)
        return sp.Integer(value)
    if not math.isfinite(value):
        raise ExpressionError("number is not finite", source)
    if not in_accepted_range(value):
        raise ExpressionError("number outside the accepted range 1e-15..1e15", source)
    return sp.Rational(repr(value))


class _Converter:
    def __init__(self, source: str, resolve: Resolver) -> None:
        self.source = source
        self.resolve = resolve

    def fail(self, message: str) -> ExpressionError:
        return ExpressionError(message, self.source)

    def visit(self, node: ast.AST, depth: int) -> sp.Expr:
        return self.checked(self.convert(node, depth))

    def checked(self, value: sp.Expr) -> sp.Expr:
        """``value`` if it is defined, finite and of a size a float can hold; else the reason."""
        if value.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
            raise self.fail("the expression is undefined or infinite (a division by zero?)")
        if value.is_number:
            magnitude = abs(value.evalf(20))
            if not magnitude.is_finite:
                raise self.fail("the expression is undefined or infinite")
            if magnitude != 0 and not (-MAX_LOG10 <= math.log10(magnitude) <= MAX_LOG10):
                raise self.fail(f"a value in the expression is outside 1e-{MAX_LOG10}..1e{MAX_LOG10}")
        for power in value.atoms(sp.Pow):
            if power.exp.is_number and abs(power.exp) > MAX_EXPONENT:
                raise self.fail(f"an exponent grows beyond {MAX_EXPONENT}")
        return value

    def convert(self, node: ast.AST, depth: int) -> sp.Expr:
        if depth > MAX_DEPTH:
            raise self.fail(f"expression nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise self.fail(f"only numbers are allowed as literals, found {type(node.value).__name__}")
            return _number(node.value, self.source)
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return -self.visit(node.operand, depth + 1)
            if isinstance(node.op, ast.UAdd):
                return self.visit(node.operand, depth + 1)
            raise self.fail(f"operator {type(node.op).__name__} is not allowed (only + - * / **)")
        if isinstance(node, ast.BinOp):
            return self.binary(node, depth)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        raise self.fail(f"{_describe(node)} is not allowed (only numbers, names, + - * / ** and "
                        f"{', '.join(FUNCTIONS)})")

    def name(self, name: str) -> sp.Expr:
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in FUNCTIONS:
            raise self.fail(f"function {name!r} used as a value")
        if not NAME_PATTERN.match(name):
            raise self.fail(f"name {name!r} is not allowed (names start with a letter: letters, digits, _)")
        return self.resolve(name)

    def binary(self, node: ast.BinOp, depth: int) -> sp.Expr:
        left = self.visit(node.left, depth + 1)
        right = self.visit(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            if right.is_number and abs(right) > MAX_EXPONENT:
                raise self.fail(f"numeric exponent larger than {MAX_EXPONENT}")
            if left.is_number and _is_zero(left) and right.is_number and not right.is_positive:
                raise self.fail("division by zero")
            if left.is_number and right.is_number and not _is_zero(left):
                self.check_log10(float(right) * math.log10(abs(float(left.evalf(20)))))
            return left**right
        if isinstance(node.op, ast.Div) and _is_zero(right):
            raise self.fail("division by zero")
        op = _BINARY.get(type(node.op))
        if op is None:
            raise self.fail(f"operator {type(node.op).__name__} is not allowed (only + - * / **)")
        return op(left, right)

    def call(self, node: ast.Call, depth: int) -> sp.Expr:
        if not isinstance(node.func, ast.Name):
            raise self.fail(f"only plain calls of {', '.join(FUNCTIONS)} are allowed, found {_describe(node.func)}")
        entry = FUNCTIONS.get(node.func.id)
        if entry is None:
            raise self.fail(f"function {node.func.id!r} is not allowed (allowed: {', '.join(FUNCTIONS)})")
        if node.keywords:
            raise self.fail(f"keyword arguments are not allowed in {node.func.id}()")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail("starred arguments are not allowed")
        func, arity = entry
        if arity is not None and len(node.args) != arity:
            raise self.fail(f"{node.func.id}() takes {arity} argument(s), got {len(node.args)}")
        if arity is None and len(node.args) < 2:
            raise self.fail(f"{node.func.id}() takes at least 2 arguments")
        args = [self.visit(a, depth + 1) for a in node.args]
        if node.func.id == "log" and args[0].is_number and (_is_zero(args[0]) or args[0].evalf(20) < 0):
            raise self.fail("log of a non-positive number")
        if node.func.id == "sqrt" and args[0].is_number and args[0].evalf(20) < 0:
            raise self.fail("sqrt of a negative number")
        if node.func.id == "exp" and args[0].is_number:
            self.check_log10(float(args[0].evalf(20)) / math.log(10))
        return func(*args)

    def check_log10(self, log10: float) -> None:
        """Refuse a result whose size (log10 of its magnitude) was estimated before computing it."""
        if not abs(log10) <= MAX_LOG10:
            raise self.fail(f"a value in the expression is outside 1e-{MAX_LOG10}..1e{MAX_LOG10}")


def _is_zero(value: sp.Expr) -> bool:
    """True when ``value`` is zero, also when sympy does not see it at once (``log(4) - 2*log(2)``)."""
    if value.is_zero is not None:
        return bool(value.is_zero)
    if value.is_number:
        return value.equals(0) is True
    return sp.expand(value).is_zero is True


def _describe(node: ast.AST) -> str:
    names = {
        ast.Attribute: "attribute access", ast.Subscript: "indexing", ast.Lambda: "a lambda",
        ast.ListComp: "a comprehension", ast.GeneratorExp: "a generator", ast.Compare: "a comparison",
        ast.BoolOp: "a boolean operator", ast.IfExp: "a conditional", ast.List: "a list",
        ast.Tuple: "a tuple", ast.Dict: "a dict", ast.Set: "a set", ast.JoinedStr: "an f-string",
        ast.NamedExpr: "an assignment", ast.Starred: "a starred expression", ast.Await: "await",
    }
    return names.get(type(node), type(node).__name__)
