"""The Examples sections of the public docstrings, run as doctests.

``pytest --doctest-modules`` collects only ``.py`` files, so it never sees the
docstrings of the compiled modules (bmm, baddbmm, matmul). This file parses
every public docstring itself, from the imported objects, and runs it; each
public function must have examples (so a docstring that loses its Examples
section fails here too, rather than silently running nothing).
"""

import doctest

import pytest

import fastbmm
import fastbmm._config
import fastbmm.bench

try:
    import fastbmm.dask
except ImportError:  # dask is an optional extra; its docstrings need it
    DASK = None
else:
    DASK = fastbmm.dask

# Every public function's docstring must hold at least one example.
PUBLIC = {
    "fastbmm": fastbmm,
    "fastbmm.bmm": fastbmm.bmm,
    "fastbmm.baddbmm": fastbmm.baddbmm,
    "fastbmm.matmul": fastbmm.matmul,
    "fastbmm.show_config": fastbmm.show_config,
    "fastbmm.bench.parse_shape": fastbmm.bench.parse_shape,
}
if DASK is not None:
    PUBLIC.update({
        "fastbmm.dask": DASK,
        "fastbmm.dask.bmm": DASK.bmm,
        "fastbmm.dask.matmul": DASK.matmul,
    })
# set_num_threads / get_num_threads (and threads, where it exists): their
# examples, when they have some, are run too, without being required here.
OPTIONAL = {
    f"fastbmm.{name}": getattr(fastbmm, name)
    for name in ("set_num_threads", "get_num_threads", "threads")
    if hasattr(fastbmm, name)
}

PARSER = doctest.DocTestParser()


def _doctest(name, obj):
    # A fresh namespace per docstring; the examples import what they use.
    return PARSER.get_doctest(obj.__doc__ or "", {}, name, None, 0)


def _run(test):
    """Run one DocTest; return (failures, report text)."""
    lines = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS, verbose=False)
    previous = fastbmm.get_num_threads()
    try:
        runner.run(test, out=lines.append, clear_globs=True)
    finally:
        fastbmm.set_num_threads(previous)
    return runner.failures, "".join(lines)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_docstring_examples_run(name):
    test = _doctest(name, PUBLIC[name])
    assert test.examples, f"{name}'s docstring has no examples"
    failures, report = _run(test)
    assert failures == 0, report


def _python_module_doctests():
    # Everything else with examples in the pure-Python modules, as
    # `pytest --doctest-modules fastbmm` would collect it.
    modules = [fastbmm, fastbmm._config, fastbmm.bench] + ([DASK] if DASK is not None else [])
    finder = doctest.DocTestFinder(exclude_empty=True)
    public_docs = {obj.__doc__ for obj in PUBLIC.values()}
    return {
        test.name: test
        for module in modules
        for test in finder.find(module, module.__name__)
        if test.docstring not in public_docs and test.examples
    }


def test_other_docstring_examples_run():
    # none today beyond PUBLIC's; a new example anywhere is run from the start
    reports = [_run(test) for test in _python_module_doctests().values()]
    assert [report for failures, report in reports if failures] == []


@pytest.mark.parametrize("name", sorted(OPTIONAL))
def test_thread_function_examples_run(name):
    failures, report = _run(_doctest(name, OPTIONAL[name]))
    assert failures == 0, report


def test_public_functions_have_numpydoc_sections():
    for name in ("bmm", "baddbmm", "matmul", "show_config"):
        doc = getattr(fastbmm, name).__doc__
        for section in ("Parameters", "Returns", "Raises", "Examples"):
            assert f"\n    {section}\n    {'-' * len(section)}\n" in doc, (name, section)


def test_a_wrong_example_fails():
    # The harness itself: a docstring whose printed value is wrong must fail.
    wrong = '''
    >>> import numpy as np, fastbmm
    >>> fastbmm.bmm(np.ones((1, 1, 2)), np.ones((1, 2, 1)))
    array([[[3.]]])
    '''

    def documented():
        pass

    documented.__doc__ = wrong
    failures, report = _run(_doctest("wrong", documented))
    assert failures == 1
    assert "array([[[2.]]])" in report

