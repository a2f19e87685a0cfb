"""Problem records: one finding about a trace, with the place it was found.

In: a rule code, the source file, a row, a column and a message. Out: a
``Problem`` (printed as ``FILE:ROW: CODE field: message``), helpers to print a
capped list of them, and the conversion into ``core.errors.TraceError`` used by
readers that must refuse bad input.

Row numbers are 1-based data rows (the first row after a CSV header is row 1);
row 0 means the problem is about the file or a whole column, not one row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import TraceError


@dataclass(frozen=True, order=True)
class Problem:
    """One violated rule: ``code`` (stable, see ``traces.validate.RULES``), where and why."""

    source: str
    row: int
    code: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.source or '<trace>'}:{self.row}: {self.code} {self.field or '-'}: {self.message}"


class TraceInvalid(TraceError):
    """A trace that failed validation; ``problems`` holds the full report."""

    def __init__(self, problems: Sequence[Problem], max_shown: int = 20) -> None:
        self.problems = list(problems)
        first = self.problems[0]
        super().__init__(first.source, first.row, first.field, f"{first.code} {first.message}")
        # the message carries the capped report, so a caller that only prints the
        # exception still shows the user every rule code it can fit
        self.args = (format_problems(self.problems, max_shown),)

    def __str__(self) -> str:
        return str(self.args[0])


def format_problems(problems: Sequence[Problem], max_shown: int = 100) -> str:
    """Up to ``max_shown`` problems, one per line, then a count of the rest."""
    lines = [str(p) for p in problems[:max_shown]]
    rest = len(problems) - len(lines)
    if rest > 0:
        lines.append(f"... and {rest} more problem{'s' if rest != 1 else ''}")
    return "\n".join(lines)


def raise_problems(problems: Sequence[Problem]) -> None:
    """Raise ``TraceInvalid`` if ``problems`` is not empty."""
    if problems:
        raise TraceInvalid(problems)
