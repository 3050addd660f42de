"""Custom Kedro datasets: atomic Parquet tables, day-major feature files, JSON documents."""

from atft_kedro.datasets.json_document import JSONDocumentDataset
from atft_kedro.datasets.parquet import (
    DayMajorParquet,
    DayMajorParquetDataset,
    PolarsParquetDataset,
)
from atft_kedro.datasets.text_document import TextDocumentDataset

__all__ = [
    "DayMajorParquet",
    "DayMajorParquetDataset",
    "JSONDocumentDataset",
    "PolarsParquetDataset",
    "TextDocumentDataset",
]
