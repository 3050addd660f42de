import numpy as np
import polars as pl
import pytest

from atft_kedro.features import build_features, registry
from tests.features.tables import make_panel, make_statements, with_flat_stocks


def _perturb_after(tables: dict, t) -> dict:
    """Every raw value dated after ``t`` changed (prices, volumes, sectors, index, flows, filings)."""
    rng = np.random.default_rng(0)
    panel, after = tables["panel"], pl.col("Date") > t
    shock = pl.Series(rng.uniform(0.5, 1.5, panel.height))
    panel = panel.with_columns(
        *[
            pl.when(after).then(pl.col(c) * shock).otherwise(pl.col(c)).alias(c)
            for c in ("open", "high", "low", "close", "volume", "turnover")
        ],
        sector33=pl.when(after).then(pl.lit("0050")).otherwise(pl.col("sector33")),
    )
    topix = tables["topix"].with_columns(
        Close=pl.when(after).then(pl.col("Close") * 1.3).otherwise(pl.col("Close"))
    )
    spec = tables["trades_spec"]
    money = [c for c in spec.columns if c.endswith(("Sales", "Purchases", "Total", "Balance"))]
    spec = spec.with_columns(
        pl.when(pl.col("PublishedDate") > t).then(pl.col(c) * -2.0).otherwise(pl.col(c)).alias(c)
        for c in money
    )
    stm = tables["statements"]
    stm = stm.with_columns(
        pl.when(pl.col("DisclosedDate") > t).then(pl.col(c) * 3.0).otherwise(pl.col(c)).alias(c)
        for c in (
            "NetSales",
            "OperatingProfit",
            "Profit",
            "Equity",
            "ForecastNetSales",
            "ForecastOperatingProfit",
            "ForecastProfit",
        )
    )
    return {"panel": panel, "topix": topix, "trades_spec": spec, "statements": stm}


@pytest.fixture(scope="module")
def flat_tables(tables):
    """``tables`` with two stocks whose price does not move for weeks while they trade.

    Their returns are exactly 0, so a variance from running sums is rounding residue carried down
    the column from earlier rows, including the later rows of the codes before them: unless such
    a variance is compared with a tolerance, its validity flips with data after the date, and so
    does every stock's cross-sectional score of that date.
    """
    return {**tables, "panel": with_flat_stocks(tables["panel"])}


@pytest.mark.parametrize("method", ["zscore", "rank_gauss"])
def test_no_look_ahead(flat_tables, method):
    tables = flat_tables
    t = tables["panel"]["Date"].unique().sort()[100]
    base = build_features(**tables, cs_method=method)
    moved = build_features(**_perturb_after(tables, t), cs_method=method)
    cols = registry.feature_names("features") + registry.mask_names("features")
    a, b = base.filter(pl.col("Date") <= t), moved.filter(pl.col("Date") <= t)
    assert a.height == b.height > 0
    moved_rows = {}
    for c in cols:  # bit for bit: a score that moves by one float32 ulp has seen the future
        x, y = a[c].to_numpy().astype(np.float64), b[c].to_numpy().astype(np.float64)
        changed = ~((x == y) | (np.isnan(x) & np.isnan(y)))
        if changed.any():
            days = a.filter(pl.Series(changed))["Date"].n_unique()
            moved_rows[c] = (
                f"{changed.sum()} rows on {days} dates, by up to {np.nanmax(abs(x - y))}"
            )
    assert not moved_rows, moved_rows
    # the perturbation did reach the future rows (the test can fail)
    assert not base.filter(pl.col("Date") > t)["ret_1d"].equals(
        moved.filter(pl.col("Date") > t)["ret_1d"]
    )


def _no_inf(df: pl.DataFrame) -> None:
    floats = [c for c, t in df.schema.items() if t == pl.Float32]
    assert not df.select(pl.any_horizontal(pl.col(floats).is_infinite()).any()).item()


