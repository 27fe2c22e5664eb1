"""Typed errors of the engine: every bad input becomes one of these, never a NaN decision.

All subclass `EngineError`, itself a `ValueError`, so callers that only care about "bad input"
can catch one class. Messages name the offending path and value.
"""

from __future__ import annotations


class EngineError(ValueError):
    """Base class of every error the engine raises on bad input."""


class NoEligiblePaths(EngineError):
    """`rank_paths` (or a helper) was given no arm at all."""


class InvalidWeight(EngineError):
    """A weight is negative, NaN or infinite, or every weight is zero."""


class InvalidOutcome(EngineError):
    """An outcome value (or a reference quality) is outside [0, 1] or NaN."""


class InvalidEvidence(EngineError):
    """Evidence counts or explicit priors are negative, NaN, absurdly large or half-given."""


class InvalidCost(EngineError):
    """An expected cost is negative, NaN or infinite, or a cost-aware objective got only zeros."""


class UnknownPath(EngineError):
    """A path id that is not among the arms."""


class DuplicatePath(EngineError):
    """Two arms share one path id."""


class InvalidConfig(EngineError):
    """An `EngineConfig` field, half-life or controller state is out of range."""
