"""Errors raised by the model. Runtime outcomes (ENOSPC, OOM kills) are counted, not raised.

In: details of a problem. Out: exceptions whose message names file, row and field.
"""

from __future__ import annotations


class TraceError(ValueError):
    """An event the model cannot apply because the trace itself is wrong.

    Carries where it came from so the user can fix the input: ``source`` (file),
    ``row`` (1-based data row, or -1 if unknown), ``field`` (column) and a message.
    """

    def __init__(self, source: str, row: int, field: str, message: str) -> None:
        self.source, self.row, self.field, self.message = source, row, field, message
        where = f"{source or '<trace>'}:{row if row >= 0 else '?'}"
        super().__init__(f"{where}: {field}: {message}")


class ConfigError(ValueError):
    """A machine or policy parameter outside what the model supports."""
