import math
import re
from html import escape

import pytest

from atft_kedro.evaluation.evaluate import EvaluationConfig, evaluate
from atft_kedro.evaluation.report import (
    DEFINITIONS,
    format_cell,
    render_report,
    summary_rows,
    verdict,
)

SPLITS = {"n_splits": 2, "purge_days": 39, "embargo_days": 20, "seq_len": 20, "max_horizon": 20,
          "folds": [{"fold": 0, "train": ["2021-01-04", "2022-03-31"],
                     "val": ["2022-06-01", "2022-08-31"], "test": ["2022-11-01", "2023-01-31"]}]}  # fmt: skip


@pytest.fixture(scope="module")
def evaluation(predictions_by_model):
    return evaluate(predictions_by_model, [1], EvaluationConfig(top_n=10, n_boot=200))


def _cells(html: str) -> list[str]:
    return re.findall(r"<td>(.*?)</td>", html, flags=re.S)


def test_report_embeds_every_figure_and_shows_only_finite_or_marked_cells(evaluation, figures):
    rows = summary_rows(evaluation, horizon=1)
    rows.append({"model": "broken", "RankIC [CI95]": math.nan, "ICIR": None, "IC": math.inf})
    facts = {"trading days": "120 (2023-01-02 … 2023-05-01)", "codes": 50}
    html = render_report({"Summary (h=1)": rows}, figures, (facts, SPLITS["folds"]),
                         verdict_line=verdict(evaluation))  # fmt: skip
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
    [(None, "—"), (math.nan, "—"), (-math.inf, "—"), ("nan", "—"), (0.123456, "0.1235"), (3, "3"),
     ((0.1, math.nan), "[0.1000, —]"), ("phase 2", "phase 2")],
)  # fmt: skip
def test_format_cell(value, text):
    assert format_cell(value) == text
