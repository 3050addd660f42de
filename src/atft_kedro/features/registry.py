"""The feature registry: every model input is defined here once.

Each ``FeatureSpec`` names a feature, its family, its formula (the definition documentation and tests
are checked against), its warm-up (the 0-based trading row of a code, or of the calendar for
market-wide features, at which the value first exists on clean data) and whether it is
cross-sectionally normalised.

Conventions used in the formulas
- ``c, o, h, l, v, tv``: adjusted close, open, high, low, volume, turnover of the stock on day t.
  ``c`` is forward-filled over the code's zero-volume days (no trade: the price did not move);
  ``h, l`` are the envelope ``max/min(o, h, l, c)`` of the bar (an OHLC row out of order is repaired,
  not dropped); a bar with a missing or non-positive price is missing.
- ``x[t-k]``: the value k trading rows earlier *of the same code*. ``SMA_w, EMA_s, STD_w, MAX_w,
  MIN_w``: trailing windows over the code's rows, ending at t (EMA: ``adjust=False``, alpha 2/(s+1);
  Wilder: alpha 1/n). ``r = c/c[t-1] - 1``; ``lr = ln(c/c[t-1])``. Standard deviations use ddof=1.
- ``M``: the market index close (TOPIX; if no TOPIX table is given, an equal-weight index of the
  panel's ``r`` is used instead and ``is_topix_valid`` is 0). ``m = M/M[t-1] - 1``.
- ``S``: the equal-weight mean of ``r`` over the stocks of the stock's sector33 on day t (sector as
  of t); ``sr`` is that sector return series, windows over the sector's dates.
- flows: the latest weekly investor-type table of the stock's market section (Prime/Standard/Growth)
  effective on t (from the trading day after PublishedDate).
- statements: the latest disclosure of the code effective on t (the disclosure day if disclosed
  before the market close, else the next trading day); ``prev_year`` is the latest same-period
  disclosure made 300 to 430 days before it.

Cross-sectional normalisation (``cs_normalised=True``) replaces the stored value by its per-Date
z-score across the whole universe (clipped) or rank-Gaussian score: the model sees where a stock
stands among its peers that day. Raw values are not kept: levels such as volatility drift over
years, and the per-Date score is the scale-free version of the same information. Market-wide
features (identical for every stock on a date) and section-wide flows (three values per date) are
stored raw and left to the training scaler.

Validity masks: ``is_<family>_valid`` is 1 on a row iff every feature of the family is finite there
(after normalisation); ``is_topix_valid`` is 1 iff the market family comes from a TOPIX table.

Stages: most families are built by the data_processing pipeline into the ``features`` table
(stage ``features``). The ``peer`` family needs each day's correlation graph, so the graph
pipeline builds it (stage ``graph``, :mod:`atft_kedro.graph.peers`) and joins it to the features
as the ``model_input`` table. The model's inputs are every stage's features, then every stage's
masks (:func:`model_input_names`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from atft_kedro.features.labels import VIEWS, target_name

Stage = Literal["features", "graph"]
STAGES: tuple[Stage, ...] = ("features", "graph")


@dataclass(frozen=True)
class FeatureSpec:
    """One model input feature."""

    name: str
    family: str
    formula: str
    warmup: int
    cs_normalised: bool
    stage: Stage = "features"


def _f(name: str, family: str, formula: str, warmup: int, cs: bool = True) -> FeatureSpec:
    return FeatureSpec(name, family, formula, warmup, cs)


def _peer(name: str, formula: str) -> FeatureSpec:
    """A peer feature: built by the graph pipeline, raw (its scale is the robust scaler's job).

    Warm-up: the graph's ``min_obs`` returns, plus the feature's own window; the formulas use
    ``r`` = the day's log return net of β × market and the sector33 mean, ``w_ij = ρ_ij / σ_60(r_j)``
    over the day's graph neighbours j.
    """
    return FeatureSpec(name, "peer", formula, 0, False, "graph")


def _momentum(name: str, formula: str) -> FeatureSpec:
    """A residual-momentum feature: built by the graph pipeline beside the peer family, raw."""
    return FeatureSpec(name, "momentum", formula, 0, False, "graph")


FEATURES: tuple[FeatureSpec, ...] = (
    # returns
    _f("ret_1d", "returns", "c/c[t-1] - 1", 1),
    _f("ret_5d", "returns", "c/c[t-5] - 1", 5),
    _f("ret_10d", "returns", "c/c[t-10] - 1", 10),
    _f("ret_20d", "returns", "c/c[t-20] - 1", 20),
    _f("ret_60d", "returns", "c/c[t-60] - 1", 60),
    _f("ret_120d", "returns", "c/c[t-120] - 1", 120),
    _f("log_ret_1d", "returns", "ln(c/c[t-1])", 1),
    _f("log_ret_5d", "returns", "ln(c/c[t-5])", 5),
    _f("log_ret_20d", "returns", "ln(c/c[t-20])", 20),
    # volatility
    _f("vol_5d", "volatility", "STD_5(lr)", 5),
    _f("vol_10d", "volatility", "STD_10(lr)", 10),
    _f("vol_20d", "volatility", "STD_20(lr)", 20),
    _f("vol_60d", "volatility", "STD_60(lr)", 60),
    _f("parkinson_vol_5d", "volatility", "sqrt(SMA_5(ln(h/l)^2) / (4 ln 2))", 4),
    _f("parkinson_vol_20d", "volatility", "sqrt(SMA_20(ln(h/l)^2) / (4 ln 2))", 19),
    _f("vol_ratio_5_20", "volatility", "vol_5d / vol_20d", 20),
    # moving-average gaps
    _f("sma_gap_5", "ma_gap", "c/SMA_5(c) - 1", 4),
    _f("sma_gap_20", "ma_gap", "c/SMA_20(c) - 1", 19),
    _f("sma_gap_60", "ma_gap", "c/SMA_60(c) - 1", 59),
    _f("ema_gap_5", "ma_gap", "c/EMA_5(c) - 1", 4),
    _f("ema_gap_10", "ma_gap", "c/EMA_10(c) - 1", 9),
    _f("ema_gap_20", "ma_gap", "c/EMA_20(c) - 1", 19),
    _f("ema_gap_60", "ma_gap", "c/EMA_60(c) - 1", 59),
    _f("sma_cross_5_20", "ma_gap", "SMA_5(c)/SMA_20(c) - 1", 19),
    _f("sma_cross_20_60", "ma_gap", "SMA_20(c)/SMA_60(c) - 1", 59),
    # range and volume
    _f("hl_range", "range_volume", "(h - l)/c", 0),
    _f("close_to_high", "range_volume", "c/h - 1", 0),
    _f("close_to_low", "range_volume", "c/l - 1", 0),
    _f("close_position", "range_volume", "(c - l)/(h - l); 0.5 if h == l", 0),
    _f("gap_open", "range_volume", "o/c[t-1] - 1", 1),
    _f("volume_ratio_5", "range_volume", "v/SMA_5(v)", 4),
    _f("volume_ratio_20", "range_volume", "v/SMA_20(v)", 19),
    _f("log_turnover", "range_volume", "ln(1 + tv)", 0),
    _f("turnover_ratio_20", "range_volume", "tv/SMA_20(tv)", 19),
    # technicals
    _f("rsi_2", "technicals", "U/(U + D), U, D = Wilder_2(max(dc, 0)), Wilder_2(max(-dc, 0))", 2),
    _f(
        "rsi_14",
        "technicals",
        "U/(U + D), U, D = Wilder_14(max(dc, 0)), Wilder_14(max(-dc, 0))",
        14,
    ),
    _f("macd_hist", "technicals", "(MACD - EMA_9(MACD))/c, MACD = EMA_12(c) - EMA_26(c)", 33),
    _f("bb_pct_b_20", "technicals", "(c - SMA_20(c) + 2 STD_20(c)) / (4 STD_20(c))", 19),
    _f("bb_width_20", "technicals", "4 STD_20(c) / SMA_20(c)", 19),
    _f("atr_14", "technicals", "Wilder_14(max(h - l, |h - c[t-1]|, |l - c[t-1]|)) / c", 14),
    _f("stoch_k_14", "technicals", "(c - MIN_14(l)) / (MAX_14(h) - MIN_14(l))", 13),
    # market (market-wide: identical for all stocks on a date, not cs-normalised)
    _f("mkt_ret_1d", "market", "M/M[t-1] - 1", 1, False),
    _f("mkt_ret_5d", "market", "M/M[t-5] - 1", 5, False),
    _f("mkt_ret_20d", "market", "M/M[t-20] - 1", 20, False),
    _f("mkt_ret_60d", "market", "M/M[t-60] - 1", 60, False),
    _f("mkt_vol_20d", "market", "STD_20(m)", 20, False),
    _f("mkt_vol_60d", "market", "STD_60(m)", 60, False),
    _f("mkt_trend_20_60", "market", "SMA_20(M)/SMA_60(M) - 1", 59, False),
    _f("mkt_drawdown_60", "market", "M/MAX_60(M) - 1", 59, False),
    _f("mkt_bull_regime", "market", "1 if M > SMA_60(M) else 0", 59, False),
    _f("mkt_high_vol_regime", "market", "1 if mkt_vol_20d > mkt_vol_60d else 0", 60, False),
    # stock x market
    _f("beta_60d", "stock_market", "COV_60(r, m)/VAR_60(m)", 60),
    _f("corr_mkt_60d", "stock_market", "COV_60(r, m)/sqrt(VAR_60(r) VAR_60(m))", 60),
    _f("beta_resid_1d", "stock_market", "r - beta_60d * m", 60),
    _f("beta_resid_20d", "stock_market", "ret_20d - beta_60d * mkt_ret_20d", 60),
    _f("rel_strength_5d", "stock_market", "ret_5d - mkt_ret_5d", 5),
    _f("rel_strength_20d", "stock_market", "ret_20d - mkt_ret_20d", 20),
    _f("idio_vol_60d", "stock_market", "sqrt(max(VAR_60(r) - beta_60d^2 VAR_60(m), 0))", 60),
    # sector (equal-weight sector33 series from the universe on each date)
    _f("sec_ret_1d", "sector", "S = mean of r over the sector's stocks on t", 1),
    _f("sec_mom_5d", "sector", "exp(SUM_5(ln(1 + sr))) - 1", 5),
    _f("sec_mom_20d", "sector", "exp(SUM_20(ln(1 + sr))) - 1", 20),
    _f("sec_vol_20d", "sector", "STD_20(sr)", 20),
    _f("sec_breadth", "sector", "share of the sector's stocks with r > 0 on t", 1),
    _f("rel_to_sec_1d", "sector", "r - sec_ret_1d", 1),
    _f("rel_to_sec_5d", "sector", "ret_5d - sec_mom_5d", 5),
    _f("rel_to_sec_20d", "sector", "ret_20d - sec_mom_20d", 20),
    # flows (section-wide: three values per date, not cs-normalised)
    _f("flow_foreign_net", "flows", "ForeignersBalance/ForeignersTotal", 0, False),
    _f("flow_individual_net", "flows", "IndividualsBalance/IndividualsTotal", 0, False),
    _f("flow_trust_net", "flows", "InvestmentTrustsBalance/InvestmentTrustsTotal", 0, False),
    _f("flow_proprietary_net", "flows", "ProprietaryBalance/ProprietaryTotal", 0, False),
    _f(
        "flow_foreign_z_13w",
        "flows",
        "(ForeignersBalance - SMA_13w)/STD_13w over the section's weekly tables",
        0,
        False,
    ),
    _f("flow_activity_13w", "flows", "TotalTotal/SMA_13w(TotalTotal) over weekly tables", 0, False),
    # statements (latest effective disclosure of the code)
    _f("stmt_yoy_sales", "statements", "NetSales/prev_year.NetSales - 1", 0),
    _f("stmt_yoy_op", "statements", "OperatingProfit/|prev_year.OperatingProfit| - 1", 0),
    _f("stmt_yoy_profit", "statements", "Profit/|prev_year.Profit| - 1", 0),
    _f("stmt_op_margin", "statements", "OperatingProfit/NetSales", 0),
    _f("stmt_net_margin", "statements", "Profit/NetSales", 0),
    _f("stmt_progress_sales", "statements", "NetSales/ForecastNetSales", 0),
    _f("stmt_progress_op", "statements", "OperatingProfit/ForecastOperatingProfit", 0),
    _f("stmt_roe", "statements", "Profit/Equity * (4/quarters in period)", 0),
    _f("stmt_roa", "statements", "Profit/TotalAssets * (4/quarters in period)", 0),
    # earnings news against the company's own forecast, and its age (statements table; own mask)
    _f("stmt_days_since", "earnings", "trading days since the disclosure became effective", 0),
    _f(
        "earnings_surprise",
        "earnings",
        "clip((Profit_q - prev.ForecastProfit/4) / (|prev.ForecastProfit|/4), ±5); Profit_q = "
        "the quarter's own profit (YTD minus the previous quarter's YTD; 1Q: YTD), prev = the "
        "code's previous disclosure",
        0,
    ),
    _f(
        "forecast_revision",
        "earnings",
        "clip((ForecastProfit - prev.ForecastProfit) / |prev.ForecastProfit|, ±5); 1Q-3Q only "
        "(an FY disclosure forecasts the next year)",
        0,
    ),
    # peer (graph pipeline; atft_kedro.graph.peers)
    _peer("peer_ret_1d", "Σ_j w_ij r_j / Σ_j |w_ij| over the day's neighbours with a return"),
    _peer("peer_ret_5d", "SUM_5(peer_ret_1d)"),
    _peer("peer_gap_z", "(r - peer_ret_1d) / STD_20(r)"),
    _peer("xs_disp_z", "(ln D - SMA_500(ln D)) / STD_500(ln D), D = SMA_5 of the day's std of r"),
    _peer("peer_count", "number of neighbours with a return on t"),
    _peer("peer_weight", "Σ_j |ρ_ij| over them"),
    # residual momentum (graph pipeline; atft_kedro.graph.momentum): z = clip(e / σ_20(e)[t-1],
    # ±4) with e = r - peer_ret_1d, the move beyond market, sector and graph peers
    _momentum("resid_mom_20d", "SUM over t-19 … t of z / √20"),
    _momentum(
        "mom_payoff_5d",
        "EWMA_hl5 over days of RankCorr_i(resid_mom_20d[t-2], z[t]) (market-wide)",
    ),
    _momentum("resid_mom_x_payoff", "resid_mom_20d * mom_payoff_5d"),
)

FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(spec.family for spec in FEATURES))
_FAMILY_OF = {spec.name: spec.family for spec in FEATURES}

#: Masks beyond the per-family ones: where the market family comes from a real TOPIX table.
EXTRA_MASKS: tuple[str, ...] = ("is_topix_valid",)


def _specs(stage: Stage | None) -> list[FeatureSpec]:
    if stage is not None and stage not in STAGES:
        raise ValueError(f"registry: unknown stage {stage!r}; expected one of {STAGES}")
    return [spec for spec in FEATURES if stage is None or spec.stage == stage]


def feature_names(stage: Stage | None = None) -> list[str]:
    """Feature columns of one stage (None: every stage) in registry order."""
    return [spec.name for spec in _specs(stage)]


def families(stage: Stage | None = None) -> list[str]:
    """Families of one stage (None: every stage) in registry order."""
    return list(dict.fromkeys(spec.family for spec in _specs(stage)))


def family_features(family: str) -> list[str]:
    """Feature columns of one family, in registry order."""
    return [spec.name for spec in FEATURES if spec.family == family]


def family_of(name: str) -> str | None:
    """The family of feature ``name`` (None: not a registry feature)."""
    return _FAMILY_OF.get(name)


def mask_family(mask: str) -> str | None:
    """The family a validity mask belongs to: ``is_{family}_valid`` → family;
    ``is_topix_valid`` → market (it says where the market family comes from); else None."""
    if mask == "is_topix_valid":
        return "market"
    family = mask.removeprefix("is_").removesuffix("_valid")
    return family if family in FAMILIES else None


def cs_normalised_names() -> list[str]:
    """Features replaced by their per-Date cross-sectional score."""
    return [spec.name for spec in FEATURES if spec.cs_normalised]


def mask_names(stage: Stage | None = None) -> list[str]:
    """Validity mask columns: one per family (of ``stage``; None: every stage), then the extra
    masks (built with the features stage)."""
    extra = list(EXTRA_MASKS) if stage in (None, "features") else []
    return [f"is_{family}_valid" for family in families(stage)] + extra


def model_input_names() -> list[str]:
    """The model's F inputs: every stage's features, then every stage's masks."""
    return feature_names() + mask_names()


def target_names(horizons: tuple[int, ...] | list[int]) -> list[str]:
    """Target columns of every view (``features.targets.VIEWS``): ``target_{h}d`` for each h, then
    ``target_next_{h}d``, then ``target_open_{h}d``."""
    return [target_name(h, view) for view in VIEWS for h in horizons]
