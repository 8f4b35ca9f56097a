"""The benchmark cases, built from the shape list in `fastbmm.bench`.

The shapes themselves live in ``fastbmm.bench.SHAPES`` (shared with
``python -m fastbmm.bench``); this module selects the cases pytest runs.
Set ``FASTBMM_BENCH_QUICK=1`` to keep only the small and medium shapes.
"""

import os

from fastbmm.bench import SHAPES, benchmark_cases

__all__ = ["SHAPES", "QUICK", "CASES", "EINSUM_MAX_FLOPS"]

#: Whether FASTBMM_BENCH_QUICK=1 restricts the run to the small/medium shapes.
QUICK = os.environ.get("FASTBMM_BENCH_QUICK", "0") not in ("", "0")

#: The cases to benchmark, keyed by label (e.g. ``"64x128x128x64-f32"``), in run order.
CASES = {case.label: case for case in benchmark_cases(quick=QUICK)}

#: np.einsum (NumPy's single-threaded loop) only runs on cases up to this many
#: operations (the 32x256x256x256 shape); beyond, one call takes seconds.
EINSUM_MAX_FLOPS = 2**30
