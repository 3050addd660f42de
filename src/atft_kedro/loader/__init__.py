"""Splits, the online robust scaler and day-batch datasets (DESIGN section 6)."""
