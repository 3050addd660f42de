"""Phased training of ATFT-GAT-FAN: seeding, phase plans, checkpoints, the loop, inference."""
