"""Day-batch datasets: streaming vs in-memory, workers, windows across gaps, masks and edges."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from atft_kedro.loader import day_table
from atft_kedro.loader.datasets import day_loader, make_day_dataset
from atft_kedro.loader.day_batch import assert_batch_contract
from atft_kedro.loader.scaler import OnlineRobustScaler

CODES = ["13010", "1301A", "13050", "130A0", "72030"]
FEATURES = ["f_ret", "f_vol", "f_sparse"]
COLUMNS = [*FEATURES, "is_sparse_valid"]
HORIZONS = [1, 5]
VOCAB = {"market": ("0111", "0112", "0113"), "sector33": ("0050", "1050", "2050")}
N_DAYS = 40
SUSPENDED = ("13050", range(10, 13))  # no rows on calendar days 10, 11, 12
LISTED_FROM = ("130A0", 5)
DELISTED_AFTER = ("72030", 30)
GROUP_SIZES = [1, 3, 2, 5, 1, 4, 7, 2, 3, 6, 6]  # days per row group, sums to N_DAYS


def calendar() -> list[dt.date]:
    days = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-04-01"))
    days = days[np.is_busday(days)][:N_DAYS]
    return [d.astype(dt.date) for d in days]


def panel(seed: int = 0) -> dict[str, np.ndarray]:
    """Rows (day index, code) of the test market, sorted by day then code, with values."""
    rng = np.random.default_rng(seed)
    day, code = np.meshgrid(np.arange(N_DAYS), np.arange(len(CODES)), indexing="ij")
    day, code = day.ravel(), code.ravel()
    names = np.array(CODES)[code]
    keep = ~((names == SUSPENDED[0]) & np.isin(day, list(SUSPENDED[1])))
    keep &= ~((names == LISTED_FROM[0]) & (day < LISTED_FROM[1]))
    keep &= ~((names == DELISTED_AFTER[0]) & (day > DELISTED_AFTER[1]))
    day, names = day[keep], names[keep]
    n = day.size
    sparse = rng.normal(size=n).astype(np.float32)
    sparse[rng.random(n) < 0.3] = np.nan
    vol = rng.lognormal(size=n).astype(np.float32)
    vol[rng.random(n) < 0.05] = np.nan
    t1 = rng.normal(size=n).astype(np.float32)
    t5 = rng.normal(size=n).astype(np.float32)
    t1[day >= N_DAYS - 1], t5[day >= N_DAYS - 5] = np.nan, np.nan  # future unknown
    t1[rng.random(n) < 0.1] = np.nan
    markets = np.array(["0111", "0112", "0113", "9999", None], dtype=object)
    return {
        "day": day,
        "Code": names,
        "market": markets[rng.integers(0, 5, n)],
        "sector33": np.array(["0050", "1050", "2050", None], dtype=object)[rng.integers(0, 4, n)],
        "f_ret": (day * 100 + rng.integers(0, 100, n)).astype(np.float32),
        "f_vol": vol,
        "f_sparse": sparse,
        "is_sparse_valid": np.isfinite(sparse).astype(np.int8),
        "target_1d": t1,
        "target_5d": t5,
    }


def write_features(
    path, rows: dict[str, np.ndarray], group_sizes=GROUP_SIZES, extra: tuple[str, ...] = ()
) -> None:
    dates = np.array(calendar())[rows["day"]]
    table = pa.table(
        {
            "Date": pa.array(dates, pa.date32()),
            "Code": pa.array(rows["Code"].tolist(), pa.string()),
            "market": pa.array(rows["market"].tolist(), pa.string()),
            "sector33": pa.array(rows["sector33"].tolist(), pa.string()),
            "sector17": pa.array(["1"] * rows["day"].size, pa.string()),
            **{c: pa.array(rows[c]) for c in [*COLUMNS, "target_1d", "target_5d", *extra]},
        }
    )
    with pq.ParquetWriter(path, table.schema) as writer:
        first_day = 0
        for size in group_sizes:
            in_group = (rows["day"] >= first_day) & (rows["day"] < first_day + size)
            writer.write_table(table.filter(pa.array(in_group)))
            first_day += size


def write_edges(path, rows: dict[str, np.ndarray]) -> pa.Table:
    """A ring over each day's codes plus edges to a code that never trades ("99990")."""
    dates = np.array(calendar())
    src, dst, day = [], [], []
    for d in range(N_DAYS):
        codes = sorted(set(rows["Code"][rows["day"] == d].tolist()))
        ring = codes + ["99990"]
        for a, b in zip(ring, ring[1:] + ring[:1], strict=True):
            src += [a, b]
            dst += [b, a]
            day += [d, d]
    rng = np.random.default_rng(1)
    table = pa.table(
        {
            "Date": pa.array(dates[day], pa.date32()),
            "src_code": src,
            "dst_code": dst,
            "corr": pa.array(rng.uniform(-1, 1, len(src)).astype(np.float32)),
            "same_market": pa.array(rng.integers(0, 2, len(src)).astype(np.int8)),
            "same_sector33": pa.array(rng.integers(0, 2, len(src)).astype(np.int8)),
        }
    )
    pq.write_table(table, path, row_group_size=25)
    return table


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    folder = tmp_path_factory.mktemp("loader")
    rows = panel()
    write_features(folder / "features.parquet", rows)
    edges = write_edges(folder / "graph_edges.parquet", rows)
    train = calendar()[:25]
    scaler = OnlineRobustScaler(FEATURES, seed=3).fit_from_parquet(
        folder / "features.parquet", train
    )
    return {"folder": folder, "rows": rows, "edges": edges, "scaler": scaler}


