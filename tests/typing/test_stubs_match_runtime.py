"""The hand-written stubs (fastbmm/*.pyi) against the running package.

mypy trusts the stubs; nothing else ties them to the compiled functions. These
tests compare every stubbed function's parameters (names, kinds, defaults) with
``inspect.signature`` of the real one, the error classes' bases, and ``__all__``,
so a renamed or added keyword fails here rather than in a user's type checker.
"""

import ast
import importlib
import importlib.util
import inspect
from pathlib import Path

import pytest

import fastbmm

STUB_KINDS = {
    "posonlyargs": inspect.Parameter.POSITIONAL_ONLY,
    "args": inspect.Parameter.POSITIONAL_OR_KEYWORD,
    "kwonlyargs": inspect.Parameter.KEYWORD_ONLY,
}
STUBBED_MODULES = ["fastbmm", "fastbmm.dask"]


def _stub_tree(module_name):
    # found, not imported: fastbmm.dask raises ImportError without Dask
    stub = Path(importlib.util.find_spec(module_name).origin).with_suffix(".pyi")
    return ast.parse(stub.read_text(encoding="utf-8"), filename=str(stub))


def _callables(module_name):
    """(name, FunctionDef) of each stubbed function, and of each class's ``__init__``."""
    for node in _stub_tree(module_name).body:
        if isinstance(node, ast.FunctionDef):
            yield node.name, node, False
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    yield node.name, item, True


def _stub_functions(module_name):
    """{name: [(parameter, kind, default), ...]} from the first definition of each name.

    Overloads of one function share their parameter names, kinds and defaults
    (they differ in types only); a ``None`` default is written as ``= None``.
    A class's are its ``__init__``'s without ``self``, as ``inspect.signature``
    of the class gives them.
    """
    functions = {}
    for name, node, is_init in _callables(module_name):
        if name not in functions:
            args = node.args
            positional = args.posonlyargs + args.args
            if is_init:
                positional = positional[1:]
            defaults = [inspect.Parameter.empty] * (len(positional) - len(args.defaults)) + [
                ast.literal_eval(d) for d in args.defaults
            ]
            kw_defaults = [
                inspect.Parameter.empty if d is None else ast.literal_eval(d) for d in args.kw_defaults
            ]
            params = [
                (a.arg, STUB_KINDS["posonlyargs" if a in args.posonlyargs else "args"], d)
                for a, d in zip(positional, defaults)
            ]
            params += [
                (a.arg, STUB_KINDS["kwonlyargs"], d) for a, d in zip(args.kwonlyargs, kw_defaults)
            ]
            functions[name] = params
    return functions


def _stub_cases():
    return [
        pytest.param(module_name, name, params, id=f"{module_name}.{name}")
        for module_name in STUBBED_MODULES
        for name, params in _stub_functions(module_name).items()
    ]


@pytest.mark.parametrize("module_name, name, stub_params", _stub_cases())
def test_stub_signature_matches_runtime(module_name, name, stub_params):
    module = importlib.import_module(module_name)
    assert hasattr(module, name), f"{module_name}.{name} is in the stub but not in the package"
    runtime = [
        (p.name, p.kind, p.default)
        for p in inspect.signature(getattr(module, name)).parameters.values()
    ]
    assert runtime == stub_params


def test_every_public_function_is_stubbed():
    for module_name in STUBBED_MODULES:
        module = importlib.import_module(module_name)
        stubbed = set(_stub_functions(module_name))
        public_functions = {
            name for name in module.__all__ if callable(getattr(module, name))
            and not inspect.isclass(getattr(module, name))
        }
        assert public_functions <= stubbed, module_name


def test_stub_all_matches_runtime():
    for module_name in STUBBED_MODULES:
        stub_all = next(
            ast.literal_eval(node.value)
            for node in _stub_tree(module_name).body
            if isinstance(node, ast.Assign) and node.targets[0].id == "__all__"
        )
        assert sorted(stub_all) == sorted(importlib.import_module(module_name).__all__)


def test_stub_error_classes_have_the_runtime_bases():
    classes = {
        node.name: [base.id for base in node.bases]
        for node in _stub_tree("fastbmm").body
        if isinstance(node, ast.ClassDef) and node.name.endswith("Error")
    }
    assert set(classes) == {"ShapeError", "DtypeError", "UnsupportedDtypeError"}
    for name, bases in classes.items():
        assert [base.__name__ for base in getattr(fastbmm, name).__bases__] == bases


def test_stubs_and_marker_ship_with_the_package():
    package = Path(fastbmm.__file__).parent
    for name in ("py.typed", "__init__.pyi", "dask.pyi"):
        assert (package / name).is_file(), name
