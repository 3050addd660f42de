"""The synthetic market: contracts, realism, determinism and the planted alpha."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from atft_kedro.market.calendar import tse_sessions
from atft_kedro.market.synthetic import SyntheticMarket, generate_market, write_market
from atft_kedro.market.synthetic_config import ALPHA_COMPONENTS, market_config
from atft_kedro.market.taxonomy import MARKET_CODES, SECTOR33_CODES, SECTOR33_TO_17

INVESTORS = ("Proprietary", "Individuals", "Foreigners", "InvestmentTrusts", "TrustBanks", "Total")
CONTRACT_COLUMNS = {  # docs/contracts.md, canonical raw tables
    "daily_quotes": [
        "Date",
        "Code",
        "Open",
        "High",
        "Low",
        "Close",
        "Volume",
        "TurnoverValue",
        "AdjustmentFactor",
        "AdjustmentOpen",
        "AdjustmentHigh",
        "AdjustmentLow",
        "AdjustmentClose",
        "AdjustmentVolume",
    ],
    "listed_info": [
        "Date",
        "Code",
        "CompanyName",
        "Sector17Code",
        "Sector17CodeName",
        "Sector33Code",
        "Sector33CodeName",
        "MarketCode",
        "MarketCodeName",
    ],
    "topix": ["Date", "Open", "High", "Low", "Close"],
    "trades_spec": ["PublishedDate", "StartDate", "EndDate", "Section"]
    + [f"{x}{k}" for x in INVESTORS for k in ("Sales", "Purchases", "Total", "Balance")],
    "statements": [
        "DisclosedDate",
        "DisclosedTime",
        "Code",
        "TypeOfCurrentPeriod",
        "NetSales",
        "OperatingProfit",
        "OrdinaryProfit",
        "Profit",
        "EarningsPerShare",
        "TotalAssets",
        "Equity",
        "ForecastNetSales",
        "ForecastOperatingProfit",
        "ForecastProfit",
    ],
    "oracle_alpha": [
        "Date",
        "Code",
        "alpha_1d",
        "alpha_5d",
        "alpha_10d",
        "alpha_20d",
        "alpha_next_1d",
        "alpha_next_5d",
        "alpha_next_10d",
        "alpha_next_20d",
    ],
    "alpha_components": ["Date", "Code"]
    + [f"{k}_{v}1d" for k in ALPHA_COMPONENTS for v in ("", "next_")],
    "latent_clusters": ["Code", "cluster"],
}
TEXT = {"Code", "CompanyName", "Section", "DisclosedTime", "TypeOfCurrentPeriod"}


@pytest.fixture(scope="module")
def tiny() -> dict[str, pl.DataFrame]:
    return generate_market("tiny", seed=0)


@pytest.fixture(scope="module")
def small() -> dict[str, pl.DataFrame]:
    return generate_market("small", seed=42)


def forward_returns(quotes: pl.DataFrame, h: int) -> pl.DataFrame:
    """Realised ``AdjustmentClose(t+h) / AdjustmentClose(t) - 1`` over each code's rows."""
    fwd = pl.col("AdjustmentClose").shift(-h).over("Code") / pl.col("AdjustmentClose") - 1
    return quotes.sort("Code", "Date").select("Date", "Code", fwd.alias("fwd"))


def mean_rank_ic(frame: pl.DataFrame, pred: str, target: str) -> float:
    ok = frame.drop_nulls([pred, target]).filter(pl.col(target).is_finite())
    per_day = ok.group_by("Date").agg(pl.corr(pred, target, method="spearman").alias("ric"))
    return float(per_day["ric"].drop_nans().mean())


def test_tables_have_exactly_the_contract_columns_and_types(tiny):
    for name, columns in CONTRACT_COLUMNS.items():
        frame = tiny[name]
        assert frame.columns == columns, name
        assert frame.height > 0, name
        for col, dtype in frame.schema.items():
            if col.endswith("Date") or col == "Date":
                expected = pl.Date
            elif col in TEXT or col.endswith(("Code", "CodeName")):
                expected = pl.Utf8
            elif col == "cluster":
                expected = pl.Int32
            else:
                expected = pl.Float64
            assert dtype == expected, f"{name}.{col}: {dtype}"
    assert tiny["daily_quotes"].select(pl.struct("Date", "Code").is_unique().all()).item()


