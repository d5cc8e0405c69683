"""Reading untrusted input files and writing outputs without losing data.

Reading: every file boundcalc reads (spec, checkpoint, data, zoo manifest, shard index) is first checked by
:func:`regular_file`. Only regular files pass: a FIFO blocks its reader forever, ``/dev/zero`` never ends, and
opening a device can have side effects, so the path is ``os.stat``-ed (symlinks followed) before anything opens
it. :func:`read_bytes` then opens it non-blocking, checks with ``fstat`` that it is still the same regular file,
and compares its size with the caller's limit before reading a byte. :func:`load_json` parses JSON with a depth
limit (Python's parser recurses once per level) and refuses duplicate keys (the last would win silently).

Libraries that open a path themselves (safetensors, torch.load, zipfile) get it after :func:`regular_file`; a
file swapped between that check and their open is not covered (the threat here is a hostile file, not a
concurrent attacker on the same machine).

Writing: :func:`write_atomic` writes through a temporary file in the target's folder and renames it over the
target, so a failed write never leaves a truncated file; :func:`refuse_overwriting` stops an output that is one
of the inputs (the same file after symlinks, or the same inode: a hard link) before anything is written.
"""
from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from boundcalc.errors import BoundcalcError
from boundcalc.limits import MAX_JSON_DEPTH, size_text


class FileInputError(BoundcalcError):
    """An input path that is missing, not a regular file, or over its size limit."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


class OutputError(BoundcalcError):
    """An output that would overwrite an input, or that cannot be written."""


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a file")


def regular_file(path: str | Path, what: str, max_bytes: int | None = None, limit: str = "") -> os.stat_result:
    """``os.stat`` of ``path`` (symlinks followed) if it is a regular file of at most ``max_bytes``; else
    FileInputError naming the problem (and ``limit``, the name of the limit, when the file is too large)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileInputError(path, "no such file") from None
    except OSError as err:
        raise FileInputError(path, f"{err.strerror or err}") from None
    if not stat.S_ISREG(info.st_mode):
        raise FileInputError(path, f"the {what} is {_kind(info.st_mode)}, not a regular file; boundcalc reads "
                                   "regular files only")
    if max_bytes is not None and info.st_size > max_bytes:
        raise FileInputError(path, _too_large(what, f"{info.st_size:,} bytes", max_bytes, limit))
    return info


def _too_large(what: str, size: str, max_bytes: int, limit: str) -> str:
    name = f", {limit}" if limit else ""
    return f"the {what} is {size}, larger than the limit of {max_bytes:,} bytes ({size_text(max_bytes)}{name})"


def resolved(path: str | Path) -> Path:
    """``path`` with every symlink resolved; FileInputError for a symlink loop (``Path.resolve`` raises
    RuntimeError for one on Python 3.11)."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as err:
        raise FileInputError(path, f"cannot resolve the path ({str(err).splitlines()[0] if str(err) else 'loop'})") \
            from None


def read_bytes(path: str | Path, what: str, max_bytes: int, limit: str = "") -> bytes:
    """The content of the regular file ``path``, at most ``max_bytes`` (checked before reading; a file that
    grows while it is read is cut off at the limit and refused)."""
    before = regular_file(path, what, max_bytes, limit)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise FileInputError(path, f"{err.strerror or err}") from None
    with os.fdopen(fd, "rb") as handle:
        now = os.fstat(handle.fileno())
        if (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino) or not stat.S_ISREG(now.st_mode):
            raise FileInputError(path, f"the {what} changed while it was being opened")
        try:
            data = handle.read(max_bytes + 1)
        except OSError as err:
            raise FileInputError(path, f"{err.strerror or err}") from None
    if len(data) > max_bytes:
        raise FileInputError(path, _too_large(what, "still growing", max_bytes, limit))
    return data


def read_text(path: str | Path, what: str, max_bytes: int, limit: str = "") -> str:
    """:func:`read_bytes` decoded as UTF-8; a byte-order mark (as Excel writes one) is dropped."""
    try:
        return read_bytes(path, what, max_bytes, limit).decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise FileInputError(path, f"the {what} is not UTF-8 text (byte {err.start})") from None


# -- JSON -------------------------------------------------------------------------------------------
def json_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` in JSON ``text``, brackets inside strings not counted (one linear
    pass, no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def load_json(text: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that refuses nesting deeper than ``max_depth`` (before parsing) and duplicate keys in any
    object; raises ValueError (json.JSONDecodeError for syntax) with a one-line reason."""
    if json_depth(text) > max_depth:
        raise ValueError(f"nested deeper than {max_depth} levels (MAX_JSON_DEPTH)")
    return json.loads(text, object_pairs_hook=_unique_keys)


# -- outputs ----------------------------------------------------------------------------------------
def _identity(path: Path) -> tuple[Path, tuple[int, int] | None]:
    """The resolved path and, when it exists, (device, inode)."""
    try:
        info = os.stat(path)
        return resolved(path), (info.st_dev, info.st_ino)
    except OSError:
        return resolved(path), None


def refuse_overwriting(outputs: Iterable[str | Path], inputs: Iterable[str | Path]) -> None:
    """OutputError if an output path is one of the inputs (the same file after symlinks, or the same inode: a
    hard link), or exists and is not a regular file (a device, a FIFO, a folder). Folders among the inputs
    protect only themselves; the files read from them are listed."""
    known = {}
    for path in inputs:
        resolved, inode = _identity(Path(path))
        known[resolved] = path
        if inode is not None:
            known[inode] = path
    for out in outputs:
        target, inode = _identity(Path(out))
        clash = known.get(target) or (known.get(inode) if inode is not None else None)
        if clash is not None:
            raise OutputError(f"{out}: refusing to write there, it is the input {clash}; choose another output path")
        if inode is not None and not target.is_file():
            raise OutputError(f"{out}: is {_kind(target.stat().st_mode)}, not a regular file; outputs are written as "
                              "regular files only")


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a temporary file in the folder of ``path`` (symlinks resolved: a link keeps pointing at
    the new file), then rename it over the target in one step (``os.replace``): readers see the old file or the
    whole new one, and a failure leaves no partial file. An existing target must be a regular file: renaming
    over ``/dev/null`` or a FIFO would replace the device node itself."""
    path = Path(path)
    try:
        target = resolved(path)
    except FileInputError as err:
        raise OutputError(str(err)) from None
    if target.exists() and not target.is_file():
        raise OutputError(f"{path}: is {_kind(target.stat().st_mode)}, not a regular file; outputs are written as "
                          "regular files only")
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:
        raise OutputError(f"{path}: cannot write ({err.strerror or err})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
    except BaseException as err:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise OutputError(f"{path}: cannot write ({err.strerror or err})") from None
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """:func:`write_atomic` for UTF-8 text."""
    write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))


def _umask() -> int:
    """The process umask (read by setting and restoring it), so outputs get the usual permissions rather than
    mkstemp's 0600."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
