"""DDP on CPU: two gloo ranks vs the single-process twin with the same days per step."""

from __future__ import annotations

import socket

import polars as pl
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from atft_kedro.evaluation.figures import training_history
from atft_kedro.model import ATFTGATFAN, ATFTLoss
from atft_kedro.training.distributed import (
    Rank,
    all_shards,
    day_generator,
    epoch_day_subset,
    gather_digests,
    shard_days,
    weights_digest,
)
from atft_kedro.training.fold_data import fit_fold_scaler, fold_data, trading_calendar
from atft_kedro.training.phases import apply_phase
from atft_kedro.training.seeding import rng_state, seed_everything
from atft_kedro.training.steps import StepPlan
from atft_kedro.training.trainer import train_phase
from tests.training.tiny_market import (
    N_DAYS,
    SEQ_LEN,
    tiny_config,
    tiny_features,
    tiny_training_params,
    trading_days,
    write_market,
)
from tests.training.training_state import assert_same, assert_same_training_state

WORLD = 2
TOLERANCE = 1e-5  # float32 all-reduce vs in-process accumulation: summation order only


def test_shards_are_disjoint_equal_and_cover_the_permutation():
    n, seed = 11, 3
    shards = [shard_days(n, Rank(r, 3), seed, epoch=1) for r in range(3)]
    days = [d for s in shards for (d,) in s]
    assert len(set(days)) == len(days) == 9  # disjoint, ⌊11/3⌋ = 3 per rank
    assert {len(s) for s in shards} == {3}
    assert shard_days(n, Rank(0, 3), seed, 2) != shard_days(n, Rank(0, 3), seed, 1)
    assert all_shards(n, 3, seed, 1)[0] == [shards[r][0][0] for r in range(3)]


def test_shards_follow_the_epoch_day_cap():
    shards = [shard_days(40, Rank(r, 2), 5, epoch=0, max_days=10) for r in range(2)]
    days = {d for s in shards for (d,) in s}
    assert len(days) == 10 and {len(s) for s in shards} == {5}
    assert days == set(epoch_day_subset(40, 10, 5, 0).tolist())  # the single-process subset


def test_day_generator_depends_on_seed_epoch_and_day_only():
    draw = lambda *key: torch.rand(3, generator=day_generator(*key)).tolist()  # noqa: E731
    assert draw(1, 2, 3) == draw(1, 2, 3)
    assert draw(1, 2, 3) != draw(1, 2, 4) and draw(1, 2, 3) != draw(1, 3, 3)


# phase 2: FAN + SAN + GAT, every module runs; phase 4 adds augmentation and SWA, with a day cap
CASES = {"graph": (2, None), "augment_swa_day_cap": (4, 5)}


def _setup(market, case="graph", *, stateful=False, sharpe=True):
    """Data, phase settings, training config, model and loss of a case: no dropout (a rank's dropout masks are not
    its single-process twin's), or, ``stateful``, everything a resume must carry over: dropout,
    the Sharpe EMA (``sharpe``), weight averaging (EMA; SWA in phase 4), and early stopping that
    ends the run after epoch 3 of 4 only if it remembers epochs 1 and 2 (min_delta = 1: only
    epoch 1 counts as better)."""
    phase_id, max_days = CASES[case]
    params = tiny_training_params(epochs=4 if stateful else 2)
    params["max_train_days_per_epoch"] = max_days
    if stateful:
        params["max_train_days_per_epoch"] = max_days or 8  # 4 steps of 2 ranks per epoch
        params["min_delta"] = 1.0
        block = params["phases"][str(phase_id)]
        block |= {"patience": 2, "loss": block["loss"] | {"sharpe_weight": 0.1 if sharpe else 0}}
        block.setdefault("averaging", {"kind": "ema", "ema_decay": 0.9})
        params["model"]["gat"] |= {"attn_dropout": 0.1, "edge_dropout": 0.1}
    else:
        params["model"] |= {"dropout": 0.0}
        params["model"]["gat"] |= {"attn_dropout": 0.0, "edge_dropout": 0.0}
    cfg = tiny_config(params)
    fold = market["splits"]["folds"][0]
    calendar = trading_calendar(market["features"])
    scaler = fit_fold_scaler(market["features"], fold, calendar, cfg.scaler, 0)
    data = fold_data(
        market["features"],
        market["graph_edges"],
        fold,
        calendar,
        scaler,
        cfg,
        seq_len=SEQ_LEN,
        seed=0,
    )
    (spec,) = cfg.plan([phase_id])
    seed_everything(7, threads=1)
    model = ATFTGATFAN(cfg.model.with_inputs(data.n_features))
    apply_phase(model, spec)
    loss_fn = ATFTLoss(spec.loss, model.cfg.quantiles)
    return data, spec, cfg, model, loss_fn