def kwargs(market, **extra):
    base = dict(
        features_path=market["folder"] / "features.parquet",
        dates=calendar()[2:],
        columns=COLUMNS,
        horizons=HORIZONS,
        seq_len=5,
        scaler=market["scaler"],
        graph_edges_path=market["folder"] / "graph_edges.parquet",
        vocabularies=VOCAB,
    )
    return {**base, **extra}


def collect(loader) -> dict[dt.date, dict]:
    out = {}
    for batch in loader:
        assert_batch_contract(batch, seq_len=5, n_features=len(COLUMNS))
        assert batch["date"] not in out, f"day {batch['date']} emitted twice"
        out[batch["date"]] = batch
    return out


def assert_same_batches(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for date in a:
        x, y = a[date], b[date]
        assert x["codes"] == y["codes"], date
        for name in ("x", "mask", "edge_index", "edge_attr"):
            assert torch.equal(x[name], y[name]), (date, name)
        for h in HORIZONS:
            assert torch.equal(x["y_mask"][h], y["y_mask"][h])
            assert torch.equal(x["y"][h][x["y_mask"][h]], y["y"][h][y["y_mask"][h]])
        for name in ("market", "sector33"):
            assert torch.equal(x["static"][name], y["static"][name])


@pytest.mark.parametrize("shuffle", [False, True])
def test_same_windows_for_any_workers_and_both_implementations(market, shuffle):
    in_memory = collect(make_day_dataset("in_memory", **kwargs(market, shuffle=shuffle)))
    assert len(in_memory) == N_DAYS - 2
    for workers in (0, 1, 2):
        ds = make_day_dataset("streaming", **kwargs(market, shuffle=shuffle, block_days=4))
        assert_same_batches(collect(day_loader(ds, num_workers=workers)), in_memory)
    one_block = make_day_dataset("streaming", **kwargs(market, shuffle=shuffle, block_days=N_DAYS))
    assert_same_batches(collect(one_block), in_memory)  # a block's edges are read as one span
    loader = day_loader(make_day_dataset("in_memory", **kwargs(market, shuffle=shuffle)), 2)
    assert_same_batches(collect(loader), in_memory)


def test_two_workers_do_not_hang(market):
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(sys.modules[__name__].__file__.rsplit("/", 1)[0])!r})
        from atft_kedro.loader.datasets import day_loader, make_day_dataset
        from atft_kedro.loader.scaler import OnlineRobustScaler
        import test_datasets as t
        folder = {str(market["folder"])!r}
        scaler = OnlineRobustScaler(t.FEATURES).fit_from_parquet(folder + "/features.parquet", t.calendar()[:25])
        ds = make_day_dataset("streaming", **t.kwargs(dict(folder=__import__("pathlib").Path(folder),
                                 scaler=scaler), shuffle=True, block_days=3))
        counts = []
        for epoch in range(3):
            ds.set_epoch(epoch)
            counts.append(sum(1 for _ in day_loader(ds, num_workers=2)))
        print(counts)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str([N_DAYS - 2] * 3)


