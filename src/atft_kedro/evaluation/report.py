"""One self-contained HTML report: verdict, summary table with CI95, definitions, data, figures.

Figures are embedded as base64 PNG, so the file can be mailed or opened offline. Every table cell
goes through ``format_cell``: a missing or non-finite value prints as "—", never "nan".
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import jinja2
import polars as pl

from atft_kedro.evaluation.attribution import attribution_rows
from atft_kedro.evaluation.baselines import BASELINES, CEILINGS
from atft_kedro.evaluation.predictions import FINAL
from atft_kedro.evaluation.views import VIEW_TITLES

MISSING = "—"
LABEL_TITLES = {
    "next_close": "next-session entry (close t+1 → close t+1+h)",
    "close": "close to close (same close, not tradable)",
    "next_open": "next-session open (open t+1 → open t+1+h)",
}

DEFINITIONS = {
    "IC": "Per trading day, the Pearson correlation across stocks between the prediction and the "
    "realised h-day return of the label (by default next-session entry, close t+1 → close "
    "t+1+h). Reported: the mean over days.",
    "Label": "The return every learner is fitted to and the headline scores (parameter `label`). "
    "next_close: close t+1 → close t+1+h, the JPX competition's and Qlib's convention: a signal "
    "computed after the close of t is traded at the next session. close: close t → close t+h, "
    "same close, not tradable.",
    "RankIC": "Per trading day, the Spearman correlation across stocks (Pearson correlation of "
    "average ranks; ties share their mean rank). Reported: the mean over days. Days with fewer "
    "than min_stocks valid stocks or zero spread are skipped and counted.",
    "ICIR": "mean / standard deviation of the daily RankIC (per day, not annualised).",
    "t-stat": "mean / (std / √n_days); assumes independent days, so it is optimistic for h > 1 "
    "(overlapping targets). Trust the bootstrap CI95 instead.",
    "Hit rate": "Share of days with RankIC > 0.",
    "Long-short (quantile)": "Each day, equal weights in the top and bottom 10% of stocks by "
    "prediction; the long side sums to +0.5 and the short side to −0.5 (unit gross exposure). "
    "Daily return = Σ weight × the label's 1-day return (with next-session entry: the book "
    "formed after the close of t earns close t+1 → close t+2).",
    "Long-short (JPX)": "The JPX Tokyo Stock Exchange Prediction (Kaggle 2022) weighting: top and "
    "bottom 200 stocks by rank, weights falling linearly from 2 to 1, normalised to ±0.5 per side.",
    "JPX metric": "The JPX Tokyo Stock Exchange Prediction (Kaggle 2022) score at h = 1: each day "
    "the top and bottom m = min(200, ⌊N/2⌋) of the day's N stocks by prediction get weights "
    "falling linearly from 2 (the most extreme) to 1; daily spread = Σ w·r / Σ w over the top − "
    "Σ w·r / Σ w over the bottom, r the label's 1-day return (next-session entry: close t+1 → "
    "close t+2); score = mean / std of the daily spread over the pooled test days, not "
    "annualised and before costs (the winner scored 0.38 over three months). It is the gross "
    "daily Sharpe of the Long-short (JPX) book, whose daily return is half the spread.",
    "Turnover control": "A desk's ways to trade a signal slowly, chosen per model and fold on "
    "the fold's validation days, then applied to its test days: signal smoothing (each stock's "
    "score is the exponential moving average of its daily cross-sectional rank of the "
    "prediction, half-life in sessions; 0 = off) and rebalancing every k sessions (the book is "
    "held in between). The setting with the best validation net Sharpe of the quantile book at "
    "h = 1 after costs wins (params `reporting.book`); 'off' is the raw daily book. Test days "
    "never enter the choice. Validation predictions exist for each fold's final phase and every "
    "baseline; the other phases are reported raw only.",
    "Horizon h > 1": "Overlapping sleeves: each day 1/h of capital is rebalanced into the h-day "
    "prediction's portfolio and held h days, earning daily returns (non-overlapping every-h-day "
    "rebalancing when no 1-day target is available).",
    "Turnover": "Σ |w(t) − w(t−1)| over stocks of the target weights, per day (entering from cash "
    "on the first day counts).",
    "Cost / net": "cost = cost_bps × 10⁻⁴ × turnover, charged each day; net = gross − cost.",
    "Sharpe": "Of the daily long-short return series over time (not across stocks): "
    "mean / std × √252, risk-free rate 0 (the book is dollar-neutral).",
    "Max drawdown": "Largest peak-to-trough fall of the compounded net wealth Π(1 + r).",
    "CI95": "Stationary block bootstrap over days (Politis–Romano, mean block max(10, h) days, "
    "percentile interval). Two models differ credibly when their intervals do not overlap.",
    "Baselines": "ridge: linear on the features table's inputs (no peer family); peer_ridge: "
    "linear on every model input, the graph's peer family included; inputs_ridge: linear on the "
    "feature families the network reads (training.inputs); hgb: scikit-learn "
    "HistGradientBoosting on every model input; momentum: the 20-day return; reversal: minus the "
    "5-day return. Learners are fitted on each fold's training days to the per-day rank of the "
    "label.",
    "Observable ceiling (structural)": "On the synthetic market, ridge on the features table's "
    "inputs plus the peer family built from each code's true latent cluster instead of its graph "
    "neighbours (prices up to t only): what a simple estimator reaches when the peer structure is "
    "known. A better model may exceed it.",
    "Views": "Next-session close (the JPX competition convention, the default label): close t+1 → "
    "close t+1+h, and its long-short backtest. Close → close: enter at the signal's own close "
    "(same close, not tradable: its predictable part is mostly one-day effects gone by the next "
    "session, and bid-ask bounce and stale closes inflate it). Next-session open: open t+1 → "
    "open t+1+h. Investable universe: the label's return on the rows of the investable "
    "universe (below). Trust the next-session and investable columns when they disagree.",
    "Investable universe": "Rows with tick / quoted close <= max_tick_share and, point in time, "
    "a quoted close and a 20-session median turnover at or above floors (params `universe`): "
    "absolute floors in yen (min_price, min_turnover) on data on the TSE tick grid, relative "
    "floors on any other market (prices in another currency, the synthetic market): that day's "
    "price_quantile and turnover_quantile of the cross-section. The report warns when the "
    "median test day keeps fewer stocks than the quantile book needs for min_names_per_side "
    "names per side (⌈min_names_per_side / quantile⌉).",
    "What the model captures": "On the synthetic market, each model's mean daily RankIC at h = 1 "
    "against each planted effect's part of the expected return under the label (evaluation "
    "only; one-day effects have no next-session part), and its RankIC as a share of the "
    "oracle's. The first row: each effect's own RankIC against the label's return.",
    "What each phase adds": "Pooled test RankIC of each phase's best checkpoint and its change "
    "from the previous phase; a change below about 0.003 is within one run's training noise. "
    "Under the next-session label, on four synthetic markets with every training day "
    "(docs/results.md), no phase after phase 0 added measurable RankIC: FAN, the GAT, "
    "fine-tuning and augmentation with SWA each had a paired CI95 across 0 on the mean of the "
    "seeds, and phase 0 alone scored a little above the validation-chosen final model.",
    "Realism check": "Fires when any model or baseline, or minus the 1-day return, has a RankIC "
    "at h = 1 under the label above the published band for good models on liquid markets "
    "(0.04–0.07).",
    "Oracle": "On the synthetic market, the planted expected return used as a prediction: the "
    "ceiling no model reaches, since most of its variance is a split of day t's return into a "
    "cluster part and an idiosyncratic part that prices only reveal with noise. It never enters a "
    "feature. The next-session oracle is the planted expected return from close t+1 to close "
    "t+1+h known at t: the ceiling of the next-session views.",
}


def format_cell(value: object, digits: int = 4) -> str:
    """Text of one table cell: numbers rounded, intervals as [lo, hi], missing/non-finite → "—"."""
    if value is None:
        return MISSING
    if isinstance(value, list | tuple):
        if len(value) == 2:
            return f"[{format_cell(value[0], digits)}, {format_cell(value[1], digits)}]"
        return ", ".join(format_cell(v, digits) for v in value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else MISSING
    text = str(value)
    return MISSING if text.lower() in ("nan", "inf", "-inf", "none", "null", "") else text


def _with_ci(value: object, ci: object, digits: int = 4) -> str:
    return f"{format_cell(value, digits)} {format_cell(ci, digits)}"


#: summary columns of the book at h = 1 only (turnover control, the JPX competition metric)
H1_ONLY = ("net Sharpe, turnover control [CI95]", "JPX metric [CI95]", "turnover/day, control")


def summary_rows(evaluation: Mapping, horizon: int = 1) -> list[dict[str, str]]:
    """One row per model from the `evaluation` JSON (pooled test days), formatted for display;
    at h = 1 with the turnover-controlled book and the JPX metric beside the raw book."""
    rows = []
    books = (evaluation.get("book") or {}).get("models", {})
    for label, per_h in evaluation["models"].items():
        block = per_h.get(f"h{horizon}", {}).get("pooled")
        if block is None:
            continue
        q, jpx = block["backtest"]["quantile"], block["backtest"]["jpx"]
        book, score = books.get(label), block.get("jpx_metric") or {}
        rows.append(
            {
                "model": label,
                "RankIC [CI95]": _with_ci(block["rank_ic"]["mean"], block["rank_ic_mean_ci95"]),
                "ICIR": format_cell(block["rank_ic"]["icir"], 3),
                "IC": format_cell(block["ic"]["mean"]),
                "hit rate": format_cell(block["rank_ic"]["hit_rate"], 3),
                "net Sharpe [CI95]": _with_ci(q["net"]["sharpe"], q["net_sharpe_ci95"], 2),
                "net Sharpe, turnover control [CI95]": MISSING
                if book is None
                else _with_ci(book["net"]["sharpe"], book["net_sharpe_ci95"], 2),
                "gross Sharpe": format_cell(q["gross"]["sharpe"], 2),
                "JPX metric [CI95]": MISSING
                if not score
                else _with_ci(score["score"], score["score_ci95"], 3),
                "JPX net Sharpe [CI95]": _with_ci(jpx["net"]["sharpe"], jpx["net_sharpe_ci95"], 2),
                "net ann. return": format_cell(q["net"]["annual_return"], 3),
                "max DD": format_cell(q["net"]["max_drawdown"], 3),
                "turnover/day": format_cell(q["net"]["avg_turnover"], 3),
                "turnover/day, control": MISSING
                if book is None
                else format_cell(book["net"]["avg_turnover"], 3),
                "days (skipped)": f"{format_cell(block['rank_ic']['n_days'])} "
                f"({format_cell(block['rank_ic']['n_skipped'])})",
            }
        )
        if horizon != 1:
            for column in H1_ONLY:
                rows[-1].pop(column)
    return rows


def setting_text(setting: Mapping[str, Any]) -> str:
    """'off' for the raw daily book, else e.g. 'half-life 5, every 2 sessions'."""
    parts = []
    if setting["half_life"]:
        parts.append(f"half-life {setting['half_life']:g}")
    if setting["rebalance_every"] > 1:
        parts.append(f"every {setting['rebalance_every']} sessions")
    return ", ".join(parts) or "off"


def book_rows(evaluation: Mapping) -> list[dict[str, str]]:
    """One row per model with a controlled book: each fold's chosen setting, then net Sharpe
    [CI95], turnover and net annual return of the raw and the controlled book (pooled test
    days)."""
    rows = []
    for label, book in (evaluation.get("book") or {}).get("models", {}).items():
        pooled = _pooled(evaluation["models"], label, 1)
        assert pooled is not None  # a model with a controlled book has its pooled h1 block
        raw = pooled["backtest"]["quantile"]
        chosen = {f"fold {f}": setting_text(b["chosen"]) for f, b in book["folds"].items()}
        rows.append(
            {
                "model": label,
                **chosen,
                "net Sharpe raw [CI95]": _with_ci(raw["net"]["sharpe"], raw["net_sharpe_ci95"], 2),
                "net Sharpe controlled [CI95]": _with_ci(
                    book["net"]["sharpe"], book["net_sharpe_ci95"], 2
                ),
                "turnover/day raw": format_cell(raw["net"]["avg_turnover"], 3),
                "turnover/day controlled": format_cell(book["net"]["avg_turnover"], 3),
                "net ann. return raw": format_cell(raw["net"]["annual_return"], 3),
                "net ann. return controlled": format_cell(book["net"]["annual_return"], 3),
            }
        )
    return rows


def book_text(evaluation: Mapping, model: str) -> str:
    """The headline economics of ``model`` at h = 1: net Sharpe after costs with turnover control
    and raw, turnover, and the JPX metric ('' without a controlled book)."""
    book = (evaluation.get("book") or {}).get("models", {}).get(model)
    block = _pooled(evaluation["models"], model, 1)
    if book is None or block is None:
        return ""
    raw, score = block["backtest"]["quantile"], block.get("jpx_metric") or {}
    settings = "; ".join(f"fold {f}: {setting_text(b['chosen'])}" for f, b in book["folds"].items())
    return (
        f" Net Sharpe after {format_cell(evaluation['config']['cost_bps'], 0)} bps, "
        f"next-session entry: {_with_ci(book['net']['sharpe'], book['net_sharpe_ci95'], 2)} "
        f"with turnover control ({settings}), "
        f"{_with_ci(raw['net']['sharpe'], raw['net_sharpe_ci95'], 2)} raw; turnover "
        f"{format_cell(book['net']['avg_turnover'], 2)}/day vs "
        f"{format_cell(raw['net']['avg_turnover'], 2)}; JPX metric "
        f"{_with_ci(score.get('score'), score.get('score_ci95'), 3)}."
    )


def universe_message(check: Mapping[str, Any]) -> str:
    """A warning paragraph when the investable universe is thinner than the book needs ('' when
    it is not): the numbers of ``evaluation["universe_check"]``."""
    if not check.get("fired"):
        return ""
    return (
        f"Thin universe: the investable universe keeps {format_cell(check['median'], 0)} of "
        f"{format_cell(check.get('stocks_median'), 0)} stocks on the median test day (fewest "
        f"{check['min']}; {check['days_below']} of "
        f"{check['days']} test days below {check['needed']}), fewer than the long-short book "
        f"needs: {check['needed']} stocks for {check['min_names_per_side']} names per side at "
        f"quantile {check['quantile']:g}. The investable-universe figures rest on a handful of "
        "names: check the `universe` parameters (floors: relative sets the price and turnover "
        "floors from the market's own distribution) or, on a small market, raise "
        "`reporting.quantile`."
    )


def _pooled(models: Mapping, label: str, horizon: int) -> Mapping | None:
    return models.get(label, {}).get(f"h{horizon}", {}).get("pooled")


def all_views(evaluation: Mapping) -> dict[str, Mapping]:
    """``{view: models block}``: the label's view (``evaluation["models"]``) and the others."""
    return {evaluation.get("label", "close"): evaluation["models"], **evaluation.get("views", {})}


