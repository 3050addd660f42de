"""J-Quants / TSE classification codes: 33 sectors, 17 sectors, and market segments.

Codes and English names follow the J-Quants specification (``Sector33Code``, ``Sector17Code``,
``MarketCode``). Model vocabularies use ``index = position + 1`` in ``SECTOR33_CODES`` /
``MARKET_CODES``, with 0 reserved for unknown.
"""

from __future__ import annotations

from typing import NamedTuple


class Sector33(NamedTuple):
    """One TSE 33-sector industry and the 17-sector group it belongs to."""

    code: str
    name: str
    sector17: str


SECTOR33: tuple[Sector33, ...] = (
    Sector33("0050", "Fishery, Agriculture & Forestry", "1"),
    Sector33("1050", "Mining", "2"),
    Sector33("2050", "Construction", "3"),
    Sector33("3050", "Foods", "1"),
    Sector33("3100", "Textiles & Apparels", "4"),
    Sector33("3150", "Pulp & Paper", "4"),
    Sector33("3200", "Chemicals", "4"),
    Sector33("3250", "Pharmaceutical", "5"),
    Sector33("3300", "Oil & Coal Products", "2"),
    Sector33("3350", "Rubber Products", "6"),
    Sector33("3400", "Glass & Ceramics Products", "3"),
    Sector33("3450", "Iron & Steel", "7"),
    Sector33("3500", "Nonferrous Metals", "7"),
    Sector33("3550", "Metal Products", "3"),
    Sector33("3600", "Machinery", "8"),
    Sector33("3650", "Electric Appliances", "9"),
    Sector33("3700", "Transportation Equipment", "6"),
    Sector33("3750", "Precision Instruments", "9"),
    Sector33("3800", "Other Products", "10"),
    Sector33("4050", "Electric Power & Gas", "11"),
    Sector33("5050", "Land Transportation", "12"),
    Sector33("5100", "Marine Transportation", "12"),
    Sector33("5150", "Air Transportation", "12"),
    Sector33("5200", "Warehousing & Harbor Transportation Services", "12"),
    Sector33("5250", "Information & Communication", "10"),
    Sector33("6050", "Wholesale Trade", "13"),
    Sector33("6100", "Retail Trade", "14"),
    Sector33("7050", "Banks", "15"),
    Sector33("7100", "Securities & Commodity Futures", "16"),
    Sector33("7150", "Insurance", "16"),
    Sector33("7200", "Other Financing Business", "16"),
    Sector33("8050", "Real Estate", "17"),
    Sector33("9050", "Services", "10"),
)

SECTOR17_NAMES: dict[str, str] = {
    "1": "Food",
    "2": "Energy Resources",
    "3": "Construction & Materials",
    "4": "Materials & Chemicals",
    "5": "Pharmaceuticals",
    "6": "Automobiles & Transportation Equipment",
    "7": "Steel & Non-ferrous Metals",
    "8": "Machinery",
    "9": "Electric Equipment & Precision Instruments",
    "10": "Information & Communication, Services & Others",
    "11": "Electric Power & Gas",
    "12": "Transportation & Logistics",
    "13": "Trading Companies & Wholesale",
    "14": "Retail",
    "15": "Banks",
    "16": "Finance (Excluding Banks)",
    "17": "Real Estate",
}

SECTOR33_CODES: tuple[str, ...] = tuple(s.code for s in SECTOR33)
SECTOR33_NAMES: dict[str, str] = {s.code: s.name for s in SECTOR33}
SECTOR33_TO_17: dict[str, str] = {s.code: s.sector17 for s in SECTOR33}
SECTOR17_CODES: tuple[str, ...] = tuple(SECTOR17_NAMES)

MARKET_CODES: tuple[str, ...] = ("0111", "0112", "0113")
MARKET_NAMES: dict[str, str] = {"0111": "Prime", "0112": "Standard", "0113": "Growth"}
# Section names used by the weekly investor-type statistics (trades_spec).
MARKET_SECTIONS: dict[str, str] = {"0111": "TSEPrime", "0112": "TSEStandard", "0113": "TSEGrowth"}


def vocabulary_index(codes: tuple[str, ...], code: str | None) -> int:
    """Model vocabulary index of ``code`` in ``codes``: position + 1, or 0 when unknown/None."""
    try:
        return codes.index(code) + 1
    except ValueError:
        return 0
