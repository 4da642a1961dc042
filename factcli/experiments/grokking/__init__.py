"""`fact grokking`: modular arithmetic with FACT-RFM, NFA-RFM and a network."""