def test_quirks_never_crash_or_inf():
    panel = make_panel(n_codes=6, n_days=90, seed=8)
    days = panel["Date"].unique().sort()
    codes = panel["Code"].unique().sort()
    dead = (pl.col("Code") == codes[0]) & pl.col("Date").is_in(days[20:25].implode())
    broken = (pl.col("Code") == codes[1]) & (pl.col("Date") == days[30])
    jump = (pl.col("Code") == codes[2]) & (pl.col("Date") >= days[40])
    panel = panel.with_columns(
        *[
            pl.when(dead).then(None).otherwise(pl.col(c)).alias(c)
            for c in ("open", "high", "low", "close")
        ],
        volume=pl.when(dead).then(0.0).otherwise(pl.col("volume")),
        turnover=pl.when(dead).then(0.0).otherwise(pl.col("turnover")),
    ).with_columns(
        high=pl.when(broken).then(pl.col("low") * 0.5).otherwise(pl.col("high")),  # high < low
        close=pl.when(jump)
        .then(pl.col("close") * 10)
        .otherwise(pl.col("close")),  # unadjusted split
    )
    short = panel.filter(pl.col("Code") == codes[3]).head(3).with_columns(Code=pl.lit("99990"))
    zero = panel.filter(pl.col("Code") == codes[4]).with_columns(
        Code=pl.lit("88880"), close=pl.lit(0.0), volume=pl.lit(0.0)
    )
    panel = pl.concat([panel, short, zero]).sample(
        fraction=1.0, shuffle=True, seed=1
    )  # rows out of order
    df = build_features(panel, statements=make_statements(panel.filter(pl.col("Code") != "88880")))
    _no_inf(df)
    assert df.height == panel.height
    assert df.select("Date", "Code").equals(df.select("Date", "Code").sort("Date", "Code"))
    s = df.filter(pl.col("Code") == "99990")
    assert s["ret_5d"].is_nan().all() and (s["is_returns_valid"] == 0).all()
    b = df.filter((pl.col("Code") == codes[1]) & (pl.col("Date") == days[30]))
    assert (
        0.0
        <= build_features(panel, cs_method="none").filter(
            (pl.col("Code") == codes[1]) & (pl.col("Date") == days[30])
        )["close_position"][0]
        <= 1.0
    )
    assert b.height == 1
    for f in registry.families("features"):
        mask = df[f"is_{f}_valid"]
        feats = df.select(registry.family_features(f))
        all_finite = feats.select(pl.all_horizontal(pl.all().is_not_nan())).to_series()
        assert (mask == all_finite.cast(pl.Int8)).all(), f


def test_missing_optional_tables_give_masked_nan():
    panel = make_panel(n_codes=3, n_days=30, seed=1)
    df = build_features(panel)
    for family in ("flows", "statements"):
        assert (df[f"is_{family}_valid"] == 0).all()
        assert df.select(pl.col(registry.family_features(family)).is_nan().all()).row(0) == tuple(
            [True] * len(registry.family_features(family))
        )


def test_chunking_does_not_change_the_result(tables):
    a = build_features(**tables)
    b = build_features(**tables, chunk_rows=200)
    assert a.equals(b, null_equal=True)


def test_oracle_alpha_never_reaches_features(tables):
    oracle_panel = tables["panel"].with_columns(alpha_1d=pl.lit(1.0), oracle_alpha=pl.lit(1.0))
    df = build_features(oracle_panel, tables["topix"])
    assert not any("oracle" in c for c in df.columns)
    assert "beta_resid_1d" in df.columns and not (df["beta_resid_1d"] == 1.0).any()


def test_duplicate_rows_are_named():
    panel = make_panel(n_codes=2, n_days=10)
    with pytest.raises(ValueError, match="panel: \\(Date, Code\\) is not unique.*Code"):
        build_features(pl.concat([panel, panel.head(1)]))
    with pytest.raises(ValueError, match="panel: missing column"):
        build_features(panel.drop("turnover"))