def test_evaluation_is_chronological_and_reads_each_row_group_once(market, monkeypatch):
    reads = []
    original = day_table.FeatureTable.read_row_group
    monkeypatch.setattr(
        day_table.FeatureTable,
        "read_row_group",
        lambda self, parquet, group: reads.append(group) or original(self, parquet, group),
    )
    dates = [b["date"] for b in make_day_dataset("streaming", **kwargs(market, block_days=2))]
    assert dates == calendar()[2:]
    assert sorted(reads) == sorted(set(reads)) == list(range(len(GROUP_SIZES)))


def test_shuffle_is_reproducible_per_seed_and_epoch(market):
    def order(seed, epoch, workers=0):
        ds = make_day_dataset("streaming", **kwargs(market, shuffle=True, seed=seed, block_days=3))
        ds.set_epoch(epoch)
        return [b["date"] for b in day_loader(ds, num_workers=workers)]

    first = order(0, 0)
    assert first == order(0, 0)
    assert first != order(0, 1) and first != order(1, 0)
    assert first != sorted(first) and sorted(first) == calendar()[2:]
    memory = make_day_dataset("in_memory", **kwargs(market, shuffle=True, seed=0))
    assert (
        memory.order()
        == make_day_dataset("in_memory", **kwargs(market, shuffle=True, seed=0)).order()
    )
    memory.set_epoch(1)
    assert (
        memory.order()
        != make_day_dataset("in_memory", **kwargs(market, shuffle=True, seed=0)).order()
    )


def test_window_spans_calendar_days_with_gaps_masked(market):
    batches = collect(make_day_dataset("streaming", **kwargs(market, dates=None)))
    days = calendar()
    code, suspended = SUSPENDED
    for d in suspended:
        assert code not in batches[days[d]]["codes"]
    after = batches[days[suspended.stop]]  # window = calendar days stop-4 .. stop
    i = after["codes"].index(code)
    expected = [d not in suspended for d in range(suspended.stop - 4, suspended.stop + 1)]
    assert after["mask"][i].tolist() == expected
    assert not after["x"][i][~after["mask"][i]].any()
    new_code, listed = LISTED_FROM
    first = batches[days[listed + 1]]
    assert first["mask"][first["codes"].index(new_code)].tolist() == [
        False,
        False,
        False,
        True,
        True,
    ]
    start = batches[days[1]]  # window reaches before the first calendar day
    assert (start["mask"].sum(dim=1) == 2).all()
    assert DELISTED_AFTER[0] not in batches[days[DELISTED_AFTER[1] + 1]]["codes"]


def test_inputs_are_scaled_rows_with_nan_as_zero(market):
    rows, scaler = market["rows"], market["scaler"]
    batches = collect(make_day_dataset("streaming", **kwargs(market)))
    days = calendar()
    for r in np.flatnonzero(rows["day"] >= 2)[::7]:
        batch = batches[days[rows["day"][r]]]
        i = batch["codes"].index(rows["Code"][r])
        raw = np.array([[rows[c][r] for c in FEATURES]], dtype=np.float32)
        expected = np.r_[scaler.transform(raw)[0], rows["is_sparse_valid"][r]]
        np.testing.assert_allclose(batch["x"][i, -1].numpy(), expected, rtol=1e-6)
        if np.isnan(rows["f_sparse"][r]):
            assert batch["x"][i, -1, FEATURES.index("f_sparse")] == 0
            assert batch["x"][i, -1, COLUMNS.index("is_sparse_valid")] == 0
        market_code = rows["market"][r]
        want = VOCAB["market"].index(market_code) + 1 if market_code in VOCAB["market"] else 0
        assert batch["static"]["market"][i] == want