def test_same_seed_same_market_and_other_seed_differs(tiny):
    again = generate_market("tiny", seed=0)
    for name, frame in tiny.items():
        assert frame.equals(again[name]), name
    other = generate_market("tiny", seed=1)
    assert not other["daily_quotes"].equals(tiny["daily_quotes"])
    assert not other["oracle_alpha"].equals(tiny["oracle_alpha"])


def test_results_do_not_depend_on_chunk_size():
    market = SyntheticMarket(market_config("tiny", n_codes=150), seed=3)

    def run(chunk_codes: int) -> tuple[pl.DataFrame, np.ndarray]:
        chunks = list(market.chunks(chunk_codes))
        quotes = pl.concat([c.tables["daily_quotes"] for c in chunks]).sort("Date", "Code")
        return quotes, sum(c.index_sums for c in chunks)

    (q_small, idx_small), (q_big, idx_big) = run(64), run(1024)
    assert q_small.equals(q_big)
    np.testing.assert_allclose(idx_small, idx_big, rtol=1e-12)


def test_ohlc_is_consistent_and_no_trade_days_are_jquants_style(tiny):
    q = tiny["daily_quotes"]
    traded = q.filter(pl.col("Volume") > 0)
    for prefix in ("", "Adjustment"):
        o, h, lo, c = (pl.col(prefix + x) for x in ("Open", "High", "Low", "Close"))
        ok = traded.select(
            ((lo <= pl.min_horizontal(o, c)) & (h >= pl.max_horizontal(o, c)) & (lo > 0)).all()
        )
        assert ok.item(), prefix
    assert traded["Open"].null_count() == traded["Close"].null_count() == 0
    idle = q.filter(pl.col("Volume") == 0)
    assert idle.height > 0
    prices = idle.select(pl.col("Open", "High", "Low", "Close").is_null().all())
    assert prices.row(0) == (True,) * 4
    assert (idle["TurnoverValue"] == 0).all() and (idle["AdjustmentVolume"] == 0).all()


def test_turnover_is_price_times_volume_and_volumes_are_heavy_tailed(tiny):
    q = tiny["daily_quotes"].filter(pl.col("Volume") > 0)
    ratio = q["TurnoverValue"] / (q["Volume"] * q["Close"])
    assert ratio.is_between(0.9, 1.1).all()
    dlv = q.sort("Code", "Date").select(pl.col("Volume").log().diff().over("Code")).to_series()
    dlv = dlv.drop_nulls().to_numpy()
    excess_kurtosis = np.mean((dlv - dlv.mean()) ** 4) / dlv.var() ** 2 - 3
    assert excess_kurtosis > 1.0


def test_splits_jump_unadjusted_prices_and_leave_adjusted_ones_continuous(tiny):
    q = tiny["daily_quotes"].sort("Code", "Date")
    ratio = {
        name: (pl.col(name) / pl.col(name).shift(1).over("Code")).alias(name)
        for name in ("Close", "AdjustmentClose", "Volume", "AdjustmentVolume")
    }
    q = q.with_columns(**ratio).filter(pl.col("Close").is_not_null())
    split = q.filter(pl.col("AdjustmentFactor") != 1)
    assert split.height > 0 and set(split["AdjustmentFactor"]) <= {0.5, 1 / 3, 0.25, 0.2, 0.1}
    implied_factor = split["Close"] / split["AdjustmentClose"]  # unadjusted jump / adjusted move
    np.testing.assert_allclose(implied_factor, split["AdjustmentFactor"], rtol=1e-6)
    assert (split["AdjustmentClose"].log().abs() < 0.3).all()  # no split-sized jump
    assert (split["Close"].log().abs() > 0.4).all()  # the raw series jumps by >= 1/0.5
    # the latest basis: on each code's last row adjusted equals unadjusted
    last = tiny["daily_quotes"].sort("Date").group_by("Code").last().drop_nulls("Close")
    np.testing.assert_allclose(last["AdjustmentClose"], last["Close"])
    np.testing.assert_allclose(last["AdjustmentVolume"], last["Volume"])


