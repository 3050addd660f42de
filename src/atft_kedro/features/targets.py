"""Forward-return targets over market sessions, in three views of when a trade can happen.

With ``s`` the session of date t (``_day``, an index into the market's calendar):

    target_{h}d(t)      = close(s+h)   / close(s)   - 1     close-to-close (enter at the signal's close)
    target_next_{h}d(t) = close(s+1+h) / close(s+1) - 1     next-session entry, the JPX competition
                                                            convention (signal after close t, trade t+1)
    target_open_{h}d(t) = open(s+1+h)  / open(s+1)  - 1     next-session entry at the open

Next-session entry is what a strategy trading after the signal earns, and the **label**: the global
``label`` parameter (default ``next_close``, the JPX competition's and Qlib's convention) is the
target every learner fits (the model, its early stopping and HPO, every baseline) and the one the
headline figures score. Close to close is kept as a secondary view: its predictable part is mostly
one-day effects (a stock following yesterday's peers, reverting yesterday's own move) that are gone
by the next session, and bid-ask bounce inflates it (a close on the bid tends to be followed by one
on the ask). The features table holds all three; the report evaluates every model under each.

Each needs the code's rows at exactly those sessions: the frame is on the session grid (one row per
session between a code's first and last row, ``features.build.on_sessions``), so a row k sessions
ahead is k rows ahead; the session index is checked anyway. A missing or non-positive price gives
NaN; nothing is filled. Targets use the future by definition; they are labels, never inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from atft_kedro.features.labels import VIEWS, target_name
from atft_kedro.features.returns_volatility import lead

SESSION = "_day"


def _at_session_ahead(expr: pl.Expr, k: int) -> pl.Expr:
    """``expr`` at session s+k of the same code (null when the code has no row there)."""
    if k == 0:
        return expr
    day = pl.col(SESSION)
    return pl.when(lead(day, k) == day + k).then(lead(expr, k))


def target_exprs(horizons: Sequence[int]) -> list[pl.Expr]:
    """Every view's ``target`` expressions, on a frame sorted by (Code, Date) on the session grid
    with ``_code`` and ``_day``."""
    out = []
    for view, (_, price, entry) in VIEWS.items():
        px = pl.when(pl.col(price) > 0).then(pl.col(price))
        start = _at_session_ahead(px, entry)
        for h in horizons:
            end = _at_session_ahead(px, entry + h)
            out.append((end / start - 1.0).alias(target_name(h, view)))
    return out
