"""Every fixed set of names a setting is chosen from, in one place.

The schemas check config values against these tuples (one-line errors list them in this order) and
core/ checks its own arguments against the same ones, so a new kernel or method is added here once.
Plain constants: importing this module costs nothing and imports nothing.
"""

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "float64")
LOSSES = ("mse", "cross_entropy")
FIXED_TASKS = ("classification", "regression")
TASKS = (*FIXED_TASKS, "auto")  # auto: decided from the data, said in the summary

# The RFM (core/rfm.py, core/kernels.py) and the commands that run it: fit-rfm, grokking, parity.
METHODS = ("laplace", "nfa", "fact", "fact-geo")  # laplace: the kernel alone, no feature learning
KERNELS = ("laplace", "gaussian", "quadratic")  # quadratic: the inner-product kernel (xᵀMz)²
TRANSLATION_INVARIANT_KERNELS = ("laplace", "gaussian")
RESCALE_RULES = ("trace", "max", "none")
PRECISIONS = ("auto", "float32", "float64")  # auto: float32, redone in float64 when inaccurate

SOLVERS = ("auto", "exact", "nystrom")  # auto: exact up to rfm.exact_max_rows rows, then Nyström centres

# fit-rfm
PROTOCOLS = ("strict", "paper")
MISSING = ("refuse", "median")  # numeric missing values: refused, or their training-row median
STANDARDIZE = ("auto", "yes", "no", "True", "False")  # YAML reads yes/no as booleans

# grokking
OPERATIONS = ("add", "sub", "mul", "div")  # a ∘ b mod p
GROKKING_RFM_LEARNERS = ("fact", "fact-geo", "nfa")
GROKKING_LEARNERS = (*GROKKING_RFM_LEARNERS, "net")
GROKKING_OPTIMIZERS = ("adamw", "adam", "sgd")  # adamw: decoupled decay, FACT only approximate
GROKKING_ACTIVATIONS = ("quadratic", "relu")

# parity
PARITY_RFM_LEARNERS = ("fact", "fact-geo", "nfa", "laplace")
PARITY_LEARNERS = (*PARITY_RFM_LEARNERS, "net")
PARITY_OPTIMIZERS = ("sgd", "adam")  # both with coupled L2 decay, so FACT holds at their fixed points
PARITY_INPUTS = ("bits", "signs")

# train-net and verify-fact
OPTIMIZERS = ("sgd", "gd", "adam", "adamw", "lbfgs")
FULL_BATCH_OPTIMIZERS = ("gd", "lbfgs")
SCHEDULES = ("constant", "cosine", "step")
MODEL_KINDS = ("mlp", "conv")
ACTIVATIONS = ("relu", "softplus", "quadratic", "tanh")
INITS = ("default", "kaiming")
IMAGE_SPLITS = ("train", "test")
FACT_METHODS = ("auto", "both", "identity")
