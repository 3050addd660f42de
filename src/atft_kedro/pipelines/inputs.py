"""Node inputs passed by keyword, for nodes with more inputs than one can match by position."""


def keywords(*datasets: str) -> dict[str, str]:
    """``{argument: dataset}`` with the argument named after the dataset (``params:`` dropped).

    >>> keywords("model_input", "params:seed")
    {'model_input': 'model_input', 'seed': 'params:seed'}
    """
    return {name.removeprefix("params:"): name for name in datasets}
