"""User errors on the real `kedro run` CLI: one line on stderr, exit status 2, no traceback;
`--traceback` shows it. Bad raw data, an unknown parameter value, an unreadable file (named), a
missing prerequisite checkpoint."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import SMALL_MARKET

pytestmark = pytest.mark.slow

SMALL = SMALL_MARKET  # so the graph pipeline is quick


def assert_one_line_error(result, *fragments: str) -> None:
    """Exit status 2 and stderr exactly one `error: …` line naming every fragment."""
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"{len(lines)} lines on stderr:\n{result.stderr[-3000:]}"
    (message,) = lines
    assert message.startswith("error: "), message
    for fragment in fragments:
        assert fragment in message, message


def test_bad_raw_data_is_one_line(kedro_project):
    raw = kedro_project.path / "data" / "01_raw" / "jquants"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "daily_quotes.csv").write_text("Date,Code,Close\n2024-01-04,72030,100\n")
    (raw / "listed_info.csv").write_text("Date,Code\n2024-01-04,72030\n")
    result = kedro_project.run(
        "--pipelines", "data_processing", "--params", "market.source=jquants_files"
    )
    assert_one_line_error(result, "daily_quotes")
    for path in raw.iterdir():
        path.unlink()


def test_unknown_parameter_value_is_one_line(kedro_project):
    result = kedro_project.run("--pipelines", "data_processing", "--params", "market.preset=huge")
    assert_one_line_error(result, "market.preset", "huge")


def test_traceback_switch_shows_the_traceback(kedro_project):
    result = kedro_project.run(
        "--pipelines", "data_processing", "--params", "market.preset=huge", "--traceback"
    )
    assert result.returncode != 0 and "Traceback" in result.stderr
    assert "ParameterError" in result.stderr


def test_missing_checkpoint_and_unreadable_file_are_one_line(kedro_project):
    built = kedro_project.run("--pipelines", "data_processing,graph", "--params", SMALL)
    assert built.returncode == 0, built.stderr[-3000:]

    result = kedro_project.run("--pipelines", "training", "--params", f"{SMALL},phase=3")
    assert_one_line_error(result, "phase 2")

    model_input = kedro_project.path / "data" / "05_model_input" / "model_input.parquet"
    model_input.write_bytes(model_input.read_bytes()[:1000])  # truncated: no footer
    result = kedro_project.run("--pipelines", "training", "--params", f"{SMALL},phase=0")
    assert_one_line_error(result, str(model_input.relative_to(kedro_project.path)))
