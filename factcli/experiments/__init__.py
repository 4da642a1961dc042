"""The experiments behind the subcommands, one package per family.

- ``rfm/``: ``fact fit-rfm``, FACT-RFM on tabular data and the UCI benchmark (docs/SPEC.md §4-5);
- ``nets/``: ``fact train-net`` and ``fact verify-fact``, networks trained with weight decay
  (docs/SPEC.md §1-3, §9);
- ``grokking/``: ``fact grokking``, modular arithmetic (docs/SPEC.md §7-8);
- ``parity/``: ``fact parity``, sparse parity (docs/SPEC.md §6);
- ``common/``: what two families share (optimizers, minibatches, a learner's trace, RFM settings).

Each command's entry point ``run(cfg, run)`` is listed in factcli/commands.py.
"""