def view_rows(evaluation: Mapping, horizon: int, titles: Mapping[str, str]) -> list[dict[str, str]]:
    """One row per model: RankIC [CI95] under each view (``titles``: view → column title) and
    the net Sharpe of the next-session backtest."""
    views = all_views(evaluation)
    rows = []
    for label in evaluation["models"]:
        row: dict[str, str] = {"model": label}
        for view, title in titles.items():
            block = _pooled(views.get(view, {}), label, horizon)
            row[title] = MISSING if block is None else _ci_text(block)
        block = _pooled(views.get("next_close", {}), label, horizon)
        if block is not None:
            q = block["backtest"]["quantile"]
            row["net Sharpe, next-session entry [CI95]"] = _with_ci(
                q["net"]["sharpe"], q["net_sharpe_ci95"], 2
            )
        rows.append(row)
    return rows


def realism_rows(realism: Mapping) -> list[dict[str, object]]:
    """The realism diagnostics as one table row."""
    lo, hi = realism["band"]
    return [
        {
            "published band (RankIC, h = 1)": f"{lo:.2f}–{hi:.2f}",
            "fired": "yes: " + ", ".join(a["model"] for a in realism["above_band"])
            if realism["fired"]
            else "no",
            "unchanged closes (share of rows)": realism.get("unchanged_close_share"),
            "1-day reversal RankIC": realism.get("reversal_1d_rank_ic"),
        }
    ]


