"""Numerics that must not overflow: evaluating a bound's expression in log space.

A bound over L layers multiplies L norms; at L = 1000 with norms near 2 the product is 2^1000 ≈ 1e301
and the next layer overflows a float. :func:`log_value` walks the sympy tree and returns
``(sign, log|value|)`` without ever forming the product: a Mul adds logs, an Add is a signed
log-sum-exp, a Product/Sum over an index is a loop over logs. Symbols are looked up by name
(``s_fc1``, ``s_mid[3]``, ``X_F``, ``C1``) in a plain dict, the names :mod:`boundcalc.symbols` creates.
"""
from __future__ import annotations

import math
import sys
from collections.abc import Mapping

import sympy as sp

from boundcalc.errors import BoundcalcError

#: (sign, log|value|); sign is -1, 0 or 1 and log|0| is -inf
Signed = tuple[int, float]
ZERO: Signed = (0, -math.inf)
#: log of the largest float; a value beyond it is reported as inf (or refused as an exponent)
MAX_LOG = math.log(sys.float_info.max)


class EvaluationError(BoundcalcError):
    """An expression that cannot be evaluated with the given values (missing name, bad domain)."""


def log_value(expr: sp.Expr, values: Mapping[str, float]) -> Signed:
    """``(sign, log|expr|)`` at ``values``; finite even where the direct value overflows a float."""
    return _LogEvaluator(values).eval(sp.sympify(expr), {})


def log10_of(expr: sp.Expr, values: Mapping[str, float]) -> float:
    """log10 of a positive expression (the sign must be +1; zero gives -inf)."""
    sign, logabs = log_value(expr, values)
    if sign < 0:
        raise EvaluationError(f"expression is negative at the given values: {_short(expr)}")
    return logabs / math.log(10)


def value_of(expr: sp.Expr, values: Mapping[str, float]) -> float:
    """The float value (``inf`` when it exceeds the float range; use :func:`log10_of` then)."""
    sign, logabs = log_value(expr, values)
    if sign == 0:
        return 0.0
    if logabs > MAX_LOG:
        return sign * math.inf
    return sign * math.exp(logabs)


def signed_log(x: float) -> Signed:
    """The pair for a plain float."""
    if math.isnan(x):
        raise EvaluationError("NaN in the given values")
    if x == 0:
        return ZERO
    return (1 if x > 0 else -1, math.log(abs(x)))


def number_log(number: sp.Expr) -> Signed:
    """The pair for a sympy number, also beyond the float range (a Float of 1e400 or 1e-400: sympy's floats
    have an unbounded exponent)."""
    try:
        x = float(number)
    except OverflowError:
        x = math.inf
    if x != 0 and math.isfinite(x):
        return signed_log(x)
    if number.is_zero:
        return ZERO
    if not number.is_extended_real or not number.is_finite:
        raise EvaluationError(f"{_short(number)} is not a finite real number")
    return (1 if number.is_positive else -1, float(sp.log(abs(number)).evalf()))


def log_sum(parts: list[Signed]) -> Signed:
    """Signed log-sum-exp: the pair of Σ parts, stable for parts of very different size."""
    live = [p for p in parts if p[0] != 0]
    if not live:
        return ZERO
    top = max(logabs for _, logabs in live)
    if math.isinf(top):
        signs = {sign for sign, logabs in live if logabs == top}
        if len(signs) > 1:
            raise EvaluationError("inf - inf in a sum")
        return (signs.pop(), top)
    total = math.fsum(sign * math.exp(logabs - top) for sign, logabs in live)
    if total == 0:
        return ZERO
    return (1 if total > 0 else -1, top + math.log(abs(total)))


def _order_key(pair: Signed) -> tuple[int, float]:
    """Sort key that orders signed pairs like the numbers they stand for."""
    sign, logabs = pair
    return (sign, sign * logabs if sign else 0.0)


