"""Stage: features. `FeatureSet`: the columns a model reads, and the optional source columns they need.

Reads and writes nothing. Every feature builder (booking, milestones, demand, SCMS) describes its output
with a `FeatureSet`; the model layer encodes and stores it with the model (`models.encoding`), so training,
batch and online scoring read the same columns.

Example:
    >>> fs = FeatureSet(("weight_kg",), ("mode", "carrier"), inputs=("carrier", "weight_kg"))
    >>> fs.names
    ('weight_kg', 'mode', 'carrier')
    >>> fs.require(["mode", "weight_kg"], table="shipments")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: shipments lack column(s) carrier that these features were built from ...
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["FeatureSet"]


@dataclass(frozen=True)
class FeatureSet:
    """The feature columns a model reads: numeric ones as they are, categorical ones to encode.

    Categorical columns are String or Enum in the frame; the model layer encodes them (fixed `pl.Enum`
    levels for `mode`, `incoterm`, `ecommerce_peak`, `last_event`; a vocabulary saved with the model for
    the String ones). Numeric columns are Int/Float/Boolean.

    Attributes:
        numeric: numeric feature columns.
        categorical: categorical feature columns.
        inputs: the optional contract columns (e.g. `carrier`, `hs_code`) the features were built from. A
            source without one of them gets a feature set without its features, never a stand-in constant;
            scoring rows must then carry exactly these (`require`).
    """

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    inputs: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """All feature columns, numeric first."""
        return (*self.numeric, *self.categorical)

    def require(self, columns: Iterable[str], *, table: str) -> None:
        """Raise `ValueError` naming every input of this set absent from `columns` (the rows of `table`)."""
        present = set(columns)
        missing = [c for c in self.inputs if c not in present]
        if missing:
            raise ValueError(
                f"{table} lack column(s) {', '.join(missing)} that these features were built from (the "
                "model was trained on data that had them): add the column(s), or retrain on data without them"
            )
