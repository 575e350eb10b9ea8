"""Reading user text files with clear errors, and the embedded default corpus every install has."""

from __future__ import annotations

import importlib
from pathlib import Path


def read_text_file(path: str | Path, *, what: str = "data file") -> str:
    """The UTF-8 text of ``path``; missing, empty, binary or undecodable files are clear errors."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    if not path.is_file():
        raise ValueError(f"{what} {path} is not a file")
    raw = path.read_bytes()
    if not raw.strip():
        raise ValueError(f"{what} {path} is empty")
    if b"\x00" in raw[:65536]:
        raise ValueError(f"{what} {path} looks binary (it contains NUL bytes); expected UTF-8 text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{what} {path} is not UTF-8 text (byte {error.start} cannot be decoded)") from None


def text_lines(stream, *, what: str = "standard input"):
    """The lines of a text stream (``sys.stdin``) as they arrive, held to what a file is held to
    by :func:`read_text_file`: UTF-8, no NUL bytes (binary data), a leading byte-order mark dropped;
    a line that breaks this is a ``ValueError`` naming it. Reads the bytes under a text stream."""
    raw = getattr(stream, "buffer", None)
    for number, line in enumerate(raw if raw is not None else stream, 1):
        yield _checked_line(line, number, what)


def text_line_batches(stream, *, what: str = "standard input", size: int = 1 << 16):
    """The lines of a text stream (``sys.stdin``) in lists of those that arrived together: every
    complete line the stream holds ready (at most ``size`` bytes' worth), waiting only when none
    is. A burst of lines (a file piped in, a producer ahead of its reader) comes as one list, to
    be handled at once; a lone line comes alone, as soon as it arrives. The lines and their checks
    are :func:`text_lines`'; a stream with no bytes under it (``io.StringIO``) yields one line a list.
    """
    read1 = getattr(getattr(stream, "buffer", None), "read1", None)
    if read1 is None:
        for line in text_lines(stream, what=what):
            yield [line]
        return
    number, pending = 0, b""
    while True:
        chunk = read1(size)  # what is there, or (blocking) the next arrival; b"" at the end
        data = pending + chunk
        if chunk:
            *complete, pending = data.split(b"\n")  # an unfinished line waits for the rest of it
            lines = [line + b"\n" for line in complete]
        else:  # the end: an unfinished last line is a line
            lines = [data] if data else []
        batch = []
        for line in lines:
            number += 1
            try:
                batch.append(_checked_line(line, number, what))
            except ValueError:
                if batch:  # the good lines before it first, as text_lines has them
                    yield batch
                raise
        if batch:
            yield batch
        if not chunk:
            return


def _checked_line(line: str | bytes, number: int, what: str) -> str:
    if isinstance(line, bytes):
        if b"\x00" in line:
            raise ValueError(f"{what} line {number} looks binary (it contains NUL bytes); expected UTF-8 text")
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"{what} line {number} is not UTF-8 text (byte {error.start} cannot be decoded)") from None
    elif "\x00" in line:
        raise ValueError(f"{what} line {number} looks binary (it contains NUL bytes); expected UTF-8 text")
    return line.lstrip("\ufeff") if number == 1 else line


def default_corpus() -> tuple[str, str]:
    """English text shipped with Python itself: ``(text, description)``.

    The reference manual's topics in ``pydoc_data`` (about 465,000 characters on CPython 3.11);
    where a distribution strips that module, the standard library's module docstrings.
    """
    try:
        from pydoc_data.topics import topics

        return "\n\n".join(topics[name] for name in sorted(topics)), "Python's reference-manual topics (pydoc_data)"
    except ImportError:
        pass
    import sys

    texts = []
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in ("antigravity", "this", "idlelib", "tkinter", "turtledemo"):
            continue
        try:
            module = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - any stdlib module that fails to import is simply skipped
            continue
        if module.__doc__:
            texts.append(module.__doc__)
    return "\n\n".join(texts), "the docstrings of Python's standard library"
