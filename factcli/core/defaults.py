"""The RFM engine's defaults, written once: the core (RFMOptions, Kernel, the grid, the solvers), the
configs' schemas (schema/rfm.py, schema/fit_rfm.py) and the estimators' signatures read them here.

Plain values only (no torch), so the schemas can read them when the CLI starts.
"""

# One RFM path (core/rfm.py RFMOptions; the RFM commands' ``kernel`` and ``rfm`` groups).
KERNEL = "laplace"  # laplace | gaussian | l1 | quadratic
BANDWIDTH = 10.0  # L, in the units of the (standardized) features
METHOD = "fact"
RIDGE = 1e-3
ITERS = 5  # feature-learning iterations T; iterates t = 0..T
NFA_POWER = 0.5  # nfa: M ← AGOP^s (the original RFM code used s = 1)
FACT_POWER = 1.0  # fact: M ← |F|^s, |F| = (FFᵀ)^½ (s = 1: the paper's update; s = 2: M ← FFᵀ)
FORM = "full"  # full | diagonal (one weight per coordinate)
CENTERED_AGOP = False
RESCALE = "trace"  # trace | max | none
PRECISION = "auto"  # auto: float32, redone in float64 when a solve is inaccurate
SOLVE_TOL = 1e-3  # largest accepted relative residual of a kernel solve

# Tabular FACT-RFM (`fact fit-rfm`, the estimators): chosen on the shipped UCI datasets by the rules
# in benchmarks/README.md. M ← FFᵀ, and the kernel selected on validation among laplace and l1.
TABULAR_FACT_POWER = 2.0
TABULAR_KERNEL = "auto"

# The selection grid (experiments/rfm/grid.py GridSpec; fit-rfm's ``grid`` group; the CV estimators).
GRID_BANDWIDTHS = (0.5, 1.0, 2.0, 4.0, 8.0)  # multiples of the median pairwise distance
GRID_BANDWIDTH_UNIT = "median"  # median | absolute
GRID_RIDGES = (10.0, 1.0, 0.1, 0.01, 0.001)
GRID_NORMALIZATIONS = (False, True)  # row normalization x ← x / ‖x‖ off, on
GRID_SEARCH = "best"  # best: paths from the best t = 0 setting | all
GRID_RULE = "best"  # best | noise
GRID_FOLDS = 1  # 1: select on the validation part; k > 1: on k inner folds of the tuning rows
BAGS = 1  # evaluation: 1 refit on a fold's training rows; k > 1: the mean of k refits on its k-fold parts
VALIDATION_FRACTION = 0.25  # of the training rows, held out to select on

# The solver (experiments/common/scalable.py, core/solvers.py).
SOLVER = "auto"  # auto | exact | nystrom
EXACT_MAX_ROWS = 20_000  # auto: the largest training part solved exactly (n×n)
CG_MAX_ITERS = 100