@pytest.mark.parametrize("implementation", ["streaming", "in_memory"])
def test_nan_targets_are_masked_not_filled(market, implementation):
    rows = market["rows"]
    ds = make_day_dataset(implementation, **kwargs(market, dates=None))
    batches = collect(day_loader(ds))
    lookup = {(d, c): r for r, (d, c) in enumerate(zip(rows["day"], rows["Code"], strict=True))}
    n_nan = 0
    for k, date in enumerate(calendar()):
        batch = batches[date]
        for h in HORIZONS:
            want = np.array([rows[f"target_{h}d"][lookup[(k, c)]] for c in batch["codes"]])
            got = batch["y"][h].numpy()
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            np.testing.assert_array_equal(got[~np.isnan(want)], want[~np.isnan(want)])
            assert torch.equal(batch["y_mask"][h], torch.from_numpy(~np.isnan(want)))
            n_nan += int(np.isnan(want).sum())
    assert n_nan > 0
    strict = collect(
        day_loader(
            make_day_dataset(implementation, **kwargs(market, dates=None, require_target=True))
        )
    )
    last = strict[calendar()[-1]]  # every target of the last day is unknown
    assert last["codes"] == []
    for date, batch in strict.items():
        assert torch.stack([batch["y_mask"][h] for h in HORIZONS]).any(dim=0).all(), date


def test_edges_map_codes_to_batch_positions(market):
    edges = market["edges"].to_pydict()
    batches = collect(make_day_dataset("streaming", **kwargs(market)))
    for date, batch in batches.items():
        on_day = [i for i, d in enumerate(edges["Date"]) if d == date]
        codes = batch["codes"]
        want = {
            (edges["src_code"][i], edges["dst_code"][i]): edges["corr"][i]
            for i in on_day
            if edges["src_code"][i] in codes and edges["dst_code"][i] in codes
        }
        src, dst = batch["edge_index"].tolist()
        got = {
            (codes[s], codes[d]): a
            for s, d, a in zip(src, dst, batch["edge_attr"][:, 0].tolist(), strict=True)
        }
        assert got.keys() == want.keys() and len(src) == len(want)
        assert len(want) < len(on_day)  # the edges to "99990" were dropped
        np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=1e-6)


def test_batch_contract_rejects_bad_batches(market):
    batch = next(iter(make_day_dataset("streaming", **kwargs(market))))
    assert_batch_contract(batch, seq_len=5)
    bad = dict(batch, edge_index=batch["edge_index"].clone())
    bad["edge_index"][0, 0] = len(batch["codes"])
    with pytest.raises(AssertionError, match="edge_index"):
        assert_batch_contract(bad)
    bad = dict(batch, y_mask={h: torch.ones_like(m) for h, m in batch["y_mask"].items()})
    bad["y"] = {h: torch.full_like(y, float("nan")) for h, y in batch["y"].items()}
    with pytest.raises(AssertionError, match="y_mask"):
        assert_batch_contract(bad)
    with pytest.raises(AssertionError, match="L = 5"):
        assert_batch_contract(batch, seq_len=20)


