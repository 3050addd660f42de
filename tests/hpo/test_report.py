"""The search report: the trial table (best first, missing values marked), the verdict and the
figures, on hand-made trials."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser

import numpy as np
import polars as pl
import pytest

from atft_kedro.evaluation.report import MISSING
from atft_kedro.hpo.report import (
    daily_comparison,
    importance_bars,
    render_hpo_report,
    trial_history,
    verdict,
)


class Tables(HTMLParser):
    """{h2 title: rows of cell texts (header row first)} of the report's tables."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._title, self._in, self._cell = None, None, None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "h2":
            self._in, self._title = "h2", ""
        elif tag == "tr" and self._title is not None:
            self.tables.setdefault(self._title, []).append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in = None
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[self._title][-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._in == "h2":
            self._title += data
        elif self._cell is not None:
            self._cell += data


TRIALS = pl.DataFrame(
    {
        "number": [0, 1, 2, 3],
        "state": ["COMPLETE", "PRUNED", "COMPLETE", "COMPLETE"],
        "value": [0.02, None, 0.05, 0.03],
        "datetime_start": [dt.datetime(2024, 1, 1, 9, i) for i in range(4)],
        "configuration": ["default", "searched", "searched", "searched"],
        "param_lr": [1e-3, 5e-3, None, 2e-4],
    }
)
COMPARISON = {
    "days": 20,
    "best_mean_rank_ic": 0.05,
    "default_mean_rank_ic": 0.02,
    "best_ci95": [0.03, 0.07],
    "default_ci95": [0.0, 0.04],
    "gap_mean": 0.03,
    "gap_ci95": [0.01, 0.05],
}


def render(trials=TRIALS, comparison=COMPARISON, importance=None):
    days = [dt.date(2024, 2, d) for d in (1, 2, 3)]
    best = pl.DataFrame({"Date": days, "rank_ic": [0.1, 0.0, 0.2]})
    default = pl.DataFrame({"Date": days, "rank_ic": [0.0, 0.1, None]})
    html = render_hpo_report(
        trials,
        importance or {"lr": 0.8, "hidden": 0.2},
        "",
        comparison,
        best_daily=best,
        default_daily=default,
        study_facts={"study": "tiny", "trials": 4},
    )
    return html, Tables(html).tables


@pytest.fixture(scope="module")
def report() -> tuple[str, dict]:
    return render()  # PNG figures take a second or two: rendered once


def test_the_trial_table_lists_the_best_first_and_marks_missing_values(report):
    _, tables = report
    header, *rows = tables["Trials (best first)"]
    assert header == ["number", "state", "value", "configuration", "param_lr"]  # no start time
    assert [r[0] for r in rows] == ["2", "3", "0", "1"]  # by value, the pruned trial last
    by_number = {r[0]: dict(zip(header, r, strict=True)) for r in rows}
    assert by_number["2"]["value"] == "0.0500" and by_number["2"]["param_lr"] == MISSING
    assert by_number["1"]["state"] == "PRUNED" and by_number["1"]["value"] == MISSING
    assert by_number["0"]["configuration"] == "default"


def test_the_comparison_table_and_the_importance_table(report):
    _, tables = report
    header, *rows = tables["Best trial vs default (validation days)"]
    assert header == ["configuration", "mean val RankIC", "CI95"]
    assert rows == [
        ["best trial", "0.0500", "[0.0300, 0.0700]"],
        ["default", "0.0200", "[0.0000, 0.0400]"],
        ["gap (best − default)", "0.0300", "[0.0100, 0.0500]"],
    ]
    assert tables["Parameter importance"][1:] == [["lr", "0.8000"], ["hidden", "0.2000"]]
    _, tables = render(comparison={"days": 0})
    assert [r[1:] for r in tables["Best trial vs default (validation days)"][1:]] == [
        [MISSING, MISSING]
    ] * 3


def test_the_verdict_says_whether_the_gap_is_credible(report):
    html, _ = report
    assert "gap 0.0300 CI95 [0.0100, 0.0500] — a credible difference." in html
    assert "over 20 days" in html
    worse = verdict({**COMPARISON, "gap_mean": -0.03, "gap_ci95": [-0.05, -0.01]}, 3)
    assert worse.endswith("a credible difference.")  # an interval below zero is credible too
    unsure = verdict({**COMPARISON, "gap_ci95": [-0.01, 0.05]}, 3)
    assert unsure.endswith("not distinguishable from zero.")
    assert verdict({**COMPARISON, "gap_ci95": [None, None]}, 3).endswith("from zero.")
    assert verdict({"days": 0, "gap_mean": None}, 3) == (
        "3 completed trial(s); no comparison with the default configuration."
    )


def test_trial_history_plots_completed_trials_their_running_best_and_pruned_at_zero():
    ax = trial_history(TRIALS).axes[0]
    done, best, pruned = ax.lines
    np.testing.assert_array_equal(done.get_xdata(), [0, 2, 3])
    np.testing.assert_array_equal(done.get_ydata(), [0.02, 0.05, 0.03])
    np.testing.assert_array_equal(best.get_ydata(), [0.02, 0.05, 0.05])
    np.testing.assert_array_equal(pruned.get_xdata(), [1])
    np.testing.assert_array_equal(pruned.get_ydata(), [0.0])
    empty = trial_history(pl.DataFrame({"number": [], "state": []}))
    assert [t.get_text() for t in empty.axes[0].texts] == ["no trials"]


def test_importance_bars_put_the_largest_on_top_and_say_why_when_empty():
    ax = importance_bars({"lr": 0.7, "hidden": 0.05, "k": 0.25}).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["hidden", "k", "lr"]  # bottom → top
    assert [round(p.get_width(), 2) for p in ax.patches] == [0.05, 0.25, 0.7]
    note = importance_bars({}, "1 completed trial(s)").axes[0]
    assert [t.get_text() for t in note.texts] == ["1 completed trial(s)"]


def test_daily_comparison_cumulates_each_series_over_its_scored_days():
    days = [dt.date(2024, 2, d) for d in (3, 1, 2)]  # out of order
    best = pl.DataFrame({"Date": days, "rank_ic": [0.2, 0.1, 0.0]})
    default = pl.DataFrame({"Date": days, "rank_ic": [None, 0.0, 0.1]})
    best_line, default_line = daily_comparison(best, default).axes[0].lines[:2]
    np.testing.assert_allclose(best_line.get_ydata(), [0.1, 0.1, 0.3])
    np.testing.assert_allclose(default_line.get_ydata(), [0.0, 0.1])  # the missing day left out
    empty = pl.DataFrame({"Date": [], "rank_ic": []})
    assert daily_comparison(empty, empty).axes[0].texts[0].get_text() == "no data"