def _short(expr: sp.Expr, limit: int = 80) -> str:
    text = str(expr)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _LogEvaluator:
    def __init__(self, values: Mapping[str, float]) -> None:
        self.values = values

    def lookup(self, name: str) -> float:
        try:
            value = float(self.values[name])
        except KeyError:
            raise EvaluationError(f"no value given for {name}") from None
        if math.isnan(value):
            raise EvaluationError(f"value of {name} is NaN")
        return value

    def scalar(self, expr: sp.Expr, env: dict) -> float:
        """A small quantity (exponent, index bound, log argument) as a plain float."""
        sign, logabs = self.eval(expr, env)
        if sign == 0:
            return 0.0
        if logabs > MAX_LOG:
            raise EvaluationError(f"{_short(expr)} is too large to use as an exponent or index")
        return sign * math.exp(logabs)

    def eval(self, expr: sp.Expr, env: dict) -> Signed:
        if expr.is_Number or expr in (sp.pi, sp.E):
            return number_log(expr)
        if isinstance(expr, sp.Symbol):
            if expr in env:
                return signed_log(float(env[expr]))
            return signed_log(self.lookup(expr.name))
        if isinstance(expr, sp.Indexed):
            idx = ",".join(str(int(round(self.scalar(i, env)))) for i in expr.indices)
            return signed_log(self.lookup(f"{expr.base.label}[{idx}]"))
        if isinstance(expr, sp.Mul):
            sign, total = 1, 0.0
            for arg in expr.args:
                s, l = self.eval(arg, env)
                if s == 0:
                    return ZERO
                sign, total = sign * s, total + l
            return (sign, total)
        if isinstance(expr, sp.Add):
            return log_sum([self.eval(arg, env) for arg in expr.args])
        if isinstance(expr, sp.Pow):
            return self.power(expr, env)
        if isinstance(expr, sp.exp):
            return (1, self.scalar(expr.args[0], env))
        if isinstance(expr, sp.log):
            sign, logabs = self.eval(expr.args[0], env)
            if sign <= 0:
                raise EvaluationError(f"log of a non-positive value in {_short(expr)}")
            return signed_log(logabs)
        if isinstance(expr, (sp.Max, sp.Min)):
            parts = [self.eval(arg, env) for arg in expr.args]
            return max(parts, key=_order_key) if isinstance(expr, sp.Max) else min(parts, key=_order_key)
        if isinstance(expr, sp.Abs):
            sign, logabs = self.eval(expr.args[0], env)
            return (abs(sign), logabs)
        if isinstance(expr, sp.erf):       # gelu's constant (1 + erf 1)/2 + 1/(e√π); erf is bounded by 1
            return signed_log(math.erf(self.scalar(expr.args[0], env)))
        if isinstance(expr, (sp.floor, sp.ceiling)):
            x = self.scalar(expr.args[0], env)
            return signed_log(float(math.floor(x) if isinstance(expr, sp.floor) else math.ceil(x)))
        if isinstance(expr, (sp.Product, sp.Sum)):
            return self.reduce(expr, env)
        if isinstance(expr, sp.Piecewise):
            return self.eval(self.branch(expr, env), env)
        raise EvaluationError(f"cannot evaluate {type(expr).__name__} in {_short(expr)}")

    def branch(self, expr: sp.Piecewise, env: dict) -> sp.Expr:
        """The value of the first condition of ``expr`` that holds (conditions compare integers: Eq(t, 1))."""
        for value, condition in expr.args:
            if condition is sp.true:
                return value
            if isinstance(condition, sp.Rel):
                left, right = (self.scalar(side, env) for side in condition.args)
                if sp.Rel(sp.Float(left), sp.Float(right), condition.rel_op) is sp.true:
                    return value
                continue
            raise EvaluationError(f"cannot evaluate the condition {condition} in {_short(expr)}")
        raise EvaluationError(f"no branch applies in {_short(expr)}")

    def power(self, expr: sp.Pow, env: dict) -> Signed:
        base_sign, base_log = self.eval(expr.base, env)
        exponent = self.scalar(expr.exp, env)
        if base_sign == 0:
            if exponent <= 0:
                raise EvaluationError(f"0 to a non-positive power in {_short(expr)}")
            return ZERO
        if base_sign < 0:
            if not float(exponent).is_integer():
                raise EvaluationError(f"fractional power of a negative value in {_short(expr)}")
            sign = -1 if int(exponent) % 2 else 1
        else:
            sign = 1
        return (sign, exponent * base_log)

    def reduce(self, expr: sp.Product | sp.Sum, env: dict) -> Signed:
        (var, lo, hi), = expr.limits
        start, stop = (int(round(self.scalar(b, env))) for b in (lo, hi))
        if stop < start - 1:   # sympy reads this as 1/Π_{stop+1..start−1} (Karr); a reader reads it as empty
            raise EvaluationError(f"{type(expr).__name__} over the reversed range {start}..{stop} in {_short(expr)}")
        if stop - start > 1_000_000:
            raise EvaluationError(f"{type(expr).__name__} over {stop - start + 1} indices is too long")
        parts = [self.eval(expr.function, {**env, var: i}) for i in range(start, stop + 1)]
        if isinstance(expr, sp.Sum):
            return log_sum(parts)
        sign, total = 1, 0.0
        for s, l in parts:
            if s == 0:
                return ZERO
            sign, total = sign * s, total + l
        return (sign, total)


