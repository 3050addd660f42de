import math
import re
from html import escape

import pytest

from atft_kedro.evaluation.evaluate import EvaluationConfig, book_document, evaluate, json_safe
from atft_kedro.evaluation.report import (
    DEFINITIONS,
    H1_ONLY,
    book_rows,
    format_cell,
    render_report,
    setting_text,
    summary_rows,
    verdict,
)
from atft_kedro.evaluation.turnover import BookConfig

SPLITS = {
    "n_splits": 2,
    "purge_days": 39,
    "embargo_days": 20,
    "seq_len": 20,
    "max_horizon": 20,
    "folds": [
        {
            "fold": 0,
            "train": ["2021-01-04", "2022-03-31"],
            "val": ["2022-06-01", "2022-08-31"],
            "test": ["2022-11-01", "2023-01-31"],
        }
    ],
}


@pytest.fixture(scope="module")
def evaluation(predictions_by_model):
    return evaluate(predictions_by_model, [1, 5], EvaluationConfig(top_n=10, n_boot=200))


def _cells(html: str) -> list[str]:
    return re.findall(r"<td>(.*?)</td>", html, flags=re.S)


def test_report_embeds_every_figure_and_shows_only_finite_or_marked_cells(evaluation, figures):
    rows = summary_rows(evaluation, horizon=1)
    rows.append({"model": "broken", "RankIC [CI95]": math.nan, "ICIR": None, "IC": math.inf})
    facts = {"trading days": "120 (2023-01-02 … 2023-05-01)", "codes": 50}
    html = render_report(
        {"Summary (h=1)": rows}, figures, (facts, SPLITS["folds"]), verdict_line=verdict(evaluation)
    )
    assert html.count('src="data:image/png;base64,') == len(figures)
    for caption in figures:
        assert f"<figcaption>{caption}</figcaption>" in html
    cells = _cells(html)
    assert len(cells) > 30
    for cell in cells:
        assert "nan" not in cell.lower() and "inf" not in cell.lower(), cell
    assert "—" in cells  # the broken row is marked, not printed as nan
    for term in DEFINITIONS:
        assert f"<dt>{escape(term)}</dt>" in html


def test_verdict_compares_with_the_best_baseline_and_the_oracle(evaluation):
    line = verdict(evaluation, horizon=1)
    assert line.startswith("h=1: atft_gat_fan/phase2 RankIC ")
    assert "vs best baseline momentum" in line and "; oracle " in line
    assert "better, CI95s do not overlap" in line  # skill 1.0 vs 0.2 on 120 days


def test_verdict_states_the_share_of_each_ceiling_and_never_beats_one(evaluation):
    models = dict(evaluation["models"])
    models["structural"] = models["oracle"]  # a ceiling block, whatever its numbers
    line = verdict({**evaluation, "models": models}, horizon=1)
    assert "; observable ceiling (structural) " in line and "; oracle " in line
    assert line.count("% of it)") == 2
    assert "vs best baseline momentum" in line, "a ceiling is not a competing baseline"


def test_summary_rows_carry_rank_ic_icir_and_net_sharpe_with_ci(evaluation):
    rows = summary_rows(evaluation)
    assert [r["model"] for r in rows] == list(evaluation["models"])
    assert re.fullmatch(r"-?\d\.\d{4} \[-?\d\.\d{4}, -?\d\.\d{4}\]", rows[0]["RankIC [CI95]"])
    assert re.fullmatch(
        r"-?\d+\.\d{2} \[-?\d+\.\d{2}, -?\d+\.\d{2}\]", rows[0]["net Sharpe [CI95]"]
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (math.nan, "—"),
        (-math.inf, "—"),
        ("nan", "—"),
        (0.123456, "0.1235"),
        (3, "3"),
        ((0.1, math.nan), "[0.1000, —]"),
        ("phase 2", "phase 2"),
    ],
)
def test_format_cell(value, text):
    assert format_cell(value) == text


@pytest.fixture(scope="module")
def with_book(evaluation, predictions_by_model):
    """The evaluation with a controlled book (validation = the same days: formatting only)."""
    cfg = EvaluationConfig(top_n=10, n_boot=200)
    book = BookConfig(half_lives=(0.0, 2.0), rebalance_every=(1, 3))
    return {
        **evaluation,
        "config": {**evaluation["config"], "cost_bps": 10.0},
        "book": json_safe(book_document(predictions_by_model, predictions_by_model, cfg, book)),
    }


def test_the_headline_gives_the_controlled_and_the_raw_book_and_the_jpx_metric(with_book):
    line = verdict(with_book, "atft_gat_fan/phase2", horizon=1)
    assert re.search(
        r"Net Sharpe after 10 bps, next-session entry: -?\d+\.\d{2} \[.*\] with "
        r"turnover control \(fold 0: [^;]+; fold 1: [^)]+\), -?\d+\.\d{2} \[.*\] raw; "
        r"turnover \d\.\d{2}/day vs \d\.\d{2}; JPX metric -?\d\.\d{3} \[",
        line,
    )
    rows = summary_rows(with_book, 1)
    ci = r"-?\d+\.\d{2} \[-?\d+\.\d{2}, -?\d+\.\d{2}\]"
    assert re.fullmatch(ci, rows[0]["net Sharpe, turnover control [CI95]"])
    assert re.fullmatch(r"-?\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\]", rows[0]["JPX metric [CI95]"])
    book = book_rows(with_book)
    assert [r["model"] for r in book] == list(with_book["models"])
    assert set(book[0]) >= {"fold 0", "fold 1", "net Sharpe raw [CI95]", "turnover/day controlled"}
    assert setting_text({"half_life": 0.0, "rebalance_every": 1}) == "off"
    assert setting_text({"half_life": 2.0, "rebalance_every": 3}) == "half-life 2, every 3 sessions"


def test_summary_at_longer_horizons_leaves_out_the_one_day_book_columns(with_book):
    assert not set(H1_ONLY) & set(summary_rows(with_book, 5)[0])


def test_every_warning_is_its_own_paragraph_and_empty_ones_are_left_out():
    html = render_report({}, {}, warnings=["Realism check: too good.", "", "Thin universe: 7."])
    assert html.count('<p class="warning">') == 2
    assert "Thin universe: 7." in html
    assert 'class="warning"' not in render_report({}, {}, warnings=["", ""])
