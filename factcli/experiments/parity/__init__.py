"""`fact parity`: sparse parity with FACT-RFM, NFA-RFM, the Laplace baseline and a network."""
