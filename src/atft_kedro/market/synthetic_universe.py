"""The synthetic universe: codes, names, classifications, listing lives and static loadings.

Everything here is per code (arrays of length ``n_codes``) and drawn once from the universe's
generator, so it does not depend on how the codes are later chunked. Days are indices into the
simulation timeline (burn-in, emitted sessions, then a short tail used by the forward oracle).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from atft_kedro.market.synthetic_config import SyntheticMarketConfig
from atft_kedro.market.taxonomy import (
    MARKET_CODES,
    MARKET_NAMES,
    SECTOR17_NAMES,
    SECTOR33,
    SECTOR33_CODES,
)

NEVER = np.iinfo(np.int32).max  # a change/delisting day that never comes

# Approximate number of TSE-listed companies per 33-sector (2024), used as sampling weights.
SECTOR33_WEIGHTS = np.array(
    [
        12,
        6,
        160,
        125,
        50,
        25,
        210,
        75,
        10,
        20,
        55,
        45,
        35,
        90,
        230,
        240,
        90,
        55,
        110,
        25,
        65,
        15,
        5,
        40,
        600,
        310,
        350,
        80,
        40,
        15,
        35,
        150,
        560,
    ],
    dtype=float,
)

# Letters the TSE uses in alphanumeric codes (it avoids B, E, I, O, Q, V, Z).
_CODE_LETTERS = np.array(list("ACDFGHJKLMNPRSTUWXY"))
_NAME_HEADS = np.array(
    [
        "Nippon",
        "Tokyo",
        "Osaka",
        "Sanwa",
        "Daiichi",
        "Fuji",
        "Asahi",
        "Toyo",
        "Chuo",
        "Kyowa",
        "Shin",
        "Nichi",
        "Meiji",
        "Taisei",
        "Hokuriku",
        "Kansai",
        "Yamato",
        "Sakura",
        "Tohoku",
        "Kyushu",
    ]
)
_NAME_TAILS = np.array(["Co., Ltd.", "Holdings, Inc.", "Corporation", "Group Co., Ltd."])


@dataclass(frozen=True)
class Universe:
    """Static per-code attributes (all arrays of length ``n_codes``)."""

    codes: np.ndarray  # str, 5 characters
    company_names: np.ndarray  # str
    sector_before: np.ndarray  # int, index into SECTOR33
    sector_after: np.ndarray  # int, sector from `sector_change_day` on
    sector_change_day: np.ndarray  # int, timeline index or NEVER
    market_before: np.ndarray  # int, index into MARKET_CODES
    market_after: np.ndarray
    market_change_day: np.ndarray
    cluster: np.ndarray  # int, latent lead-lag cluster
    beta: np.ndarray  # market beta
    sector_loading: np.ndarray  # loading on the sector factor
    idio_vol: np.ndarray  # long-run idiosyncratic daily vol
    shares: np.ndarray  # shares outstanding before any split in the period
    price: np.ndarray  # price (yen) on the first listed day of the timeline
    turnover: np.ndarray  # median daily volume / shares outstanding
    list_day: np.ndarray  # first timeline index with a row
    delist_day: np.ndarray  # first timeline index without a row (NEVER: still listed)
    fiscal_end_month: np.ndarray  # 1..12

    def sector_at(self, days: np.ndarray, cols: slice) -> np.ndarray:
        """Sector index ``[len(days), n_cols]`` in effect on each timeline day."""
        d = days[:, None]
        return np.where(
            d < self.sector_change_day[cols], self.sector_before[cols], self.sector_after[cols]
        )

    def market_at(self, days: np.ndarray, cols: slice) -> np.ndarray:
        """Market-segment index ``[len(days), n_cols]`` in effect on each timeline day."""
        d = days[:, None]
        return np.where(
            d < self.market_change_day[cols], self.market_before[cols], self.market_after[cols]
        )


def _codes(rng: np.random.Generator, n: int, alnum: np.ndarray) -> np.ndarray:
    """Unique 5-character codes: 4 digits + "0", or "DDDL0" (alphanumeric) where ``alnum``."""
    numeric = rng.choice(np.arange(1301, 9998), size=n, replace=False)
    codes = np.array([f"{c}0" for c in numeric], dtype=object)
    taken = set(codes)
    for i in np.flatnonzero(alnum):  # a handful of codes: a Python loop is fine here
        while True:
            code = f"{rng.integers(130, 999)}{rng.choice(_CODE_LETTERS)}0"
            if code not in taken:
                break
        taken.add(code)
        codes[i] = code
    return codes.astype(str)


def draw_universe(
    cfg: SyntheticMarketConfig, rng: np.random.Generator, burn: int, n_emit: int
) -> Universe:
    """Draw every static attribute of ``cfg.n_codes`` codes.

    ``burn`` and ``n_emit`` locate the emitted sessions in the timeline ``[burn, burn + n_emit)``;
    listings, delistings and reclassifications happen inside it.
    """
    n = cfg.n_codes
    market = rng.choice(3, size=n, p=np.asarray(cfg.market_shares))
    sector = rng.choice(len(SECTOR33), size=n, p=SECTOR33_WEIGHTS / SECTOR33_WEIGHTS.sum())
    cluster = rng.integers(0, cfg.n_clusters, size=n)
    lives = _Lives.draw(cfg, rng, market, burn, burn + n_emit)  # IPOs also move `market`

    # alphanumeric codes: preferably new listings, as on the TSE since 2024
    n_alnum = max(1, int(round(cfg.alnum_code_share * n)))
    pool = lives.ipo if len(lives.ipo) >= n_alnum else lives.order
    alnum = np.zeros(n, dtype=bool)
    alnum[rng.choice(pool, size=n_alnum, replace=False)] = True
    codes = _codes(rng, n, alnum)

    sector_change_day, sector_after = lives.reclassify(
        rng, cfg.sector_change_share, sector, len(SECTOR33)
    )
    market_change_day, market_after = lives.reclassify(rng, cfg.market_change_share, market, 3)
    return Universe(
        codes=codes,
        sector_before=sector,
        sector_after=sector_after,
        sector_change_day=sector_change_day,
        market_before=market,
        market_after=market_after,
        market_change_day=market_change_day,
        cluster=cluster,
        list_day=lives.list_day,
        delist_day=lives.delist_day,
        **_static_attributes(cfg, rng, market, sector),
    )


@dataclass(frozen=True)
class _Lives:
    """Listing lives on the timeline, with the emitted sessions ``[first, last)``."""

    order: np.ndarray  # a random permutation of the codes: IPOs first, then delistings
    ipo: np.ndarray  # codes listed inside the period
    list_day: np.ndarray
    delist_day: np.ndarray
    first: int
    last: int

    @classmethod
    def draw(
        cls,
        cfg: SyntheticMarketConfig,
        rng: np.random.Generator,
        market: np.ndarray,
        first: int,
        last: int,
    ) -> _Lives:
        """IPOs inside the period (mostly Growth: ``market`` is updated), delistings >= 60 later."""
        n = len(market)
        n_ipo = int(round(cfg.ipo_share * n))
        n_delist = int(round(cfg.delisting_share * n))
        order = rng.permutation(n)
        ipo, delisted = order[:n_ipo], order[n_ipo : n_ipo + n_delist]
        list_day = np.zeros(n, dtype=np.int64)
        list_day[ipo] = rng.integers(first + 1, max(first + 2, last - 20), size=n_ipo)
        market[ipo] = rng.choice(3, size=n_ipo, p=[0.1, 0.2, 0.7])
        delist_day = np.full(n, NEVER, dtype=np.int64)
        lo = np.maximum(list_day[delisted], first) + 60
        spread = (rng.random(n_delist) * np.maximum(last - lo, 1)).astype(np.int64)
        delist_day[delisted] = lo + spread
        delist_day = np.where(delist_day >= last, NEVER, delist_day)
        return cls(order, ipo, list_day, delist_day, first, last)

    def reclassify(
        self, rng: np.random.Generator, share: float, before: np.ndarray, n_classes: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """A ``share`` of listed codes move to another class on one day: (change day, class after)."""
        n = len(before)
        changes = rng.random(n) < share
        day = rng.integers(self.first + 1, self.last, size=n)
        ok = changes & (day > self.list_day) & (day < np.minimum(self.delist_day, self.last))
        after = np.where(ok, (before + rng.integers(1, n_classes, size=n)) % n_classes, before)
        return np.where(ok, day, NEVER), after


def _static_attributes(
    cfg: SyntheticMarketConfig, rng: np.random.Generator, market: np.ndarray, sector: np.ndarray
) -> dict[str, np.ndarray]:
    """Names, loadings, volatility, size, price, turnover and fiscal year end of each code."""
    n = len(market)
    growth = market == 2
    idio_vol = cfg.idio_vol * np.exp(cfg.idio_vol_dispersion * rng.standard_normal(n))
    idio_vol *= np.where(growth, cfg.growth_vol_multiplier, 1.0)
    shares = np.round(10 ** rng.uniform(6.5, 9.0, size=n) * np.where(market == 0, 3.0, 0.5), -3)
    price = np.round(10 ** rng.uniform(2.5, 4.3, size=n), 0)
    turnover = cfg.turnover_rate * np.exp(0.6 * rng.standard_normal(n)) * np.where(growth, 2, 1)
    fiscal_end_month = rng.choice([3, 12, 6, 9], size=n, p=[0.7, 0.2, 0.05, 0.05])
    sector_word = np.array([SECTOR33[s].name.split()[0].rstrip(",") for s in sector])
    names = np.char.add(
        np.char.add(rng.choice(_NAME_HEADS, size=n), " "),
        np.char.add(np.char.add(sector_word, " "), rng.choice(_NAME_TAILS, size=n)),
    )
    return {
        "company_names": names.astype(str),
        "idio_vol": idio_vol,
        "shares": shares,
        "price": price,
        "turnover": turnover,
        "fiscal_end_month": fiscal_end_month,
        "beta": np.clip(cfg.beta_mean + cfg.beta_sd * rng.standard_normal(n), 0.2, 2.2),
        "sector_loading": rng.uniform(0.7, 1.3, size=n),
    }


def listed_info_frame(u: Universe, dates: np.ndarray, first: int, last: int) -> pl.DataFrame:
    """As-of ``listed_info``: a row when a code enters the period and one per reclassification.

    ``dates`` are the timeline's dates; rows are dated with the first emitted session of the code
    (``first`` for codes listed before the period) or the session a change takes effect.
    """
    idx = np.arange(len(u.codes))
    entry = np.maximum(u.list_day, first)
    listed = entry < np.minimum(u.delist_day, last)
    rows = [
        (idx[listed], entry[listed]),
        (idx[u.sector_change_day < last], u.sector_change_day[u.sector_change_day < last]),
        (idx[u.market_change_day < last], u.market_change_day[u.market_change_day < last]),
    ]
    who = np.concatenate([r[0] for r in rows])
    day = np.concatenate([r[1] for r in rows])
    sector = np.where(day < u.sector_change_day[who], u.sector_before[who], u.sector_after[who])
    market = np.where(day < u.market_change_day[who], u.market_before[who], u.market_after[who])
    s17 = np.array([s.sector17 for s in SECTOR33])[sector]
    return (
        pl.DataFrame(
            {
                "Date": dates[day],
                "Code": u.codes[who],
                "CompanyName": u.company_names[who],
                "Sector17Code": s17,
                "Sector17CodeName": np.vectorize(SECTOR17_NAMES.get)(s17),
                "Sector33Code": np.array(SECTOR33_CODES)[sector],
                "Sector33CodeName": np.array([s.name for s in SECTOR33])[sector],
                "MarketCode": np.array(MARKET_CODES)[market],
                "MarketCodeName": np.array([MARKET_NAMES[m] for m in MARKET_CODES])[market],
            }
        )
        .with_columns(pl.col("Date").cast(pl.Date))
        .unique(subset=["Date", "Code"], keep="first")
        .sort("Date", "Code")
    )
