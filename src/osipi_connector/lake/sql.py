"""SQL over the local Delta tables with DataFusion (`deltalake.QueryBuilder`), spelled as on Databricks.

QueryBuilder has one flat namespace: registering `main.bronze.pi_timeseries` fails ("failed to resolve
catalog"), but a quoted name may contain dots. So each table under `<root>/<catalog>/<schema>/<table>` is
registered as `"catalog.schema.table"`, plus its plain name when no other schema has a table of that name, and
the query's dotted table names (`main.bronze.pi_timeseries`, `bronze.pi_timeseries`, backticks allowed) are
rewritten to that quoted name before DataFusion sees them. Text inside string literals is never rewritten;
`alias.column` is untouched because only names of existing tables are rewritten.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder
from deltalake.exceptions import DeltaError

from osipi_connector.lake.sink import Location

_IDENT = r"`?([A-Za-z_]\w*)`?"
_DOTTED = re.compile(rf"(?<![\w.\"`]){_IDENT}\.{_IDENT}(?:\.{_IDENT})?(?![\w\"`(])")
_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")
_MISSING_TABLE = re.compile(r"table '([^']+)' not found")


class UnknownTableError(LookupError):
    """The query names a table that does not exist locally; the message lists the ones that do."""


def local_tables(root: Path | str) -> dict[str, Path]:
    """Every Delta table under `root` as {"catalog.schema.table": path}, sorted by name."""
    found = {}
    for log_dir in sorted(Path(root).glob("*/*/*/_delta_log")):
        table_dir = log_dir.parent
        found[f"{table_dir.parent.parent.name}.{table_dir.parent.name}.{table_dir.name}"] = table_dir
    return found


def rewrite_table_names(query: str, tables: list[str], location: Location) -> str:
    """Turn `catalog.schema.table` / `schema.table` names of known tables into `"catalog.schema.table"`."""
    known = set(tables)

    def replace(match: re.Match) -> str:
        parts = [p for p in match.groups() if p is not None]
        full = ".".join(parts) if len(parts) == 3 else f"{location.catalog}.{'.'.join(parts)}"
        return f'"{full}"' if full in known else match.group(0)

    pieces, last = [], 0
    for literal in _STRING_LITERAL.finditer(query):
        pieces += [_DOTTED.sub(replace, query[last : literal.start()]), literal.group(0)]
        last = literal.end()
    pieces.append(_DOTTED.sub(replace, query[last:]))
    return "".join(pieces)


def run_sql(root: Path | str, location: Location, query: str) -> pa.Table:
    """Run one SELECT over every local table; unknown tables raise UnknownTableError listing the known ones."""
    tables = local_tables(root)
    builder = QueryBuilder()
    plain = Counter(name.rsplit(".", 1)[1] for name in tables)
    for name, path in tables.items():
        table = DeltaTable(path)
        builder.register(f'"{name}"', table)
        short = name.rsplit(".", 1)[1]
        if plain[short] == 1:
            builder.register(short, table)
    try:
        return pa.table(builder.execute(rewrite_table_names(query, list(tables), location)).read_all())
    except DeltaError as exc:
        missing = _MISSING_TABLE.search(str(exc))
        if missing:
            name = missing.group(1).removeprefix("datafusion.public.").removeprefix("datafusion.")
            existing = ", ".join(tables) or f"none (no Delta tables under {root})"
            hint = " (several schemas have it: qualify it as schema.table)" if plain[name] > 1 else ""
            raise UnknownTableError(f"no table {name}{hint}. Tables: {existing}") from None
        raise


def format_table(table: pa.Table, max_rows: int = 50, max_width: int = 40) -> str:
    """A plain-text grid for the terminal (no extra dependency): NULL for nulls, long cells cut with '…'."""

    def cell(value: object) -> str:
        text = "NULL" if value is None else str(value)
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    header = table.column_names
    columns = [[cell(v) for v in column.to_pylist()] for column in table.slice(0, max_rows).columns]
    body = [list(row) for row in zip(*columns)]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(header)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    footer = f"({table.num_rows} row{'s' if table.num_rows != 1 else ''}"
    footer += f", first {max_rows} shown)" if table.num_rows > max_rows else ")"
    return "\n".join([rule, line(header), rule, *(line(r) for r in body), rule, footer])
