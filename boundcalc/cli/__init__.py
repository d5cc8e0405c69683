"""The ``boundcalc`` command line. Commands are thin: the library raises, this package prints.

Bad input (spec, values, options) prints one line ``error: …`` on stderr and exits with code 2
(:mod:`boundcalc.cli_errors`). One module per command group; ``common`` holds the app and the console,
``options`` the option types shared by the measuring commands. Importing the command modules registers them."""
from boundcalc.cli.common import PIPE_WIDTH, app
from boundcalc.cli import (spec_commands, registry_commands, measure_commands, zoo_commands,  # noqa: F401,E402
                           certify_commands, trace_commands)
from boundcalc.cli.options import _progress_bar, _tracker

__all__ = ["app", "PIPE_WIDTH", "_progress_bar", "_tracker"]