def test_dates_are_tse_sessions(tiny):
    dates = tiny["daily_quotes"]["Date"].unique().sort().to_list()
    assert dates == tse_sessions(dates[0], dates[-1])
    assert tiny["topix"]["Date"].to_list() == dates
    assert len(dates) == market_config("tiny").n_days


def test_listings_delistings_and_suspensions_happen(tiny):
    q = tiny["daily_quotes"]
    dates = q["Date"].unique().sort()
    life = q.group_by("Code").agg(
        pl.col("Date").min().alias("first"), pl.col("Date").max().alias("last"), pl.len()
    )
    assert (life["first"] > dates[0]).sum() >= 2  # IPOs
    assert (life["last"] < dates[-1]).sum() >= 2  # delistings
    session_index = {d: i for i, d in enumerate(dates.to_list())}
    span = life.with_columns(
        pl.col("first").replace_strict(session_index).alias("i0"),
        pl.col("last").replace_strict(session_index).alias("i1"),
    )
    gaps = span.filter(pl.col("i1") - pl.col("i0") + 1 > pl.col("len"))
    assert gaps.height >= 2  # suspended codes: missing sessions inside their listed life


def test_codes_are_five_characters_with_some_alphanumeric(tiny):
    codes = tiny["listed_info"]["Code"].unique()
    assert (codes.str.len_chars() == 5).all()
    assert codes.str.contains(r"^[0-9]{3}[A-Z]0$").sum() >= 1
    assert codes.str.contains(r"^[0-9]{4}0$|^[0-9]{3}[A-Z]0$").all()
    assert set(tiny["daily_quotes"]["Code"]) == set(codes)


def test_listed_info_uses_the_taxonomy_and_has_point_in_time_changes(tiny):
    li = tiny["listed_info"]
    assert set(li["Sector33Code"]) <= set(SECTOR33_CODES)
    assert set(li["MarketCode"]) <= set(MARKET_CODES)
    assert li.select(
        (pl.col("Sector17Code") == pl.col("Sector33Code").replace_strict(SECTOR33_TO_17)).all()
    ).item()
    changes = (
        li.sort("Code", "Date")
        .with_columns(
            pl.col("Sector33Code").shift(1).over("Code").alias("prev_sector"),
            pl.col("MarketCode").shift(1).over("Code").alias("prev_market"),
        )
        .filter(pl.col("prev_sector").is_not_null())
    )
    assert changes.height >= 2
    moved = (changes["prev_sector"] != changes["Sector33Code"]) | (
        changes["prev_market"] != changes["MarketCode"]
    )
    assert moved.all()
    first_row = li.group_by("Code").agg(pl.col("Date").min().alias("as_of"))
    first_quote = tiny["daily_quotes"].group_by("Code").agg(pl.col("Date").min().alias("q"))
    joined = first_row.join(first_quote, on="Code")
    assert (joined["as_of"] <= joined["q"]).all()


def test_statements_are_quarterly_and_straddle_the_close(tiny):
    st = tiny["statements"]
    assert set(st["TypeOfCurrentPeriod"]) == {"1Q", "2Q", "3Q", "FY"}
    times = st["DisclosedTime"]
    assert times.str.contains(r"^\d{2}:\d{2}:\d{2}$").all()
    assert (times < "15:00:00").sum() > 0 and (times >= "15:00:00").sum() > 0
    per_code = st.group_by("Code").agg(pl.col("DisclosedDate").sort().diff().dt.total_days())
    gaps = per_code["DisclosedDate"].explode().drop_nulls()
    assert gaps.min() >= 60 and gaps.median() < 110  # one statement a quarter
    sessions = set(tiny["daily_quotes"]["Date"])
    assert set(st["DisclosedDate"]) <= sessions


