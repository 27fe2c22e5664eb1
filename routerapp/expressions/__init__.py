"""Safe expressions for `success_when` and rule conditions. PURE: stdlib + simpleeval only.

Operators write Python-like expressions that the server evaluates:

    response.choices[0].finish_reason == 'stop' and len(response.choices[0].message.content) > 10
    complexity >= 7 and task_type == 'code'
    'refund' in keywords or metadata.tier == 'free'

Public surface:
- `compile_expression(source, *, names)` -> `CompiledExpression`: validates at save time;
  refusals carry line/column/position (see `validate.py` for the grammar).
- `CompiledExpression.evaluate(names)`, `evaluate(source, names)`: run time; every failure is
  an `ExpressionError` (see `evaluator.py` for why evaluation is bounded in time and size).
- `plain_view(data)`: read-only attribute/item view of nested dicts and lists (`views.py`).
- Functions available inside expressions: len, lower, upper, strip, startswith, endswith,
  contains, get, int, float, str, bool, min, max, abs, any, all (`functions.py`).
"""

from __future__ import annotations

from routerapp.expressions.errors import ExpressionError
from routerapp.expressions.evaluator import CompiledExpression, compile_expression, evaluate
from routerapp.expressions.functions import FUNCTIONS
from routerapp.expressions.views import plain_view

__all__ = [
    "FUNCTIONS",
    "CompiledExpression",
    "ExpressionError",
    "compile_expression",
    "evaluate",
    "plain_view",
]
