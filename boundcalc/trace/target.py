"""Find and build the user's model from a TARGET string: ``path/to/file.py:callable`` or ``package.module:callable``.

This imports and runs the user's own code (that is the point of ``boundcalc trace``): nothing here is
sandboxed. What it does guard against is a confusing failure: a bad TARGET, a file that is missing, an import
or a call that raises, or a callable that returns something other than a ``torch.nn.Module`` each become one
:class:`~boundcalc.trace.report.TraceError` line. No ``__pycache__`` is written next to the user's file.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from boundcalc.files import FileInputError, regular_file
from boundcalc.trace.report import TraceError

#: ``callable`` and ``a.b.c`` in ``module:callable``
_ATTRIBUTE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_MODULE = _ATTRIBUTE
USAGE = "TARGET must be path/to/file.py:callable or package.module:callable"


def split_target(target: str) -> tuple[str, str]:
    """(``where``, ``callable``) of ``target``; TraceError naming what is wrong with its syntax."""
    where, sep, name = target.rpartition(":")
    if not sep or not where:
        raise TraceError(f"{target!r}: no ':callable' part; {USAGE}")
    if not _ATTRIBUTE.match(name):
        raise TraceError(f"{target!r}: {name!r} is not a Python name (letters, digits, '_', dots); {USAGE}")
    if not is_file_target(where) and not _MODULE.match(where):
        raise TraceError(f"{target!r}: {where!r} is neither a .py file nor a dotted module name; {USAGE}")
    return where, name


def is_file_target(where: str) -> bool:
    return where.endswith(".py") or "/" in where or "\\" in where


def load_model(target: str):
    """The ``torch.nn.Module`` that TARGET's callable returns (called with no arguments)."""
    import torch

    where, name = split_target(target)
    module = _import_file(Path(where)) if is_file_target(where) else _import_module(where)
    obj: Any = module
    for part in name.split("."):
        if not hasattr(obj, part):
            raise TraceError(f"{target!r}: {where} has no attribute {part!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise TraceError(f"{target!r}: {name} is a value of type {type(obj).__name__!r}, not a callable that "
                         "returns a model")
    model = _user_call(lambda: obj(), f"calling {name}()")
    if not isinstance(model, torch.nn.Module):
        raise TraceError(f"{target!r}: {name}() returned a value of type {type(model).__name__!r}, not a "
                         "torch.nn.Module")
    return model


def _import_file(path: Path):
    try:
        regular_file(path, "target file")
    except FileInputError as err:
        raise TraceError(str(err)) from None
    if path.suffix != ".py":
        raise TraceError(f"{path}: a target file must be a .py file")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"_boundcalc_target_{digest}", path)
    if spec is None or spec.loader is None:
        raise TraceError(f"{path}: cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    with _quiet_import(path.resolve().parent):
        _user_call(lambda: spec.loader.exec_module(module), f"importing {path}")
    return module


def _import_module(name: str):
    with _quiet_import(None):
        return _user_call(lambda: importlib.import_module(name), f"importing {name}")


@contextmanager
def _quiet_import(folder: Path | None):
    """The file's folder on ``sys.path`` (so it may import its neighbours) and no bytecode written, restored after."""
    saved_path, saved_flag = list(sys.path), sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    if folder is not None:
        sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path[:] = saved_path
        sys.dont_write_bytecode = saved_flag


def _user_call(call, what: str):
    """``call()``; any exception from the user's code (SystemExit included) becomes one TraceError line."""
    try:
        return call()
    except ModuleNotFoundError as err:
        raise TraceError(f"{what} failed: no module named {err.name!r}") from None
    except (Exception, SystemExit) as err:
        raise TraceError(f"{what} raised {type(err).__name__}: {first_line(err)}") from None


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else "(no message)"