def test_trades_spec_is_weekly_by_section_and_published_after_the_week(tiny):
    ts = tiny["trades_spec"]
    assert set(ts["Section"]) == {"TSEPrime", "TSEStandard", "TSEGrowth"}
    assert (ts["PublishedDate"] > ts["EndDate"]).all() and (ts["EndDate"] >= ts["StartDate"]).all()
    assert (ts["PublishedDate"].dt.weekday() >= 3).mean() > 0.8  # Thursday-ish (Mon = 1)
    for x in INVESTORS:
        np.testing.assert_allclose(ts[f"{x}Balance"], ts[f"{x}Purchases"] - ts[f"{x}Sales"])
        np.testing.assert_allclose(ts[f"{x}Total"], ts[f"{x}Purchases"] + ts[f"{x}Sales"])


def test_topix_is_the_cap_weighted_index_and_stress_raises_its_volatility(small):
    topix = small["topix"]
    ok = topix.select(
        (pl.col("Low") <= pl.min_horizontal("Open", "Close"))
        & (pl.col("High") >= pl.max_horizontal("Open", "Close"))
    )
    assert ok.to_series().all()
    r_topix = topix["Close"].log().diff().drop_nulls().to_numpy()
    # equal-weight universe return must track the index closely (common market factor)
    ew = (
        small["daily_quotes"]
        .sort("Code", "Date")
        .with_columns(pl.col("AdjustmentClose").log().diff().over("Code").alias("r"))
        .group_by("Date")
        .agg(pl.col("r").mean())
        .sort("Date")["r"]
        .to_numpy()[1:]
    )
    assert np.corrcoef(r_topix, ew)[0, 1] > 0.9
    market = SyntheticMarket(market_config("small"), seed=42)
    regime = market.state.regime[market.first + 1 : market.last]
    assert 0 < regime.mean() < 1
    assert r_topix[regime == 1].std() > 1.5 * r_topix[regime == 0].std()


@pytest.mark.parametrize("fixture", ["tiny", "small"])
def test_alpha_variance_shares_match_the_parameters(fixture, request):
    market = request.getfixturevalue(fixture)
    parts, oracle = market["alpha_components"], market["oracle_alpha"]
    total = parts.select(pl.sum_horizontal(f"{k}_1d" for k in ALPHA_COMPONENTS)).to_series()
    np.testing.assert_allclose(total, oracle["alpha_1d"], atol=1e-12)
    shares = market_config(fixture).alpha_shares
    var = oracle["alpha_1d"].var()
    for name in ALPHA_COMPONENTS:
        assert parts[f"{name}_1d"].var() / var == pytest.approx(shares[name], abs=0.04), name
    assert shares["lead_lag"] >= 0.30 and shares["regime_momentum"] >= 0.20


def test_variance_shares_follow_overrides():
    shares = {"lead_lag": 0.6, "regime_momentum": 0.1, "reversal": 0.1}
    shares |= {"earnings_drift": 0.1, "investor_flow": 0.1}
    market = generate_market("tiny", seed=0, alpha_shares=shares)
    var = market["oracle_alpha"]["alpha_1d"].var()
    assert market["alpha_components"]["lead_lag_1d"].var() / var == pytest.approx(0.6, abs=0.05)


def test_next_session_components_sum_to_the_next_session_oracle(small):
    """The next-session parts add up to ``alpha_next_1d``; the one-day effects (lead-lag,
    reversal) are gone by then, the persistent ones (momentum, drift, flow) are not."""
    parts, oracle = small["alpha_components"], small["oracle_alpha"]
    total = parts.select(pl.sum_horizontal(f"{k}_next_1d" for k in ALPHA_COMPONENTS)).to_series()
    np.testing.assert_allclose(total, oracle["alpha_next_1d"], atol=1e-12)
    assert (parts["lead_lag_next_1d"] == 0).all() and (parts["reversal_next_1d"] == 0).all()
    for name in ("regime_momentum", "earnings_drift", "investor_flow"):
        same_day, next_day = parts[f"{name}_1d"], parts[f"{name}_next_1d"]
        assert next_day.var() > 0.5 * same_day.var(), name
        assert np.corrcoef(same_day, next_day)[0, 1] > 0.8, name


