from atft_kedro.model import ATFTGATFAN, ModelConfig, parameter_table


def test_parameter_table_covers_every_submodule_and_vsn_is_not_dominant():
    model = ATFTGATFAN(ModelConfig(n_features=82, hidden=64))
    table = parameter_table(model)
    assert list(table)[:-1] == ["fan", "san", "static", "vsn", "encoder", "gat", "heads"]
    assert sum(v for k, v in table.items() if k != "total") == table["total"]
    assert table["total"] == sum(p.numel() for p in model.parameters())
    assert table["vsn"] / table["total"] < 0.4