def universe_rows(universe: Mapping) -> list[dict[str, object]]:
    """Universe size per test day, summarised: days, mean / min / max stocks and investable."""
    stocks, investable = universe.get("stocks") or [], universe.get("investable") or []
    if not stocks:
        return []
    share = sum(investable) / max(1, sum(stocks))
    return [
        {
            "test days": len(stocks),
            "stocks per day (mean)": sum(stocks) / len(stocks),
            "investable per day (mean)": sum(investable) / len(investable),
            "investable per day (min … max)": f"{min(investable)} … {max(investable)}",
            "investable share of rows": share,
        }
    ]


def phase_ablation(evaluation: Mapping[str, Any], h: int) -> list[dict[str, Any]]:
    """One row per model phase: pooled RankIC, CI95 and the change from the previous phase."""
    rows, previous = [], None
    for label, per_h in evaluation["models"].items():
        if label in BASELINES or label.endswith(f"/{FINAL}") or f"h{h}" not in per_h:
            continue
        block = per_h[f"h{h}"]["pooled"]
        mean = block["rank_ic"]["mean"]
        change: float | None = None if previous is None or mean is None else mean - previous
        rows.append(
            {
                "phase": label,
                "RankIC": mean,
                "CI95": block["rank_ic_mean_ci95"],
                "Δ RankIC vs previous phase": change,
                "net Sharpe": block["backtest"]["quantile"]["net"]["sharpe"],
            }
        )
        previous = mean
    return rows


