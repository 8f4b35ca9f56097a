"""A misspelled keyword: mypy must reject this file, with the message that
names it (tests/typing/check_stubs.py checks both)."""

import numpy as np

import fastbmm

a = np.ones((2, 1, 10), np.float32)
b = np.ones((2, 10, 4), np.float32)
out = np.empty((2, 1, 4), np.float32)
fastbmm.bmm(a, b, outt=out)
