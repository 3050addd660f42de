"""Predictions of a trained model over chronological day batches, in the `predictions` contract.

`predict_days` returns one row per (Date, Code): `Date, Code, model, fold, phase, pred_{h}d,
q{q}_{h}d, target_{h}d, label` (docs/contracts.md): ``target_{h}d`` is the return of the label the
model was fitted to (``label``: next_close, close or next_open), NaN where the future is unknown.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import torch
from torch import nn

from atft_kedro.config import from_block
from atft_kedro.evaluation.interpretation import InterpretationCollector
from atft_kedro.features.labels import DEFAULT_LABEL
from atft_kedro.loader.datasets import DayDataset, day_loader, make_day_dataset
from atft_kedro.loader.scaler import OnlineRobustScaler
from atft_kedro.model import ATFTGATFAN, ModelConfig
from atft_kedro.training.checkpoints import CheckpointStore
from atft_kedro.training.fold_data import dates_between, input_columns, trading_calendar
from atft_kedro.training.fold_training import MissingCheckpointError
from atft_kedro.training.validation import to_device

log = logging.getLogger(__name__)

MODEL_NAME = "atft"


@dataclass(frozen=True)
class PredictConfig:
    """The `predict` block (conf/base/parameters_predict.yml)."""

    horizon: int = 1  # of the score and quantiles, trading days
    fold: int | None = None  # None: the latest trained fold
    phase: int | None = None  # None: the phase chosen on the fold's validation days
    threads: int = 1

    @classmethod
    def from_params(cls, params: dict | None) -> PredictConfig:
        return from_block(cls, params, "predict")


@torch.no_grad()
def predict_days(
    model: nn.Module,
    dataset: DayDataset,
    horizons: Sequence[int],
    quantiles: Sequence[float],
    *,
    model_name: str = "atft_gat_fan",
    fold: int | None = None,
    phase: int | None = None,
    device: str | torch.device = "cpu",
    label: str = DEFAULT_LABEL,
) -> pl.DataFrame:
    """Run `model` on every day of `dataset` (not shuffled) and stack the day predictions;
    ``label`` names the target view the dataset reads (its ``target``)."""
    device = torch.device(device)
    model.to(device).eval()
    dataset.set_epoch(0)
    data = _day_outputs(model, dataset, horizons, quantiles, device)
    frame = pl.DataFrame(
        {
            "Date": pl.Series(data["Date"].astype("datetime64[D]"), dtype=pl.Date),
            "Code": pl.Series(data["Code"].tolist(), dtype=pl.Utf8),
        }
    ).with_columns(
        pl.lit(model_name, pl.Utf8).alias("model"),
        pl.lit(fold, pl.Int32).alias("fold"),
        pl.lit(phase, pl.Int32).alias("phase"),
        *[
            pl.Series(name, values.astype(np.float32), dtype=pl.Float32)
            for name, values in data.items()
            if name not in ("Date", "Code")
        ],
    )
    order = ["Date", "Code", "model", "fold", "phase"]
    order += [f"pred_{h}d" for h in horizons]
    order += [f"q{q:g}_{h}d" for h in horizons for q in quantiles]
    order += [f"target_{h}d" for h in horizons]
    frame = frame.with_columns(pl.lit(label, pl.Utf8).alias("label"))
    return frame.select(*order, "label").sort("Date", "Code")


def _day_outputs(
    model: nn.Module,
    dataset: DayDataset,
    horizons: Sequence[int],
    quantiles: Sequence[float],
    device: torch.device,
) -> dict[str, np.ndarray]:
    """{column: values over every stock-day} of the model's outputs: Date, Code, pred_{h}d,
    q{q}_{h}d (in quantile order within a horizon) and target_{h}d."""
    columns: dict[str, list[np.ndarray]] = {"Date": [], "Code": []}
    for h in horizons:
        columns[f"pred_{h}d"], columns[f"target_{h}d"] = [], []
        for q in quantiles:
            columns[f"q{q:g}_{h}d"] = []
    for batch in day_loader(dataset, 0):
        n = len(batch["codes"])
        if n == 0:
            continue
        out = model(to_device(batch, device))
        columns["Date"].append(np.full(n, np.datetime64(batch["date"], "D")))
        columns["Code"].append(np.asarray(batch["codes"], dtype=object))
        for h in horizons:
            columns[f"pred_{h}d"].append(out["point"][h].float().cpu().numpy())
            columns[f"target_{h}d"].append(batch["y"][h].numpy())
            q_out = out["quantiles"][h].float().cpu().numpy()
            for j, q in enumerate(quantiles):
                columns[f"q{q:g}_{h}d"].append(q_out[:, j])
    return {k: np.concatenate(v) if v else np.empty(0) for k, v in columns.items()}


def load_phase_model(store: CheckpointStore, fold: int, phase: int) -> ATFTGATFAN:
    """The `best` model of (fold, phase), rebuilt from its stored config (weights_only load)."""
    state = store.load(fold, phase, "best")
    model = ATFTGATFAN(ModelConfig.from_dict(state["model_config"]))
    try:
        model.load_state_dict(state["model_state"])
    except RuntimeError as error:
        first = str(error).split("\n\t")[1] if "\n\t" in str(error) else str(error)
        raise ValueError(
            f"checkpoint {store.path_for(fold, phase, 'best')} does not fit the current model code "
            f"({first.strip()}): retrain with `kedro run --pipeline training`"
        ) from error
    return model.eval()


@dataclass(frozen=True)
class Fitted:
    """What a trained model was fitted to: its label and its input families (None: all)."""

    label: str = DEFAULT_LABEL
    inputs: tuple[str, ...] | None = None

    def columns(self, table_columns: Sequence[str]) -> list[str]:
        """The model's input columns among a features table's ``table_columns``."""
        names, masks = input_columns(table_columns, self.inputs)
        return [*names, *masks]


def fitted(store: CheckpointStore, fold: int, phase: int) -> Fitted:
    """What the `best` model of (fold, phase) was fitted to, from the training configuration its
    checkpoint records (``params.run.training``); ``close`` and every input for a checkpoint
    written before they were recorded (close to close was the default label then)."""
    params = store.load(fold, phase, "best").get("params") or {}
    recorded = (params.get("run") or {}).get("training") or {}
    inputs = recorded.get("inputs")
    return Fitted(
        label=str((recorded.get("loader") or {}).get("target", "close")),
        inputs=None if inputs is None else tuple(inputs),
    )


def day_dataset(
    features_path: Path,
    inputs: Sequence[str],
    edges: str | Path | None,
    dates: list[dt.date],
    scaler: OnlineRobustScaler,
    *,
    horizons: Sequence[int],
    seq_len: int,
    label: str = DEFAULT_LABEL,
) -> DayDataset:
    """Chronological day batches of ``dates`` with the model input columns ``inputs`` (every
    stock with a row; targets of ``label``, NaN where unknown)."""
    return make_day_dataset(
        "in_memory",
        features_path=features_path,
        dates=dates,
        columns=list(inputs),
        horizons=horizons,
        seq_len=seq_len,
        scaler=scaler,
        graph_edges_path=edges,
        shuffle=False,
        require_target=False,
        target=label,
    )


def trained_phases(store: CheckpointStore, folds: list[int]) -> dict[int, list[int]]:
    """{fold: phases with a `best` checkpoint, ascending} for the given folds."""
    found: dict[int, list[int]] = {f: [] for f in folds}
    for fold, phase, kind in store.available():
        if kind == "best" and fold in found:
            found[fold].append(phase)
    return {f: sorted(p) for f, p in found.items() if p}


@dataclass
class _FoldData:
    """One fold's day datasets, built on first use per (what the model was fitted to, block)."""

    features: Path
    columns: list[str]
    graph_edges: str | Path | None
    calendar: list[dt.date]
    spans: dict  # block -> [first, last] (the fold's split)
    scaler: OnlineRobustScaler
    horizons: Sequence[int]
    seq_len: int
    built: dict = field(default_factory=dict)

    def get(self, fit: Fitted, block: str) -> DayDataset:
        if (fit, block) not in self.built:
            dates = dates_between(self.calendar, self.spans[block])
            self.built[fit, block] = day_dataset(
                self.features,
                fit.columns(self.columns),
                self.graph_edges,
                dates,
                self.scaler,
                horizons=self.horizons,
                seq_len=self.seq_len,
                label=fit.label,
            )
        return self.built[fit, block]