def test_bad_inputs_give_one_line_errors(market, tmp_path):
    with pytest.raises(KeyError, match="not a trading day"):
        make_day_dataset("streaming", **kwargs(market, dates=[dt.date(2024, 1, 6)]))
    with pytest.raises(KeyError, match="missing column"):
        make_day_dataset("streaming", **kwargs(market, columns=[*COLUMNS, "f_absent"]))
    split = tmp_path / "split_day.parquet"
    write_features(split, market["rows"], group_sizes=[N_DAYS])  # fine: one group
    rows = market["rows"]
    table = pq.read_table(split)
    half = int(np.flatnonzero(rows["day"] == 3)[1])
    with pq.ParquetWriter(split, table.schema) as writer:
        writer.write_table(table.slice(0, half))
        writer.write_table(table.slice(half))
    with pytest.raises(ValueError, match="two row groups"):
        make_day_dataset("streaming", **kwargs(market, features_path=split))


def test_default_vocabularies_come_from_taxonomy(market):
    taxonomy = pytest.importorskip("atft_kedro.market.taxonomy")
    ds = make_day_dataset("streaming", **{**kwargs(market), "vocabularies": None})
    batch = next(iter(ds))
    codes = market["rows"]["market"][market["rows"]["day"] == 2]
    want = [taxonomy.MARKET_CODES.index(c) + 1 if c in taxonomy.MARKET_CODES else 0 for c in codes]
    assert batch["static"]["market"].tolist() == want


def test_plain_dataloader_without_helper(market):
    ds = make_day_dataset("streaming", **kwargs(market, block_days=5))
    loader = DataLoader(ds, batch_size=None, num_workers=2, persistent_workers=False)
    assert len(collect(loader)) == N_DAYS - 2


@pytest.mark.parametrize("implementation", ["streaming", "in_memory"])
def test_target_view_and_investable_universe_choose_the_labels(market, implementation, tmp_path):
    """``target`` picks the column y is read from; ``universe: investable`` blanks y outside it."""
    rows = dict(market["rows"])
    rng = np.random.default_rng(5)
    n = rows["day"].size
    rows |= {f"target_next_{h}d": rng.normal(size=n).astype(np.float32) for h in HORIZONS}
    rows["universe"] = rng.integers(0, 2, n).astype(np.int8)
    path = tmp_path / "features.parquet"
    write_features(path, rows, extra=("target_next_1d", "target_next_5d", "universe"))
    lookup = {(d, c): r for r, (d, c) in enumerate(zip(rows["day"], rows["Code"], strict=True))}
    for universe in ("all", "investable"):
        ds = make_day_dataset(
            implementation,
            **kwargs(
                market, features_path=path, dates=None, target="next_close", universe=universe
            ),
        )
        batches = collect(day_loader(ds))
        for k, date in enumerate(calendar()):
            batch = batches[date]
            for h in HORIZONS:
                r = np.array([lookup[(k, c)] for c in batch["codes"]])
                want = rows[f"target_next_{h}d"][r].copy()
                if universe == "investable":
                    want[rows["universe"][r] != 1] = np.nan
                np.testing.assert_array_equal(batch["y"][h].numpy(), want)
    with pytest.raises(ValueError, match="loader target"):
        make_day_dataset(implementation, **kwargs(market, features_path=path, target="vwap"))


@pytest.mark.parametrize("implementation", ["streaming", "in_memory"])
def test_a_model_reading_some_features_is_scaled_with_their_own_statistics(market, implementation):
    """The fold's scaler covers every feature of the table; a model that reads some families
    (``training.inputs``) gets those columns scaled exactly as the full scaler scales them."""
    some = FEATURES[1:]
    full = make_day_dataset(implementation, **kwargs(market, dates=None))
    part = make_day_dataset(implementation, **kwargs(market, dates=None, columns=some))
    a, b = collect_days(full), collect_days(part)
    assert a.keys() == b.keys()
    for day in a:
        np.testing.assert_array_equal(
            b[day]["x"].numpy(), a[day]["x"][..., 1 : len(FEATURES)].numpy()
        )
    restricted = market["scaler"].restricted_to(some)
    assert restricted.columns == some
    np.testing.assert_array_equal(restricted.median_, market["scaler"].median_[1:])


def collect_days(dataset) -> dict:
    return {batch["date"]: batch for batch in day_loader(dataset)}
