"""Reading the columns of a CSV file with a header row, with errors that name the file, line or column."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .textfiles import read_text_file


def read_csv_columns(
    path: str | Path, columns: dict[str, str | None], *, what: str = "data file"
) -> dict[str, list[str]]:
    """The named columns of a CSV file with a header row, as lists of strings.

    ``columns`` maps a setting name (``text_column``) to the column it names (``None``: not
    wanted). Missing, empty, binary or non-UTF-8 files, malformed CSV, rows with the wrong
    number of fields and unknown column names are ``ValueError``/``FileNotFoundError`` that say
    which file, line or column.
    """
    text = read_text_file(path, what=what).lstrip("\ufeff")  # a byte-order mark is not part of the header
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
        rows = [(reader.line_num, row) for row in reader if row]  # blank lines are no rows
    except csv.Error as error:
        raise ValueError(f"{what} {path} is not valid CSV: line {reader.line_num}: {error}") from None
    wanted = {setting: name for setting, name in columns.items() if name is not None}
    for setting, name in wanted.items():
        if name not in header:
            shown = ", ".join(repr(h) for h in header[:20]) + (", ..." if len(header) > 20 else "")
            raise ValueError(f"{what} {path} has no column {name!r} ({setting}); its columns are {shown}")
    if not rows:
        raise ValueError(f"{what} {path} has a header but no rows")
    index = {setting: header.index(name) for setting, name in wanted.items()}
    for line, row in rows:
        if len(row) != len(header):
            raise ValueError(
                f"{what} {path} is not valid CSV: line {line} has {len(row)} fields, but the header has {len(header)}"
            )
    return {setting: [row[i] for _, row in rows] for setting, i in index.items()}
