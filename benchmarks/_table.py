"""The benchmarks' side-by-side text table: first column left-aligned, the rest right-aligned."""

from __future__ import annotations


def print_table(head, rows) -> None:
    """Print ``head`` and ``rows`` (sequences of cells, shown with ``str``) as one table."""
    cells = [[str(c) for c in r] for r in [head, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    line = lambda r: " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    print(line(cells[0]))
    print("-+-".join("-" * w for w in widths))
    for r in cells[1:]:
        print(line(r))
