"""``python -m boundcalc …``: the command line, as the ``boundcalc`` script."""
from boundcalc.cli import app

app(prog_name="boundcalc")
