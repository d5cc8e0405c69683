"""Round-2 hostile inputs (output): cases added for issue 14's classes. Each is a `Case` of
``tests/hostile/corpus.py``, run by ``tests/hostile/test_cli_corpus.py``."""
from __future__ import annotations

from tests.hostile.corpus import Case

CASES: list[Case] = []
