"""The build's code generation: src/dtypes.def and src/isa.def into C.

setup.py calls :func:`generate` before ``cythonize``. It writes, under
``fastbmm/src/generated/`` (not under version control):

``kinds.h``
    Every accumulator family of dtypes.def, each opened by family_begin.h,
    followed by its dtypes' parameterised includes (kind_real.h or
    kind_complex.h), and closed by family_end.h. The kernels themselves are
    hand-written C in those files, with real line numbers; only the list of
    instances is generated.
``engine_<isa>.c``
    One per isa.def row to build: the row's name and block sizes as macros,
    then ``#include "engine_template.h"``. setup.py compiles each with that
    row's compiler flags alone.

The two .def files are also read by the C preprocessor (as X-macros), so
their rows are kept to one strict form: a row is one line starting with
``FBMM_FAMILY(``, ``FBMM_DTYPE(``, ``FBMM_ISA(``, ``FBMM_BLOCKS(`` or
``FBMM_SMALL(``, its fields separated by commas outside string literals.
"""

import os
import re
import shlex

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "fastbmm", "src")
GENERATED = os.path.join(SRC, "generated")

_ROW = re.compile(r"^(FBMM_[A-Z]+)\((.*?)\)\s*(/\*.*\*/)?\s*$")
_FIELD = re.compile(r'\s*("(?:[^"\\]|\\.)*"|[^,]+?)\s*(?:,|$)')


def read_rows(path):
    """The X-macro rows of a .def file: a list of (macro name, [fields])."""
    rows = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            match = _ROW.match(line.strip())
            if not match:
                continue
            body = match.group(2)
            fields = [m.group(1) for m in _FIELD.finditer(body) if m.group(1)]
            fields = [x[1:-1] if x.startswith('"') else x for x in fields]
            rows.append((match.group(1), fields, f"{os.path.basename(path)}:{number}"))
    return rows


# Bytes of each accumulator C type, for the preprocessor (transpose.h picks its
# shuffle table by lanes per vector, where sizeof cannot be used);
# family_begin.h asserts them against sizeof.
_ACC_BYTES = {"float": 4, "double": 8, "uint32_t": 4, "uint64_t": 8}


def dtype_registry(path=os.path.join(SRC, "dtypes.def")):
    """(families, dtypes) of dtypes.def, as lists of dicts in row order."""
    families, dtypes = [], []
    for macro, f, where in read_rows(path):
        if macro == "FBMM_FAMILY":
            name, acc_t, arithmetic = f
            if acc_t not in _ACC_BYTES:
                raise ValueError(f"{where}: accumulator type {acc_t}: add its size to _ACC_BYTES")
            families.append({"name": name, "acc_t": acc_t, "bytes": _ACC_BYTES[acc_t],
                             "is_int": arithmetic == "FBMM_WRAPPING", "where": where})
        elif macro == "FBMM_DTYPE":
            code, kind, family, fin, fout, flags = f[:6]
            flags = {x.strip() for x in flags.split("|")}
            dtypes.append({"code": code, "kind": kind, "family": family, "in": fin,
                           "out": fout, "complex": "FBMM_COMPLEX" in flags,
                           "staged": "FBMM_STAGED" in flags, "where": where})
    names = {fam["name"] for fam in families}
    for d in dtypes:
        if d["family"] not in names:
            raise ValueError(f"{d['where']}: dtype {d['code']} names unknown family {d['family']}")
    return families, dtypes