def final_choice_rows(choice: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per fold: each phase's validation RankIC and the phase chosen as the final model."""
    rows = []
    for fold, block in choice.get("folds", {}).items():
        values = {f"phase {p} val RankIC": v for p, v in block["val_rank_ic"].items()}
        rows.append({"fold": fold, **values, "chosen": f"phase {block['phase']}"})
    return rows


def _ci_text(block: Mapping) -> str:
    return f"{format_cell(block['rank_ic']['mean'])} {format_cell(block['rank_ic_mean_ci95'])}"


def verdict(evaluation: Mapping, model: str | None = None, horizon: int = 1) -> str:
    """ "model RankIC X [CI] vs best baseline Y [CI]; oracle Z" on pooled test days at horizon h,
    at h = 1 followed by the model's net Sharpe after costs with and without turnover control.

    ``model`` defaults to the last non-baseline label (the final phase when phases are in order).
    """
    key = f"h{horizon}"
    blocks = {k: v[key]["pooled"] for k, v in evaluation["models"].items() if key in v}
    candidates = [k for k in blocks if k not in BASELINES]
    model = model or (candidates[-1] if candidates else None)
    if model is None or model not in blocks:
        return f"No model predictions at h={horizon}."
    mine = blocks[model]
    text = f"h={horizon}: {model} RankIC {_ci_text(mine)}"

    def mean(b: Mapping) -> float:
        m = b["rank_ic"]["mean"]
        return m if m is not None else -math.inf

    baselines = {k: v for k, v in blocks.items() if k in BASELINES and k not in CEILINGS}
    if baselines:
        best = max(baselines, key=lambda k: mean(baselines[k]))
        other = baselines[best]
        lo, hi = mine["rank_ic_mean_ci95"], other["rank_ic_mean_ci95"]
        if None in (*lo, *hi):
            relation = "CI95 undefined"
        elif lo[0] > hi[1]:
            relation = "better, CI95s do not overlap"
        elif hi[0] > lo[1]:
            relation = "worse, CI95s do not overlap"
        else:
            relation = "CI95s overlap: not distinguishable"
        text += f" vs best baseline {best} {_ci_text(other)} ({relation})"
    names = {
        "structural": "observable ceiling (structural)",
        "oracle": "oracle",
        "oracle_next": "next-session oracle",
    }
    for ceiling in CEILINGS:
        if ceiling in blocks:
            level = blocks[ceiling]["rank_ic"]["mean"]
            text += f"; {names[ceiling]} {format_cell(level)}"
            if level and mine["rank_ic"]["mean"] is not None and level > 0:
                text += f" (model reaches {100 * mine['rank_ic']['mean'] / level:.0f}% of it)"
    return text + "." + (book_text(evaluation, model) if horizon == 1 else "")


def describe_data(
    features: pl.DataFrame, splits: Mapping, feature_cols: Sequence[str]
) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Data description: (key facts, one row per fold with its date ranges)."""
    dates = features["Date"]
    facts = {
        "trading days": f"{dates.n_unique()} ({dates.min()} … {dates.max()})",  # type: ignore[str-bytes-safe]
        "stocks (codes)": f"{features['Code'].n_unique()} distinct, "
        f"{features.group_by('Date').len()['len'].mean():.0f} per day on average",  # type: ignore[str-bytes-safe]
        "model inputs": f"{len(feature_cols)} columns (features then validity masks)",
        "splits": f"{splits.get('n_splits', len(splits['folds']))} walk-forward folds; purge "
        f"{splits.get('purge_days', MISSING)} + embargo {splits.get('embargo_days', MISSING)} "
        f"trading days between train → val → test (seq_len {splits.get('seq_len', MISSING)}, "
        f"max horizon {splits.get('max_horizon', MISSING)})",
    }
    folds = [
        {
            "fold": str(spec["fold"]),
            **{block: " … ".join(map(str, spec[block])) for block in ("train", "val", "test")},
        }
        for spec in splits["folds"]
    ]
    return facts, folds


class SavesFigure(Protocol):
    """What the report embeds: a matplotlib Figure, or anything with its ``savefig``."""

    def savefig(self, fname: Any, /, *, format: str = ..., dpi: int = ...) -> None: ...


def figure_to_base64(fig: SavesFigure, dpi: int = 100) -> str:
    """PNG bytes of a figure, base64-encoded (ASCII)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


_TEMPLATE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222;line-height:1.4}
.verdict{font-size:1.15em;background:#eef5ff;border-left:5px solid #2a6fdb;padding:.8em 1em}
.warning{font-size:1.1em;background:#fff3e0;border-left:5px solid #e65100;padding:.8em 1em}
table{border-collapse:collapse;margin:1em 0;font-size:.85em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
dt{font-weight:600;margin-top:.5em}figure{margin:1.5em 0}img{max-width:100%}
figcaption{font-size:.9em;color:#555}
</style></head><body>
<h1>{{ title }}</h1>
{% for warning in warnings %}<p class="warning">{{ warning }}</p>{% endfor %}
<p class="verdict">{{ verdict }}</p>
{% if generated %}<p><small>generated {{ generated }}</small></p>{% endif %}
{% for name, rows in tables.items() %}
<h2>{{ name }}</h2>
{% if rows %}<table><tr>{% for col in rows[0] %}<th>{{ col }}</th>{% endfor %}</tr>
{% for row in rows %}<tr>{% for col in rows[0] %}<td>{{ row[col] }}</td>{% endfor %}</tr>
{% endfor %}</table>{% else %}<p>—</p>{% endif %}
{% endfor %}
<h2>Data</h2>
<table>{% for key, value in facts.items() %}<tr><th>{{ key }}</th><td>{{ value }}</td></tr>
{% endfor %}</table>
{% if folds %}<table><tr>{% for col in folds[0] %}<th>{{ col }}</th>{% endfor %}</tr>
{% for row in folds %}<tr>{% for col in folds[0] %}<td>{{ row[col] }}</td>{% endfor %}</tr>
{% endfor %}</table>{% endif %}
<h2>Figures</h2>
{% for caption, png in figures %}
<figure><img alt="{{ caption }}" src="data:image/png;base64,{{ png }}">
<figcaption>{{ caption }}</figcaption></figure>
{% endfor %}
<h2>Definitions</h2>
<dl>{% for term, text in definitions.items() %}<dt>{{ term }}</dt><dd>{{ text }}</dd>
{% endfor %}</dl>
</body></html>
"""
)


def render_report(
    tables: Mapping[str, Sequence[Mapping[str, object]]],
    figures: Mapping[str, SavesFigure],
    data_description: tuple[Mapping[str, object], Sequence[Mapping[str, object]]] | None = None,
    verdict_line: str = "",
    *,
    title: str = "ATFT-GAT-FAN evaluation",
    definitions: Mapping[str, str] = DEFINITIONS,
    generated: str = "",
    warnings: Sequence[str] = (),
) -> str:
    """Render the report as one HTML string.

    ``tables``: name → rows (dicts with the same keys; values are formatted with ``format_cell``);
    ``figures``: caption → Figure (embedded as PNG); ``data_description``: (facts, fold rows) as
    from ``describe_data``; ``generated``: a timestamp line (left out when empty, so the same
    inputs give the same bytes); ``warnings``: paragraphs shown above the verdict (e.g. the
    realism check, a thin universe); empty ones are left out.
    """
    facts, folds = data_description or ({}, [])

    def cells(rows: Sequence[Mapping[str, object]]) -> list[dict[str, str]]:
        columns = list(dict.fromkeys(k for row in rows for k in row))  # union, first-seen order
        return [{str(c): format_cell(row.get(c)) for c in columns} for row in rows]

    return _TEMPLATE.render(
        title=title,
        verdict=verdict_line or MISSING,
        warnings=[w for w in warnings if w],
        generated=generated,
        tables={name: cells(rows) for name, rows in tables.items()},
        facts={k: format_cell(v) for k, v in facts.items()},
        folds=cells(folds),
        figures=[(caption, figure_to_base64(fig)) for caption, fig in figures.items()],
        definitions=definitions,
    )


def fold_rows(evaluation: Mapping, h: int) -> list[dict[str, object]]:
    """One row per (model, fold) at horizon ``h``: mean RankIC, its CI95, net Sharpe, days."""
    return [
        {
            "model": label,
            "fold": fold,
            "RankIC": block["rank_ic"]["mean"],
            "CI95": block["rank_ic_mean_ci95"],
            "net Sharpe": block["backtest"]["quantile"]["net"]["sharpe"],
            "days": block["rank_ic"]["n_days"],
        }
        for label, per_h in evaluation["models"].items()
        for fold, block in per_h.get(f"h{h}", {}).get("folds", {}).items()
    ]


def report_tables(
    evaluation: Mapping, horizons: Sequence[int], graph_quality: pl.DataFrame
) -> dict[str, list[dict[str, object]]]:
    """The report's tables, {title: rows}, in report order (the first horizon leads)."""
    tables: dict[str, list] = {}
    label = LABEL_TITLES.get(evaluation.get("label", "close"), evaluation.get("label"))
    for h in horizons:
        tables[f"Summary, h = {h} trading day(s), {label}, pooled test days of all folds"] = (
            summary_rows(evaluation, h)
        )
    h = int(horizons[0])
    tables[f"Views, h = {h}: RankIC [CI95] by when the trade happens, pooled test days"] = (
        view_rows(evaluation, h, VIEW_TITLES)
    )
    if evaluation.get("realism"):
        tables["Realism check"] = realism_rows(evaluation["realism"])
    if evaluation.get("book", {}).get("models"):
        tables[
            "Turnover control: quantile book at h = 1 after costs, each fold's setting chosen "
            "on its validation days, pooled test days"
        ] = book_rows(evaluation)
    if evaluation.get("universe"):
        tables["Investable universe (params `universe`), test days"] = universe_rows(
            evaluation["universe"]
        )
    tables[f"What each phase adds (ablation), h = {h}"] = phase_ablation(evaluation, h)
    if evaluation.get("attribution"):
        tables[
            f"What the model captures: RankIC at h = 1 against each planted effect "
            f"(synthetic market), {label}"
        ] = attribution_rows(evaluation["attribution"], list(evaluation["models"]))
    if evaluation.get("final_choice"):
        tables["Final model: the phase chosen on each fold's validation days"] = final_choice_rows(
            evaluation["final_choice"]
        )
    tables[f"RankIC per fold, h = {h} [CI95]"] = fold_rows(evaluation, h)
    if graph_quality.height:
        tables["Graph vs the latent clusters (synthetic market), mean over dates"] = [
            {
                "dates": graph_quality.height,
                **{c: graph_quality[c].mean() for c in graph_quality.columns if c != "Date"},
            }
        ]
    return tables