def _trained_phases(store: CheckpointStore, folds: list[int]) -> dict[int, list[int]]:
    """{fold: its phases with a `best` checkpoint} (``trained_phases``); an error when none has."""
    phases = trained_phases(store, folds)
    if not phases:
        raise MissingCheckpointError(
            f"reporting: no `best` checkpoint under {store.path} for folds {folds}: "
            "run `kedro run --pipeline training` first"
        )
    return phases


def predict_folds(
    features: str | Path,
    graph_edges: str | Path | None,
    splits: dict,
    scalers: dict,
    store: CheckpointStore,
    *,
    horizons: Sequence[int],
    seq_len: int,
    seed: int,
    validation_phases: dict[int, list[int]] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """Predictions of every trained (fold, phase) `best` model on its fold's test dates, the same
    on its validation dates for the phases of ``validation_phases`` ({fold: phases}; None: every
    phase), each with the targets of the label the model was fitted to, and the final phase's
    interpretation averaged over the test dates (JSON-ready) → (test, validation, interpretation).

    Each fold uses its own scaler (``scalers["fold{f}"]``, fitted on its training dates).
    ``features``: the model_input Parquet; ``graph_edges``: its edges file
    (``loader.day_graph.edges_file``).
    """
    folds = [int(f["fold"]) for f in splits["folds"] if f"fold{f['fold']}" in scalers]
    phases = _trained_phases(store, folds)
    final = max(p for ps in phases.values() for p in ps)
    calendar, columns = trading_calendar(features), pq.read_schema(features).names
    collector, final_model = None, None
    frames: dict[str, list[pl.DataFrame]] = {"test": [], "val": []}
    for fold_split in splits["folds"]:
        fold = int(fold_split["fold"])
        if fold not in phases:
            continue
        scaler = OnlineRobustScaler.from_dict(scalers[f"fold{fold}"])
        data = _FoldData(
            Path(features), columns, graph_edges, calendar, fold_split, scaler, horizons, seq_len
        )
        for phase in phases[fold]:
            model, fit = load_phase_model(store, fold, phase), fitted(store, fold, phase)
            wanted = validation_phases is None or phase in validation_phases.get(fold, ())
            for block in ("test", "val") if wanted else ("test",):
                frames[block].append(_predict_block(model, data, fit, block, fold, phase))
            if phase == final:
                collector = collector or InterpretationCollector(fit.columns(columns), seed=seed)
                _interpret(collector, model, data.get(fit, "test"))
                final_model = model
    assert collector is not None  # the final phase is trained in at least one fold
    interpretation = collector.result(final_model) | {"phase": final, "model": MODEL_NAME}
    test = pl.concat(frames["test"], how="vertical")
    return test, pl.concat(frames["val"] or [test.clear()], how="vertical"), interpretation


def _predict_block(
    model: ATFTGATFAN, data: _FoldData, fit: Fitted, block: str, fold: int, phase: int
) -> pl.DataFrame:
    """Predictions of the (fold, phase) model on the fold's ``block`` days ("test" or "val")."""
    dataset = data.get(fit, block)
    log.info("fold %d phase %d: predicting %d %s days", fold, phase, len(dataset), block)
    return predict_days(
        model,
        dataset,
        data.horizons,
        model.cfg.quantiles,
        model_name=MODEL_NAME,
        fold=fold,
        phase=phase,
        label=fit.label,
    )


@torch.no_grad()
def _interpret(collector: InterpretationCollector, model: ATFTGATFAN, dataset: DayDataset) -> None:
    """Add the model's interpretation of every day of ``dataset`` to ``collector``."""
    for batch in day_loader(dataset):
        collector.update(batch, model(batch, return_interpretation=True))
