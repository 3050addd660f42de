"""Splits, the online robust scaler and day-batch datasets (docs/design.md, Splits, scaler and loader)."""
