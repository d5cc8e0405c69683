"""Round-2 hostile inputs (output): cases added for issue 14's classes. Each is a `Case` of
``tests/hostile/corpus.py``, run by ``tests/hostile/test_cli_corpus.py``.

Classes covered here:

- option errors (issue 14 item 6, issue 13 item 9): unknown options and commands, values of the wrong type or
  outside a choice, missing values, missing and extra arguments, on several commands. Each is one ``error:``
  line naming the option and what it expects, never typer's usage text and boxed panel;
- user text inside an error line (item 5): a path or an option value with a newline, a carriage return, a line
  separator or an escape sequence stays on the one error line, quoted; a binding table whose tensor name is
  rich markup prints it instead of crashing on it (more of this class, for results, in
  ``tests/test_output_escaping.py``).
"""
from __future__ import annotations

import torch

from tests.hostile.corpus import MLP_SPEC, Case, safetensors_file

#: a line that, printed on its own, would look like a second error from boundcalc
INJECTED = "\nerror: injected"


def cli_case(id: str, args: list[str], phrase: str, files: dict | None = None) -> Case:
    return Case(id, files or {}, args, phrase, kind="option")


WEIGHTS = {"w.safetensors": safetensors_file()}

OPTION_CASES: list[Case] = [
    # -- a value outside a choice (every enum option goes through the same hook)
    cli_case("option-format-not-a-choice", ["derive", MLP_SPEC, "--format", "html"],
             "--format: 'html' is not one of text, latex, markdown, json"),
    cli_case("option-format-near-miss", ["compare", MLP_SPEC, "-f", "jsn"], "(did you mean json?)"),
    cli_case("option-rules-not-a-choice", ["derive", MLP_SPEC, "--rules", "loose"],
             "--rules: 'loose' is not one of tight, as_printed"),
    cli_case("option-regime-not-a-choice", ["compare", MLP_SPEC, "--regime", "all"], "--regime: 'all' is not one of"),
    cli_case("option-conv-norm-not-a-choice", ["measure", "{dir}/w.safetensors", "--conv-norm", "exact"],
             "--conv-norm: 'exact' is not one of fft, power, reshaped", WEIGHTS),
    cli_case("option-biases-not-a-choice", ["evaluate", MLP_SPEC, "{dir}/w.safetensors", "--biases", "shift"],
             "--biases: 'shift' is not one of fold, drop, keep", WEIGHTS),
    cli_case("option-list-format-not-a-choice", ["bounds", "list", "--format", "latex"],
             "--format: 'latex' is not one of text, json"),
    # -- a value of the wrong type
    cli_case("option-workers-not-an-integer", ["zoo", "evaluate", "{dir}/zoo", "--spec", MLP_SPEC, "--workers", "abc"],
             "--workers: 'abc' is not an integer"),
    cli_case("option-tail-k-fraction", ["measure", "{dir}/w.safetensors", "--tail-k", "1.5"],
             "--tail-k: '1.5' is not an integer", WEIGHTS),
    cli_case("option-delta-not-a-number", ["evaluate", MLP_SPEC, "{dir}/w.safetensors", "--delta", "abc"],
             "--delta: 'abc' is not a number", WEIGHTS),
    cli_case("option-weight-decay-not-a-number", ["collapse", MLP_SPEC, "{dir}/w.safetensors", "--data", "d.npz",
                                                  "--weight-decay", "1e-3x"], "--weight-decay: '1e-3x' is not a number",
             WEIGHTS),
    # -- a missing value, argument or required option
    cli_case("option-format-without-value", ["derive", MLP_SPEC, "--format"], "--format: needs a value"),
    cli_case("option-set-without-value", ["check", MLP_SPEC, "--set"], "--set: needs a value"),
    cli_case("argument-spec-missing", ["derive"], "boundcalc derive: missing argument SPEC"),
    cli_case("argument-checkpoint-missing", ["evaluate", MLP_SPEC], "boundcalc evaluate: missing argument CHECKPOINT"),
    cli_case("argument-bound-key-missing", ["bounds", "show"], "boundcalc bounds show: missing argument KEY"),
    cli_case("option-data-missing", ["collapse", MLP_SPEC, "{dir}/w.safetensors"],
             "boundcalc collapse: missing option --data", WEIGHTS),
    # -- unknown options and commands, extra arguments
    cli_case("option-unknown-near-miss", ["derive", MLP_SPEC, "--formt", "json"],
             "boundcalc derive: no such option --formt (did you mean --format?)"),
    cli_case("option-unknown-short", ["check", MLP_SPEC, "-z"], "boundcalc check: no such option -z"),
    cli_case("option-unknown-on-root", ["--bogus"], "boundcalc: no such option --bogus"),
    cli_case("option-unknown-on-zoo", ["zoo", "evaluate", "{dir}/zoo", "--worker", "2"],
             "no such option --worker (did you mean --workers?)"),
    cli_case("argument-extra", ["derive", MLP_SPEC, "extra.yaml"], "boundcalc derive: unexpected extra argument"),
    cli_case("command-unknown", ["derve", MLP_SPEC], "no such command 'derve' (did you mean 'derive'?)"),
    cli_case("subcommand-unknown", ["bounds", "lst"], "boundcalc bounds: no such command 'lst' (did you mean 'list'?)"),
    # -- user text in the option error stays on its one line
    cli_case("option-value-with-newline", ["derive", MLP_SPEC, "--format", "html" + INJECTED],
             "'html\\nerror: injected' is not one of"),
    cli_case("option-name-with-escape", ["derive", MLP_SPEC, "--x\x1b[2J" + INJECTED], "no such option --x\\x1b[2J"),
]

USER_TEXT_CASES: list[Case] = [
    Case("spec-path-with-newline", {}, ["derive", "{dir}/missing" + INJECTED + ".yaml"], "missing\\nerror: injected",
         kind="spec"),
    Case("spec-path-with-line-separator", {}, ["check", "{dir}/missing\u2028error: injected.yaml"],
         "missing\\u2028error", kind="spec"),
    Case("checkpoint-path-with-newline", {}, ["measure", "{dir}/w" + INJECTED + ".safetensors"],
         "w\\nerror: injected", kind="checkpoint"),
    Case("data-path-with-carriage-return", WEIGHTS,
         ["evaluate", MLP_SPEC, "{dir}/w.safetensors", "--data", "{dir}/d\rerror: injected.npz"], "d\\rerror",
         kind="data"),
    # a binding problem prints its table above the error line: the tensor names in it are not markup
    Case("tensor-name-markup-in-binding-table",
         {"w.safetensors": safetensors_file(**{"[/x] [bold]b[/bold]": torch.ones(3, 3)})},
         ["evaluate", MLP_SPEC, "{dir}/w.safetensors"], "unused tensor", table=True, kind="checkpoint"),
]

CASES: list[Case] = [*OPTION_CASES, *USER_TEXT_CASES]
