"""Parameters of ATFT-GAT-FAN per sub-module for F = 82 inputs, at H = 64 and H = 128.

The earlier model spent 80–95% of its parameters in per-feature GRNs inside variable selection; the
`vsn share` column shows where ours goes.

    .venv/bin/python benchmarks/param_count.py
"""

from __future__ import annotations

from atft_kedro.model import ATFTGATFAN, ModelConfig, parameter_table

N_FEATURES = 82


def main() -> None:
    tables = {
        h: parameter_table(ATFTGATFAN(ModelConfig(n_features=N_FEATURES, hidden=h)))
        for h in (64, 128)
    }
    names = list(tables[64])
    print(f"ATFT-GAT-FAN parameters, F = {N_FEATURES}, horizons (1, 5, 10, 20), 5 quantiles")
    print(f"{'sub-module':<12}" + "".join(f"{f'H={h}':>12}{'share':>8}" for h in tables))
    for name in names:
        row = "".join(
            f"{tables[h][name]:>12,}{tables[h][name] / tables[h]['total']:>8.1%}" for h in tables
        )
        print(f"{name:<12}{row}")
    for h, table in tables.items():
        print(
            f"H={h}: variable selection holds {table['vsn'] / table['total']:.1%} of all parameters"
        )


if __name__ == "__main__":
    main()
