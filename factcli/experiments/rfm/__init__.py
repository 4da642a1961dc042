"""`fact fit-rfm`: FACT-RFM and its baselines on tabular data, one dataset or the UCI benchmark."""
