"""`fact train-net` and `fact verify-fact`: networks trained with weight decay, FACT checked per layer."""
