"""Raw market data sources: synthetic market, J-Quants files and API, schema, calendar."""
