"""torch is a second oracle, not ground truth: the suite must pass where torch is wrong.

torch 2.13's float16 ``baddbmm(beta=0, alpha=0)`` returns uninitialised memory
(NaN, 44864, different on each run) for n >= 2, m >= 40 on CPUs with
AVX512-FP16, where fastbmm's zeros are right. Every comparison of torch's
values goes through ``_helpers.check_torch``, which reports a disagreement
with the exact reference instead of failing. These tests feed a deliberately
wrong "torch" result through each of the suite's comparison paths (baddbmm,
bmm values, the fuzz tests, matmul) and check both halves of the rule: a wrong
torch is reported and does not fail the test, a wrong fastbmm still fails it.
They need no torch: the "torch" here is a stand-in.
"""

import warnings

import numpy as np
import pytest

import fastbmm
from _helpers import (TORCH_DISAGREEMENTS, TorchDisagreesWarning, random_values, seeded_rng,
                      suite_module)

# the suite's comparison paths, from the test modules that own them
test_baddbmm = suite_module("test_baddbmm")
test_fuzz = suite_module("test_fuzz")
test_matmul = suite_module("test_matmul")
test_values = suite_module("test_values")


def _defective_half(shape):
    """What torch 2.13 returned on the AVX512-FP16 machine: garbage where zeros belong."""
    r = np.zeros(shape, np.float16)
    r.flat[::2] = np.nan
    r.flat[1::3] = 44864
    return r


@pytest.fixture
def fake_torch(monkeypatch):
    """Make every torch call site of the suite's helpers return a wrong result.

    On teardown, checks that the disagreement was reported as a warning, then
    drops the stand-in's records so that the run's real report stays clean."""
    def wrong_bmm(a, b):
        shape = (a.shape[0], a.shape[1], b.shape[2])
        return _defective_half(shape).astype(np.result_type(a.dtype))

    def wrong_baddbmm(inp, a, b, beta=1, alpha=1):
        return wrong_bmm(a, b)

    class WrongTorch:
        """Just enough of torch for test_matmul.check_matmul's torch.matmul call."""

        @staticmethod
        def matmul(x, y):
            return type("T", (), {"numpy": lambda self: np.full(np.matmul(x, y).shape, np.nan)})()

    monkeypatch.setattr(test_baddbmm, "torch", object())    # "torch is importable"
    monkeypatch.setattr(test_baddbmm, "torch_baddbmm", wrong_baddbmm)
    monkeypatch.setattr(test_values, "HAVE_TORCH", True)
    monkeypatch.setattr(test_values, "torch_bmm", wrong_bmm)
    monkeypatch.setattr(test_fuzz, "torch_result", wrong_bmm)
    monkeypatch.setattr(test_matmul, "torch", WrongTorch)
    monkeypatch.setattr(test_matmul, "to_torch", lambda x: np.asarray(x))
    start = len(TORCH_DISAGREEMENTS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    assert any(issubclass(w.category, TorchDisagreesWarning) for w in caught), \
        "a torch disagreement must be reported as a TorchDisagreesWarning"
    del TORCH_DISAGREEMENTS[start:]


def _float16_operands():
    # The shape of the reported defect: n >= 2, m >= 40, beta = alpha = 0.
    rng = seeded_rng("torch-defect")
    inp = random_values(rng, (2, 3, 5), np.float16)
    a = random_values(rng, (2, 3, 40), np.float16)
    b = random_values(rng, (2, 40, 5), np.float16)
    return inp, a, b


def test_wrong_torch_baddbmm_is_reported_not_failed(fake_torch):
    inp, a, b = _float16_operands()
    got = test_baddbmm.check_baddbmm(inp, a, b, beta=0, alpha=0)
    assert (got == 0).all()                      # fastbmm's right answer; torch's is reported


def test_wrong_torch_is_recorded(fake_torch):
    inp, a, b = _float16_operands()
    before = len(TORCH_DISAGREEMENTS)
    test_baddbmm.check_baddbmm(inp, a, b, beta=0, alpha=0)
    test_values.check(a, b)
    test_fuzz.check_torch_matches_reference(a, b, False, "stand-in")
    test_matmul.check_matmul(a.astype(np.float32), b.astype(np.float32))
    whats = [w for w, _ in TORCH_DISAGREEMENTS[before:]]
    assert whats == ["torch.baddbmm", "torch.bmm", "torch.bmm stand-in", "torch.matmul"], whats


def test_torch_disagreement_names_torch_not_fastbmm(fake_torch):
    # the assertions' own label defaults to "fastbmm": a report of torch's
    # wrong value must not say that fastbmm's elements are out of tolerance
    inp, a, b = _float16_operands()
    before = len(TORCH_DISAGREEMENTS)
    test_baddbmm.check_baddbmm(inp, a, b, beta=0, alpha=0)
    test_values.check(a, b)
    messages = [m for _, m in TORCH_DISAGREEMENTS[before:]]
    assert len(messages) == 2, messages
    assert all(m.startswith("torch: ") and "fastbmm" not in m for m in messages), messages


def test_wrong_fastbmm_still_fails(fake_torch, monkeypatch):
    inp, a, b = _float16_operands()
    monkeypatch.setattr(fastbmm, "baddbmm", lambda *args, **kw: _defective_half((2, 3, 5)))
    with pytest.raises(AssertionError, match="fastbmm"):
        test_baddbmm.check_baddbmm(inp, a, b, beta=0, alpha=0)
    monkeypatch.setattr(fastbmm, "bmm", lambda x, y, **kw: _defective_half((2, 3, 5)))
    with pytest.raises(AssertionError, match="fastbmm"):
        test_values.check(a, b)
    # keep the fixture's "a disagreement was reported" check true
    test_fuzz.check_torch_matches_reference(a, b, False, "stand-in")
