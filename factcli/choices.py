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
KERNELS = ("laplace", "gaussian", "quadratic", "l1")  # quadratic: (xᵀMz)²; l1: exp(−‖M^½(x−z)‖₁/L)
TRANSLATION_INVARIANT_KERNELS = ("laplace", "gaussian", "l1")
FORMS = ("full", "diagonal")  # the feature matrix M: full, or one weight per coordinate
RESCALE_RULES = ("trace", "max", "none")
PRECISIONS = ("auto", "float32", "float64")  # auto: float32, redone in float64 when inaccurate

SOLVERS = ("auto", "exact", "nystrom")  # auto: exact up to rfm.exact_max_rows rows, then Nyström centres

# fit-rfm
PROTOCOLS = ("strict", "paper")
AUTO_KERNEL = "auto"  # fit-rfm's kernel.name: selected on validation among AUTO_KERNELS, like L
AUTO_KERNELS = ("laplace", "l1")
BASELINES = ("l1-krr", "l2-krr", "svc-rbf")  # tuned kernel ridge regression (L1 / L2 Laplace), SVC-RBF
BASELINES += ("random-forest", "lightgbm")  # tuned tree ensembles (lightgbm: the optional `bench` extra)
BANDWIDTH_UNITS = ("median", "absolute")  # grid.bandwidths: multiples of the median distance, or L itself
SEARCHES = ("best", "all")  # feature-learning paths from the best t = 0 setting, or from every one
SELECTION_RULES = ("best", "noise")  # noise: t > 0 only when it beats t = 0 by more than its std. error
RIDGE_SOLVERS = ("cholesky", "eigen")  # grid.solver (t = 0): one Cholesky per ridge, or one eigh for all
MISSING = ("refuse", "median")  # numeric missing values: refused, or their training-row median
STANDARDIZE = ("auto", "yes", "no", "True", "False")  # YAML reads yes/no as booleans

# grokking
OPERATIONS = ("add", "sub", "mul", "div")  # a ∘ b mod p
GROKKING_RFM_LEARNERS = ("fact", "fact-geo", "nfa")
GROKKING_LEARNERS = (*GROKKING_RFM_LEARNERS, "net", "transformer")
GROKKING_NETWORKS = ("net", "transformer")  # the learners trained by an optimizer
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
MODEL_KINDS = ("mlp", "conv", "transformer")
ACTIVATIONS = ("relu", "gelu", "softplus", "quadratic", "tanh")
INITS = ("default", "kaiming")
IMAGE_SPLITS = ("train", "test")
FACT_METHODS = ("auto", "both", "identity")
FINISHES = ("lbfgs", "none")  # train.finish: full-batch L-BFGS on L_lambda to the tolerance, or nothing
