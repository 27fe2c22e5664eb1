"""`ExpressionError`: the one error the expressions package raises, at save or at run time.

Positions are what an editor needs to underline the fault: `line` and `column` are 1-based
and count characters (not UTF-8 bytes, which is what `ast` reports); `position` is the 0-based
character offset into the source. All three are None when the fault has no place in the text
(e.g. the source is too long, or a field is missing from the response at run time and the
evaluator could not attribute it to a node).
"""

from __future__ import annotations


class ExpressionError(ValueError):
    """An expression is invalid (compile time) or could not be evaluated (run time).

    >>> str(ExpressionError("unknown name 'x'", line=1, column=5, position=4))
    "unknown name 'x' (line 1, column 5)"
    """

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        position: int | None = None,
    ) -> None:
        self.message = message
        self.line = line
        self.column = column
        self.position = position
        super().__init__(self._formatted())

    def _formatted(self) -> str:
        if self.line is None:
            return self.message
        return f"{self.message} (line {self.line}, column {self.column})"

    def __str__(self) -> str:
        return self._formatted()

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments defeat the default pickling of exceptions (Celery, multiprocess).
        return (_rebuild, (self.message, self.line, self.column, self.position))


def _rebuild(
    message: str, line: int | None, column: int | None, position: int | None
) -> ExpressionError:
    return ExpressionError(message, line=line, column=column, position=position)