def isa_table(path=os.path.join(SRC, "isa.def")):
    """isa.def's variants, best first: dicts with name, arch, vbytes, flags,
    features, test_only, small_max and blocks ({family: (MR, KC, MC, NC)})."""
    isas, blocks, small = [], {}, {}
    for macro, f, where in read_rows(path):
        if macro == "FBMM_ISA":
            name, arch, vbytes, flags, features, role = f
            isas.append({"name": name, "arch": arch, "vbytes": int(vbytes),
                         "flags": shlex.split(flags), "features": features.split(),
                         "test_only": role == "FBMM_ISA_TEST_ONLY", "where": where})
        elif macro == "FBMM_BLOCKS":
            isa, family, *sizes = f
            blocks.setdefault(isa, {})[family] = tuple(int(x) for x in sizes)
        elif macro == "FBMM_SMALL":
            small[f[0]] = int(f[1])
    for isa in isas:
        isa["blocks"] = blocks.get(isa["name"], {})
        isa["small_max"] = small.get(isa["name"])
        if isa["small_max"] is None:
            raise ValueError(f"{isa['where']}: no FBMM_SMALL row for {isa['name']}")
        for mr, *_ in isa["blocks"].values():
            if mr not in (4, 6, 12):
                raise ValueError(f"isa.def: {isa['name']}: MR={mr}; gemm_template.h's edge "
                                 "cases cover MR in 4, 6, 12")
    return isas


HEADER = "/* {name} -- written by setup.py (tools/codegen.py) from {source}; do not edit. */\n"


def kinds_header(families, dtypes):
    out = [HEADER.format(name="src/generated/kinds.h", source="dtypes.def")]
    for fam in families:
        out += ["",
                f"/* ---- family {fam['name']}: accumulator {fam['acc_t']} ---- */",
                f"#define ACC {fam['name']}",
                f"#define ACC_T {fam['acc_t']}",
                f"#define ACC_BYTES {fam['bytes']}",
                f"#define ACC_IS_INT {int(fam['is_int'])}",
                '#include "family_begin.h"']
        for d in dtypes:
            if d["family"] != fam["name"]:
                continue
            out += ["",
                    f"/* {d['code']} ({d['where']}) */",
                    f"#define KIND {d['kind']}",
                    f"#define IN {d['in']}",
                    f"#define OUT {d['out']}",
                    f"#define STAGED {int(d['staged'])}",
                    '#include "kind_complex.h"' if d["complex"] else '#include "kind_real.h"']
        out += ["", '#include "family_end.h"']
    return "\n".join(out) + "\n"


def engine_source(isa, families):
    out = [HEADER.format(name=f"src/generated/engine_{isa['name']}.c", source="isa.def"),
           f"/* {isa['name']}: {' '.join(isa['flags']) or 'no ISA flags'} ({isa['where']}) */",
           f"#define FBMM_ENGINE_NAME {isa['name']}",
           f"#define FBMM_VBYTES {isa['vbytes']}",
           f"#define FBMM_SMALL_MAX {isa['small_max']}"]
    for fam in families:
        try:
            mr, kc, mc, nc = isa["blocks"][fam["name"]]
        except KeyError:
            raise ValueError(f"isa.def: no FBMM_BLOCKS row for {isa['name']}, {fam['name']}")
        out += [f"#define FBMM_MR_{fam['name']} {mr}", f"#define FBMM_KC_{fam['name']} {kc}",
                f"#define FBMM_MC_{fam['name']} {mc}", f"#define FBMM_NC_{fam['name']} {nc}"]
    out.append('#include "engine_template.h"')
    return "\n".join(out) + "\n"


def _write(path, text):
    """Write only what changed, so that an unchanged file does not force a rebuild."""
    try:
        with open(path) as f:
            if f.read() == text:
                return
    except OSError:
        pass
    with open(path, "w") as f:
        f.write(text)


def generate(isas_to_build):
    """Write kinds.h and engine_<isa>.c for the given isa.def rows; return the .c paths."""
    families, dtypes = dtype_registry()
    os.makedirs(GENERATED, exist_ok=True)
    _write(os.path.join(GENERATED, "kinds.h"), kinds_header(families, dtypes))
    paths = []
    for isa in isas_to_build:
        path = os.path.join(GENERATED, f"engine_{isa['name']}.c")
        _write(path, engine_source(isa, families))
        paths.append(path)
    return paths
