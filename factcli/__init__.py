"""fact: experiments on the Features At Convergence Theorem (FACT)."""

__version__ = "0.1.0"
