"""Forward-return targets: ``target_{h}d(t) = close(t+h)/close(t) - 1`` over the code's trading rows.

Targets use the future by definition; they are labels, never inputs. A missing or non-positive
close at t or t+h, or a code with fewer than h rows after t, gives NaN; nothing is filled.
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features.returns_volatility import lead


def target_exprs(horizons: tuple[int, ...] | list[int], close: str = "close") -> list[pl.Expr]:
    """Expressions for ``target_{h}d`` on a frame sorted by (Code, Date) with ``_code``."""
    px = pl.when(pl.col(close) > 0).then(pl.col(close))
    return [(lead(px, h) / px - 1.0).alias(f"target_{h}d") for h in horizons]
