"""J-Quants classification codes."""

from atft_kedro.market.taxonomy import (
    MARKET_CODES,
    MARKET_NAMES,
    SECTOR17_CODES,
    SECTOR17_NAMES,
    SECTOR33,
    SECTOR33_CODES,
    SECTOR33_NAMES,
    SECTOR33_TO_17,
    vocabulary_index,
)


def test_thirty_three_sectors_with_unique_four_digit_codes():
    assert len(SECTOR33) == 33
    assert len(set(SECTOR33_CODES)) == 33
    assert all(len(c) == 4 and c.isdigit() for c in SECTOR33_CODES)
    assert list(SECTOR33_CODES) == sorted(SECTOR33_CODES)
    assert SECTOR33_NAMES["0050"] == "Fishery, Agriculture & Forestry"
    assert SECTOR33_NAMES["9050"] == "Services"


def test_every_sector33_maps_into_the_seventeen_sectors_and_all_are_used():
    assert SECTOR17_CODES == tuple(str(i) for i in range(1, 18))
    assert set(SECTOR33_TO_17.values()) == set(SECTOR17_NAMES)
    assert SECTOR33_TO_17["7050"] == "15"  # Banks
    assert SECTOR33_TO_17["3700"] == SECTOR33_TO_17["3350"] == "6"  # autos and tyres


def test_market_segments():
    assert MARKET_CODES == ("0111", "0112", "0113")
    assert [MARKET_NAMES[c] for c in MARKET_CODES] == ["Prime", "Standard", "Growth"]


def test_vocabulary_index_reserves_zero_for_unknown():
    assert vocabulary_index(MARKET_CODES, "0111") == 1
    assert vocabulary_index(SECTOR33_CODES, "9050") == 33
    assert vocabulary_index(SECTOR33_CODES, "9999") == 0
    assert vocabulary_index(SECTOR33_CODES, None) == 0
