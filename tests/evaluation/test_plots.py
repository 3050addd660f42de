from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from matplotlib.figure import Figure

from atft_kedro.evaluation import plots

DAYS = [date(2023, 1, 2) + timedelta(days=d) for d in range(40)]


def test_every_plot_returns_a_figure_with_drawn_content(figures):
    for name, fig in figures.items():
        assert isinstance(fig, Figure), name
        ax = fig.axes[0]
        assert ax.lines or ax.patches or ax.images or ax.collections, name


@pytest.mark.parametrize(
    "fig",
    [
        plots.cumulative_returns({}),
        plots.ic_over_time(pl.DataFrame({"Date": [], "ic": [], "rank_ic": []})),
        plots.decile_bars({}),
        plots.variable_importance({}),
        plots.gat_attention_by_edge_type(np.array([]), np.array([0.1])),
        plots.training_curves({}),
    ],
)
def test_empty_inputs_give_a_no_data_figure(fig):
    assert "no data" in [t.get_text() for t in fig.axes[0].texts]


def test_cumulative_return_is_compounded():
    df = pl.DataFrame({"Date": DAYS[:2], "gross": [0.1, 0.1], "net": [0.0, 0.0]})
    line = plots.cumulative_returns({"m": df}).axes[0].lines[0]
    np.testing.assert_allclose(line.get_ydata(), [0.1, 0.21])
