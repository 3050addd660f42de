"""Forward-return targets over market sessions: ``target_{h}d(t) = close(s+h)/close(s) - 1``.

``s`` is the session index of t in the market's calendar (the union of the panel's dates, the
``_day`` column). The target needs the code's row at exactly session s+h: a code that has no row
there (a suspension, a file without no-trade days) gets NaN, so a "1-day" target never spans a
gap. A row h sessions ahead lies within the code's next h rows, so each target is the first of
h shifted candidates whose session is s+h (vectorised; no join). Targets use the future by
definition; they are labels, never inputs. A missing or non-positive close gives NaN; nothing is
filled.
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features.returns_volatility import lead

SESSION = "_day"


def target_exprs(horizons: tuple[int, ...] | list[int], close: str = "close") -> list[pl.Expr]:
    """Expressions for ``target_{h}d`` on a frame sorted by (Code, Date) with ``_code``, ``_day``."""
    px = pl.when(pl.col(close) > 0).then(pl.col(close))
    day = pl.col(SESSION)

    def at_session_ahead(h: int) -> pl.Expr:
        return pl.coalesce(
            [pl.when(lead(day, j) == day + h).then(lead(px, j)) for j in range(1, h + 1)]
        )

    return [(at_session_ahead(h) / px - 1.0).alias(f"target_{h}d") for h in horizons]
