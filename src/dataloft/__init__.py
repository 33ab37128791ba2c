import os

__version__ = "0.1.0"

# Every request thread runs its own vector scan; BLAS threads on top of those only fight
# over the cores (a 10x slower scan on a busy 2-core host, docs/benchmarks.md). This must
# happen before NumPy loads; an operator's own setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
