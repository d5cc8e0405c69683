"""Rendering of ``boundcalc trace``: the table of operations that cannot be written as spec layers, the
one-line summary of a written spec, and both as JSON. Nothing here computes."""
from __future__ import annotations

import json

from rich.table import Table

from boundcalc.render.escape import plain


def unsupported_table(rows) -> Table:
    """One row per operation: module path, op, why."""
    table = Table(title="operations the spec cannot express")
    for col in ("module", "op", "why"):
        table.add_column(col, overflow="fold")
    for row in rows:
        item = row.to_dict()
        table.add_row(plain(item["module"]), plain(item["op"]), plain(item["why"]))
    return table


def unsupported_json(rows, message: str) -> str:
    return json.dumps({"error": message, "unsupported": [row.to_dict() for row in rows]}, indent=2,
                      ensure_ascii=False)


def written_line(traced, path: str) -> str:
    """What was written, how it was captured, and the forward check's figure (what it compared)."""
    weights = sum(1 for layer in traced.layers if layer.params)
    note = f"; {traced.note}" if traced.note else ""
    return (f"wrote {path}: {len(traced.layers)} layers ({weights} with weights), captured with {traced.method}"
            f"{note}; forward check on 2 random inputs: max |spec − model| / max |model| = "
            f"{traced.forward_error:.1e}")


def traced_json(traced, path: str | None) -> str:
    return json.dumps({**traced.to_dict(), "written": path}, indent=2, ensure_ascii=False)
