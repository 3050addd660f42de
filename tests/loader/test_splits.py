from datetime import date, timedelta

import pytest

from atft_kedro.loader.splits import purged_walk_forward


def _calendar(n: int) -> list[date]:
    days, d = [], date(2020, 1, 6)
    while len(days) < n:
        if d.weekday() < 5:
            days.append(d)
        d += timedelta(days=1)
    return days


ARGS = dict(n_splits=3, seq_len=20, max_horizon=20, embargo_days=20, val_days=60, test_days=60)


def _positions(cal, block):
    return cal.index(date.fromisoformat(block[0])), cal.index(date.fromisoformat(block[1]))


@pytest.mark.parametrize("mode", ["expanding", "rolling"])
def test_blocks_do_not_overlap_and_gaps_are_exact(mode):
    cal = _calendar(800)
    out = purged_walk_forward(cal, **ARGS, mode=mode, train_days=250)
    assert out["purge_days"] == 39 and out["embargo_days"] == 20
    for fold in out["folds"]:
        tr, va, te = (_positions(cal, fold[p]) for p in ("train", "val", "test"))
        assert va[0] - tr[1] - 1 == 39 + 20  # trading days strictly between the blocks
        assert te[0] - va[1] - 1 == 39 + 20
        assert va[1] - va[0] + 1 == 60 and te[1] - te[0] + 1 == 60
        if mode == "rolling":
            assert tr[1] - tr[0] + 1 == 250
        else:
            assert tr[0] == 0
    assert _positions(cal, out["folds"][-1]["test"])[1] == len(cal) - 1
    tests = [_positions(cal, f["test"]) for f in out["folds"]]
    assert all(b[0] == a[1] + 1 for a, b in zip(tests, tests[1:], strict=False))


def test_expanding_grows_rolling_slides():
    cal = _calendar(800)
    exp = purged_walk_forward(cal, **ARGS)
    rol = purged_walk_forward(cal, **ARGS, mode="rolling", train_days=250)
    assert len({f["train"][0] for f in exp["folds"]}) == 1
    assert len({f["train"][0] for f in rol["folds"]}) == 3
    assert [f["train"][1] for f in exp["folds"]] == [f["train"][1] for f in rol["folds"]]


def test_calendar_order_and_duplicates_do_not_matter():
    cal = _calendar(600)
    a = purged_walk_forward(cal, **ARGS)
    b = purged_walk_forward([d.isoformat() for d in reversed(cal + cal[:10])], **ARGS)
    assert a == b


def test_too_few_dates_is_a_clear_error():
    with pytest.raises(ValueError, match="too few for 3 folds: need 378"):
        purged_walk_forward(_calendar(377), **ARGS)
    assert purged_walk_forward(_calendar(378), **ARGS)["folds"][0]["train"][0] == "2020-01-06"
    with pytest.raises(ValueError, match="rolling' needs train_days"):
        purged_walk_forward(_calendar(800), **ARGS, mode="rolling")
