"""User strings (spec and layer names, tensor names, paths, model ids, messages) made inert for each output.

Every string that came from a user's file or command line passes through one of these before it is printed:
it then prints as itself, on one line, and is never read as rich markup, LaTeX, Markdown or a spreadsheet
formula. One function per output; the CLI's error line uses :func:`one_line`.
"""
from __future__ import annotations

from rich.text import Text

#: control characters with a short escape; every other non-printable character is written as repr writes it
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

#: LaTeX's special characters in text mode, each with the command that prints it
_TEX = str.maketrans({"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
                      "^": r"\textasciicircum{}", "_": r"\_", "%": r"\%", "~": r"\textasciitilde{}"})

#: ASCII punctuation that can open a Markdown construct inline (CommonMark lets any of it be backslash-escaped)
_MARKDOWN_SPECIALS = "\\`*_{}[]<>#!|~&$"

#: first characters that make a spreadsheet read a cell as a formula (OWASP "CSV Injection": = + - @ tab CR),
#: with line feed and the full-width forms that some spreadsheets also accept
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def one_line(text: object) -> str:
    """``text`` on one line: every character that is not printable (newline, carriage return, tab, escape,
    other C0/C1 controls, line and paragraph separators, bidirectional overrides, …) is written as its Python
    escape (``\\n``, ``\\x1b``, ``\\u2028``); printable text, spaces included, is unchanged."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else _SHORT.get(c) or repr(c)[1:-1] for c in text)


def plain(text: object) -> Text:
    """A user string for rich: a :class:`~rich.text.Text` (never parsed as markup or emoji codes) on one line."""
    return Text(one_line(text))


def tex_text(text: object) -> str:
    """A user string for LaTeX text mode (also safe in a ``%`` comment): on one line, with ``\\ { } $ & # ^ _ %
    ~`` written as the commands that print them, so it can neither run a command nor end the line."""
    return one_line(text).translate(_TEX)


def tex_math_name(name: str) -> str | None:
    """``name`` as LaTeX math when it is a plain identifier (letters, digits, ``_``, ``'``); ``None`` otherwise,
    and the caller prints it as :func:`tex_text` inside ``\\text{…}``."""
    if name and all(c.isascii() and (c.isalnum() or c in "_'") for c in name):
        return name
    return None


def md_text(text: object) -> str:
    """A user string for Markdown (headings, paragraphs, table cells): on one line, with the punctuation that
    could start emphasis, a link, HTML, a table column or math backslash-escaped."""
    return "".join("\\" + c if c in _MARKDOWN_SPECIALS else c for c in one_line(text))


def md_code(text: object, in_table: bool = False) -> str:
    """A user string as a Markdown code span: on one line, fenced by more backticks than it contains; in a
    table cell its pipes are written ``\\|`` (GitHub tables split cells on pipes even inside code)."""
    body = one_line(text)
    fence = "`" * (_longest_backtick_run(body) + 1)
    if body.startswith("`") or body.endswith("`"):
        body = f" {body} "
    if in_table:
        body = body.replace("|", "\\|")
    return f"{fence}{body}{fence}"


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    for c in text:
        run = run + 1 if c == "`" else 0
        longest = max(longest, run)
    return longest


def mpl_text(text: object) -> str:
    """A user string for a matplotlib title or label: on one line, with ``$`` escaped so that it is never
    read as mathtext."""
    return one_line(text).replace("$", r"\$")


def csv_cell(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text: a string that starts like a formula gets a leading single
    quote (OWASP's advice); numbers and other values are returned unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value