def _rank_main(rank: int, port: int, market: dict, out: str, case: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    try:
        data, spec, cfg, model, loss_fn = _setup(market, case)
        saved = []

        def save(kind, state):
            if kind == "last":  # after epoch 1 of 2, a resume's start; after epoch 2, its end
                torch.save(state, f"{out}.last_epoch{state['epoch']}")  # now: tensors change
            saved.append(kind)

        result = train_phase(
            model,
            loss_fn,
            spec,
            cfg,
            data.train,
            data.val,
            save=save,
            steps=StepPlan(Rank(rank, WORLD)),
            seed=0,
        )
        digests = gather_digests(model)
        torch.save(
            {"history": result.history, "digests": digests, "saved": saved},
            f"{out}.rank{rank}",
        )

    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_two_ranks_match_single_process_with_same_batches(tiny_market, tmp_path, case):
    out = str(tmp_path / "ddp")
    mp.spawn(_rank_main, args=(_free_port(), tiny_market, out, case), nprocs=WORLD, join=True)
    ranks = [torch.load(f"{out}.rank{r}", weights_only=True) for r in range(WORLD)]

    # every rank ends with identical weights; only rank 0 saved checkpoints
    digests = ranks[0]["digests"]
    assert torch.equal(digests[0], digests[1])
    assert ranks[0]["saved"] and "last" in ranks[0]["saved"] and ranks[1]["saved"] == []

    data, spec, cfg, model, loss_fn = _setup(tiny_market, case)
    start = weights_digest(model)
    twin = train_phase(
        model,
        loss_fn,
        spec,
        cfg,
        data.train,
        data.val,
        save=lambda *_: None,
        steps=StepPlan(accumulate=WORLD),
        seed=0,
    )
    assert not torch.allclose(start, digests[0])  # training changed the weights
    torch.testing.assert_close(digests[0], weights_digest(model), atol=TOLERANCE, rtol=0)
    for ddp_epoch, twin_epoch in zip(ranks[0]["history"], twin.history, strict=True):
        for key in ("val_loss", "val_rank_ic_1d", "val_ic_5d"):
            assert ddp_epoch[key] == pytest.approx(twin_epoch[key], abs=TOLERANCE)
    val = [
        [{k: v for k, v in e.items() if k.startswith("val")} for e in r["history"]] for r in ranks
    ]
    assert val[0] == val[1]  # validation is identical on every rank
    history = ranks[0]["history"]
    if CASES[case][1] is not None:  # the day cap: 5 days per epoch, 2 per step → 2 steps
        assert [e["train_days"] for e in history] == [2, 2]
    assert all(e["averaged_weights"] for e in history) == spec.averaging.enabled

    # the DDP run's metrics feed the report's training curve (one loop, one record format)
    curve = training_history({"fold0_phase": {"fold": 0, "phase": spec.phase, "epochs": history}})
    (frame,) = curve.values()
    assert frame["train_loss"].is_not_null().all() and frame["val_rank_ic"].is_not_null().all()

    # a single process resumed from the 2-rank `last` after epoch 1 ends with the DDP weights
    resumed = torch.load(f"{out}.last_epoch1", weights_only=True)
    assert resumed["world_size"] == WORLD and resumed["epoch"] == 1
    for key in ("scheduler_state", "loss_state", "rng_state", "early_stopping", "global_step"):
        assert key in resumed, key
    data, spec, cfg, model, loss_fn = _setup(tiny_market, case)
    ends = {}
    train_phase(
        model,
        loss_fn,
        spec,
        cfg,
        data.train,
        data.val,
        save=ends.__setitem__,
        resume_state=resumed,
        steps=StepPlan(accumulate=WORLD),
        seed=0,
    )
    torch.testing.assert_close(digests[0], weights_digest(model), atol=TOLERANCE, rtol=0)
    ddp, twin_end = torch.load(f"{out}.last_epoch2", weights_only=True), ends["last"]
    assert twin_end["epoch"] == 2 and twin_end["global_step"] == ddp["global_step"]
    assert twin_end["early_stopping"]["best_epoch"] == ddp["early_stopping"]["best_epoch"]
    assert twin_end["early_stopping"]["best"] == pytest.approx(
        ddp["early_stopping"]["best"], abs=TOLERANCE
    )
    if spec.averaging.enabled:  # the SWA average carried over from the 2-rank job
        torch.testing.assert_close(
            twin_end["averaged_state"], ddp["averaged_state"], atol=TOLERANCE, rtol=0
        )
    for ddp_epoch, twin_epoch in zip(ddp["history"], twin_end["history"], strict=True):
        for key in ("val_loss", "val_rank_ic_1d", "val_ic_5d"):  # (train_* are rank 0's days)
            assert ddp_epoch[key] == pytest.approx(twin_epoch[key], abs=TOLERANCE), key


def uneven_features():
    """tiny_features() with two codes missing on every other day: days of 8 and of 6 stocks."""
    features = tiny_features()
    odd = trading_days(N_DAYS)[1::2]
    return features.filter(~(pl.col("Date").is_in(odd) & pl.col("Code").is_in(["16050", "72030"])))


# Stateful two-rank jobs resumed after epoch 2 (see `_setup(stateful=True)`): name → (market,
# case, Sharpe term on). EMA and SWA on markets whose days all hold 8 stocks, the Sharpe term,
# and days of different sizes (a rank's dropout then draws a different amount of random numbers).
RESUMED_JOBS = {
    "ema": ("even", "graph", False),
    "swa": ("even", "augment_swa_day_cap", False),
    "sharpe": ("even", "graph", True),
    "uneven_days": ("uneven", "graph", False),
}


def _resume_rank_main(rank: int, port: int, markets: dict, out: str) -> None:
    """Each job twice: uninterrupted, then resumed from its `last` after epoch 2. Rank 0 saves
    the checkpoints; every rank keeps its own end state (weights, Sharpe moments, generators)."""
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    try:
        for job, (market, case, sharpe) in RESUMED_JOBS.items():
            for run in ("full", "resumed"):
                data, spec, cfg, model, loss_fn = _setup(
                    markets[market], case, stateful=True, sharpe=sharpe
                )
                start = f"{out}.{job}.full.last2"
                resume = torch.load(start, weights_only=True) if run == "resumed" else None

                def save(kind, state, prefix=f"{out}.{job}.{run}"):
                    if kind == "last":
                        torch.save(state, f"{prefix}.last{state['epoch']}")

                result = train_phase(
                    model,
                    loss_fn,
                    spec,
                    cfg,
                    data.train,
                    data.val,
                    save=save,
                    resume_state=resume,
                    steps=StepPlan(Rank(rank, WORLD)),
                    seed=0,
                )
                end = {
                    "model": model.state_dict(),
                    "loss": loss_fn.state_dict(),
                    "rng": rng_state(),
                    "epochs": len(result.history),
                    "stopped_early": result.stopped_early,
                }
                torch.save(end, f"{out}.{job}.{run}.rank{rank}")
                dist.barrier()  # rank 0 has saved what the resumed run reads
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def resumed_jobs(tmp_path_factory) -> str:
    """Every job of RESUMED_JOBS run by one two-rank spawn (starting ranks costs more than the
    jobs); the files' common prefix."""
    folder = tmp_path_factory.mktemp("resumed_jobs")
    markets = {}
    for name, features in (("even", None), ("uneven", uneven_features())):
        (folder / name).mkdir()
        markets[name] = write_market(folder / name, features)
    out = str(folder / "ddp")
    mp.spawn(_resume_rank_main, args=(_free_port(), markets, out), nprocs=WORLD, join=True)
    return out


PER_RANK_STATE = pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="a `last` checkpoint holds rank 0's Sharpe moments and RNG states and every rank "
    "restores them, but each rank's own differ (its days' returns; its days' sizes)",
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "job",
    [
        "ema",
        "swa",
        pytest.param("sharpe", marks=PER_RANK_STATE),
        pytest.param("uneven_days", marks=PER_RANK_STATE),
    ],
)
def test_a_resumed_two_rank_job_ends_where_the_uninterrupted_one_does(resumed_jobs, job):
    """Dropout, weight averaging, early stopping (and the Sharpe EMA): resumed after epoch 2,
    the job ends after epoch 3 with everything as the uninterrupted one, on every rank."""
    files = {run: f"{resumed_jobs}.{job}.{run}" for run in ("full", "resumed")}
    full, resumed = (torch.load(f"{files[run]}.last3", weights_only=True) for run in files)
    assert full["world_size"] == WORLD and full["averaged_state"] is not None
    sharpe = RESUMED_JOBS[job][2]
    assert (int(full["loss_state"]["sharpe_days"]) > 0) == sharpe
    ends = [
        [torch.load(f"{files[run]}.rank{rank}", weights_only=True) for run in files]
        for rank in range(WORLD)
    ]
    for rank, (a, b) in enumerate(ends):  # what each rank carries, checkpointed or not
        assert a["stopped_early"] and a["epochs"] == 3  # early stopping ended it after epoch 3
        for key in ("epochs", "stopped_early", "rng", "loss"):
            assert_same(a[key], b[key], f"rank {rank}'s {key}")
    assert_same_training_state(full, resumed)
    for rank, (a, b) in enumerate(ends):
        assert_same(a["model"], b["model"], f"rank {rank}'s weights")


def test_an_unavailable_or_unknown_device_is_a_parameter_error(monkeypatch):
    from atft_kedro.errors import ParameterError
    from atft_kedro.training.distributed import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(ParameterError, match="no CUDA device"):
        resolve_device("cuda")
    with pytest.raises(ParameterError, match="auto, cpu or cuda"):
        resolve_device("tpu")
