"""The Kedro training pipeline: phase 0 then phase 1 with SequentialRunner on a tmp catalog."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.partitions import PartitionedDataset

from atft_kedro.datasets import DayMajorParquetDataset, JSONDocumentDataset
from atft_kedro.datasets.checkpoint import CheckpointDirectoryDataset
from atft_kedro.pipelines.training import create_pipeline
from atft_kedro.training.fold_training import MissingCheckpointError
from tests.training.tiny_market import (
    HORIZONS,
    N_DAYS,
    SEQ_LEN,
    full_graph,
    tiny_features,
    tiny_splits,
    tiny_training_params,
    trading_days,
)


def catalog(tmp_path: Path, phase) -> DataCatalog:
    days = trading_days(N_DAYS)
    features = DayMajorParquetDataset(str(tmp_path / "features.parquet"))
    if not (tmp_path / "features.parquet").exists():
        features.save(tiny_features())
    return DataCatalog(
        {
            "model_input": features,
            "graph_edges": MemoryDataset(full_graph(days)),
            "splits": MemoryDataset(tiny_splits(days)),
            "scalers": JSONDocumentDataset(str(tmp_path / "scalers.json")),
            "checkpoints": CheckpointDirectoryDataset(str(tmp_path / "checkpoints")),
            "training_metrics": PartitionedDataset(
                path=str(tmp_path / "training_metrics"),
                dataset="atft_kedro.datasets.JSONDocumentDataset",
                filename_suffix=".json",
            ),
            "params:training": MemoryDataset(tiny_training_params()),
            "params:label": MemoryDataset("next_close"),
            "params:phase": MemoryDataset(phase),
            "params:resume_checkpoint": MemoryDataset(None),
            "params:seed": MemoryDataset(42),
            "params:horizons": MemoryDataset(HORIZONS),
            "params:seq_len": MemoryDataset(SEQ_LEN),
        }
    )


def test_phase_0_then_phase_1_then_a_missing_phase(tmp_path):
    SequentialRunner().run(create_pipeline(), catalog(tmp_path, 0))
    metrics = tmp_path / "training_metrics"
    assert sorted(p.name for p in metrics.iterdir()) == ["fold0_phase0.json"]
    SequentialRunner().run(create_pipeline(), catalog(tmp_path, "1"))
    assert sorted(p.name for p in metrics.iterdir()) == ["fold0_phase0.json", "fold0_phase1.json"]
    record = json.loads((metrics / "fold0_phase1.json").read_text())
    assert record["started_from"].endswith("fold0/phase0/best.pt")
    assert {"fan", "san"} <= set(record["trainable"]) and "gat" not in record["trainable"]
    epoch = record["epochs"][0]
    for key in (
        "train_total",
        "val_loss",
        "val_ic_1d",
        "val_rank_ic_5d",
        "samples_per_s",
        "peak_rss_mib",
        "nonfinite_skips",
        "nonfinite_repairs",
        "seconds",
    ):
        assert key in epoch, key
    scalers = json.loads((tmp_path / "scalers.json").read_text())
    assert scalers["fold0"]["columns"] == ["f_signal", "f_noise", "f_sparse"]
    assert pl.read_parquet(tmp_path / "features.parquet").height > 0
    with pytest.raises(MissingCheckpointError, match=r"--params phase=2` first"):
        SequentialRunner().run(create_pipeline(), catalog(tmp_path, 3))