class LogReal:
    """A non-negative real held as its natural log (zero is ``-inf``), so that the numeric composer can
    multiply thousands of layer norms without overflowing. Supports ``*``, ``/``, ``+``, :meth:`sqrt` and
    comparisons, with other LogReals and with non-negative floats; ``float()`` may give ``inf``."""

    __slots__ = ("log",)

    def __init__(self, log: float) -> None:
        if math.isnan(log):
            raise EvaluationError("NaN in a numeric bound")
        self.log = log

    @classmethod
    def of(cls, x: float | LogReal) -> LogReal:
        if isinstance(x, LogReal):
            return x
        x = float(x)
        if math.isnan(x) or x < 0:
            raise EvaluationError(f"a numeric bound needs non-negative values, got {x}")
        return cls(math.log(x) if x > 0 else -math.inf)

    @property
    def log10(self) -> float:
        return self.log / math.log(10)

    def sqrt(self) -> LogReal:
        return LogReal(self.log / 2)

    def __mul__(self, other: float | LogReal) -> LogReal:
        other = LogReal.of(other)
        if self.log == -math.inf or other.log == -math.inf:
            return LogReal(-math.inf)
        return LogReal(self.log + other.log)

    __rmul__ = __mul__

    def __truediv__(self, other: float | LogReal) -> LogReal:
        other = LogReal.of(other)
        if other.log == -math.inf:
            raise EvaluationError("division by zero in a numeric bound")
        return LogReal(self.log - other.log)

    def __add__(self, other: float | LogReal) -> LogReal:
        other = LogReal.of(other)
        top = max(self.log, other.log)
        if top == -math.inf:
            return self
        return LogReal(top + math.log(math.exp(self.log - top) + math.exp(other.log - top)))

    __radd__ = __add__

    def __float__(self) -> float:
        return math.exp(self.log) if self.log <= MAX_LOG else math.inf

    def _key(self, other: float | LogReal) -> float:
        return LogReal.of(other).log

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (int, float, LogReal)) and self.log == self._key(other)

    def __hash__(self) -> int:
        return hash(self.log)

    def __lt__(self, other: float | LogReal) -> bool:
        return self.log < self._key(other)

    def __le__(self, other: float | LogReal) -> bool:
        return self.log <= self._key(other)

    def __gt__(self, other: float | LogReal) -> bool:
        return self.log > self._key(other)

    def __ge__(self, other: float | LogReal) -> bool:
        return self.log >= self._key(other)

    def __repr__(self) -> str:
        return f"LogReal(log10={self.log10:.6g})"


def positive_log_real(expr: sp.Expr, values: Mapping[str, float]) -> LogReal:
    """``expr`` at ``values`` as a :class:`LogReal`; EvaluationError if it is negative there."""
    sign, log_abs = log_value(expr, values)
    if sign < 0:
        raise EvaluationError("the expression is negative at the measured values")
    return LogReal(log_abs)


def known_sign(expr: sp.Expr) -> int | None:
    """1, −1 or 0 when sympy can decide the sign of the expanded ``expr`` from its assumptions; None otherwise."""
    expanded = sp.expand(expr)
    if expanded.is_zero:
        return 0
    if expanded.is_positive:
        return 1
    if expanded.is_negative:
        return -1
    return None
