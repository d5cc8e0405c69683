"""The restricted parser: accepts the documented grammar, rejects everything else with a sentence."""
import pytest
import sympy as sp

from boundcalc.errors import ExpressionError
from boundcalc.spec.expr import parse_expression


def resolve(name):
    return sp.Symbol(name, positive=True)


B, gamma, h, a, b = (sp.Symbol(n, positive=True) for n in ("B", "gamma", "h", "a", "b"))

ACCEPTED = [
    ("2*B", 2 * B), ("1/gamma", 1 / gamma), ("sqrt(h)", sp.sqrt(h)), ("B**2", B**2), ("-B + 3", 3 - B),
    ("(B + 1)*(B - 1)", (B + 1) * (B - 1)), ("log(h)", sp.log(h)), ("exp(B)", sp.exp(B)), ("abs(B)", B),
    ("min(a, b)", sp.Min(a, b)), ("max(a, b, 2)", sp.Max(a, b, 2)), ("0.5", sp.Rational(1, 2)), ("pi*B", sp.pi * B),
    (3, sp.Integer(3)), (0.25, sp.Rational(1, 4)), ("2**-1", sp.Rational(1, 2)),
]

REJECTED = [
    ("__import__('os').system('x')", "allowed"), ("os.system", "attribute"), ("B[0]", "indexing"),
    ("lambda: 1", "lambda"), ("[x for x in y]", "comprehension"), ("open('f')", "not allowed"),
    ("eval('1')", "not allowed"), ("B.__class__", "attribute"), ("'text'", "literals"), ("B if a else b", "conditional"),
    ("a < b", "comparison"), ("a and b", "boolean"), ("(a, b)", "tuple"), ("{1: 2}", "dict"), ("9**9**9", "exponent"),
    ("1/0", "division by zero"), ("sqrt(a, b)", "argument"), ("sqrt(x=1)", "keyword"), ("f'{a}'", "f-string"),
    ("(a := 1)", "assignment"), ("_private", "not allowed"), ("a; b", "syntax"), ("", "empty"), ("B" * 300, "longer"),
    ("-(" * 30 + "1" + ")" * 30, "nested"), ("10**100", "exponent"), ("123456789012345678", "integer literal"),
    ("1e400", "not finite"), ("sqrt", "used as a value"), ("a % b", "Mod"), ("a // b", "FloorDiv"), ("~a", "Invert"),
    ("*a", "syntax"), ("log(-1)", "non-positive"), (True, "boolean"), (None, "expected a number"),
    ("getattr(a, 'b')", "not allowed"), ("print(1)", "not allowed"), ("sqrt(*a)", "starred"),
]


@pytest.mark.parametrize("text,expected", ACCEPTED, ids=[str(t) for t, _ in ACCEPTED])
def test_accepts_documented_grammar(text, expected):
    assert sp.simplify(parse_expression(text, resolve) - expected) == 0


@pytest.mark.parametrize("text,phrase", REJECTED, ids=[str(t)[:30] for t, _ in REJECTED])
def test_rejects_hostile_or_malformed(text, phrase):
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, resolve)
    assert phrase.lower() in str(info.value).lower()


def test_never_calls_resolver_for_rejected_names():
    seen = []
    with pytest.raises(ExpressionError):
        parse_expression("__import__('os')", lambda n: seen.append(n) or sp.Symbol(n))
    assert seen == []