def test_oracle_rank_ic_is_in_the_documented_band(small):
    joined = small["oracle_alpha"].join(
        forward_returns(small["daily_quotes"], 1), on=["Date", "Code"]
    )
    assert 0.08 <= mean_rank_ic(joined, "alpha_1d", "fwd") <= 0.12
    for h in (5, 10, 20):
        joined = small["oracle_alpha"].join(
            forward_returns(small["daily_quotes"], h), on=["Date", "Code"]
        )
        assert mean_rank_ic(joined, f"alpha_{h}d", "fwd") > 0.05, h


def test_signal_strength_zero_removes_the_edge():
    market = generate_market("tiny", seed=0, signal_strength=0.0)
    assert (market["oracle_alpha"]["alpha_1d"] == 0).all()


def test_latent_clusters_table_is_the_universe_s_clusters(small):
    market = SyntheticMarket(market_config("small"), seed=42)
    table = small["latent_clusters"]
    assert table["Code"].to_list() == sorted(market.universe.codes.tolist())
    truth = dict(zip(market.universe.codes, market.universe.cluster, strict=True))
    assert all(truth[c] == k for c, k in table.iter_rows())
    assert table["cluster"].n_unique() == market_config("small").n_clusters
    assert set(small["daily_quotes"]["Code"].unique()) <= set(table["Code"])


def test_lead_lag_follows_latent_clusters_not_sectors(small):
    """The lead-lag component is the clusters' common move: peers reveal it, sectors do not."""
    clusters = small["latent_clusters"]
    cluster = dict(zip(clusters["Code"], clusters["cluster"].cast(pl.Utf8), strict=True))
    info = small["listed_info"].sort("Date").group_by("Code").first().select("Code", "Sector33Code")
    r = (
        small["daily_quotes"]
        .sort("Code", "Date")
        .with_columns(pl.col("AdjustmentClose").log().diff().over("Code").alias("r"))
        .join(
            small["alpha_components"].select("Date", "Code", lead_lag="lead_lag_1d"),
            on=["Date", "Code"],
        )
        .join(info, on="Code")
        .with_columns(pl.col("Code").replace_strict(cluster).alias("cluster"))
        .drop_nulls("r")
    )
    peer = (pl.col("r").sum() - pl.col("r")) / (pl.len() - 1)  # leave-one-out mean
    r = r.with_columns(
        peer.over("Date", "cluster").alias("cluster_peers"),
        peer.over("Date", "Sector33Code").alias("sector_peers"),
    )
    ic_cluster = mean_rank_ic(r, "lead_lag", "cluster_peers")
    ic_sector = mean_rank_ic(r, "lead_lag", "sector_peers")
    assert ic_cluster > 0.4
    assert ic_sector < 0.5 * ic_cluster


def test_oracle_is_not_a_column_of_the_other_tables(tiny):
    joined = tiny["oracle_alpha"].join(tiny["daily_quotes"], on=["Date", "Code"]).drop_nulls()
    columns = [c for c in CONTRACT_COLUMNS["daily_quotes"] if c not in ("Date", "Code")]
    for h in (1, 5, 10, 20):
        alpha = joined[f"alpha_{h}d"].to_numpy()
        for col in columns:
            x = joined[col].to_numpy()
            corr = 0.0 if x.std() == 0 else abs(np.corrcoef(alpha, x)[0, 1])
            assert corr < 0.9, (h, col)


def test_write_market_streams_the_same_tables(tmp_path, tiny):
    files = write_market(tmp_path, preset="tiny", seed=0, chunk_codes=16)
    assert set(files) == set(CONTRACT_COLUMNS)
    for name, path in files.items():
        frame = pl.read_parquet(path)
        if name in ("daily_quotes", "oracle_alpha", "statements"):
            frame = frame.sort(*frame.columns[:1], "Code")
        assert frame.equals(tiny[name]), name


def test_bad_configuration_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        generate_market("huge")
    with pytest.raises(ValueError, match="unknown synthetic-market parameter"):
        generate_market("tiny", n_stocks=3)
    with pytest.raises(ValueError, match="alpha_shares"):
        market_config("tiny", alpha_shares={"lead_lag": 1.0})
