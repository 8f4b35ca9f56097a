"""show_config(): what this build of fastbmm is and what it runs on."""

import platform
import sys

from . import _runtime
from ._version import __version__


def show_config(mode="stdout"):
    """Print (or return) the build and run-time configuration.

    Parameters
    ----------
    mode : {"stdout", "dicts"}
        ``"stdout"`` prints a short report; ``"dicts"`` returns it as a dict
        with keys ``version``, ``openmp``, ``num_threads``, ``threads``,
        ``kernel``, ``available_kernels``, ``compiled_kernels``, ``block_sizes``,
        ``bf16_kernel``, ``int_kernel``, ``cpu``, ``python``. ``bf16_kernel`` says how the
        kernel in use computes bfloat16's larger products on this CPU:
        ``"amx"`` (AMX-BF16 tiles), ``"vdpbf16ps"`` (AVX512-BF16 pair dot
        products) or ``"widen"`` (widened to float32); ``int_kernel``, how it
        computes int8, uint8 and int16 ones: ``"vpdpwssd"`` (AVX512-VNNI or
        AVX-VNNI pairs of 16-bit products) or ``"widen"`` (32-bit lanes). ``threads`` says
        where the count comes from (``setting``: None for the default), the most threads one call starts
        (``max_per_call``), and whether this thread's parallel regions run on
        a helper thread because the process may have inherited a stale OpenMP
        pool through ``fork()`` (``regions_from_helper_thread``, with the reason).
        ``python`` is the Python version.

    Returns
    -------
    dict or None
        The configuration with ``mode="dicts"``; None with ``mode="stdout"``.

    Raises
    ------
    ValueError
        Another `mode`.

    Examples
    --------
    >>> import fastbmm
    >>> config = fastbmm.show_config(mode="dicts")
    >>> sorted(config)  # doctest: +NORMALIZE_WHITESPACE
    ['available_kernels', 'bf16_kernel', 'block_sizes', 'compiled_kernels', 'cpu',
     'int_kernel', 'kernel', 'num_threads', 'openmp', 'python', 'threads', 'version']
    >>> config["kernel"] in config["available_kernels"]
    True
    >>> fastbmm.show_config()  # doctest: +ELLIPSIS
    fastbmm ... (Python ...)
      OpenMP: ...
      threads: ...
      kernel in use: ...
    """
    info = {
        "version": __version__,
        "openmp": _runtime.openmp_enabled(),
        "num_threads": _runtime.get_num_threads(),
        "threads": _runtime.thread_state(),
        "kernel": _runtime.get_kernel(),
        "available_kernels": _runtime.available_kernels(),
        "compiled_kernels": _runtime.compiled_kernels(),
        "block_sizes": _runtime.block_sizes(),
        "bf16_kernel": _runtime.get_bf16_kernel(),
        "int_kernel": _runtime.get_int_kernel(),
        "cpu": {
            "machine": platform.machine(),
            "features": _runtime.cpu_features().split(),
        },
        "python": sys.version.split()[0],
    }
    if mode == "dicts":
        return info
    if mode != "stdout":
        raise ValueError(f"show_config(): mode must be 'stdout' or 'dicts', got {mode!r}")
    bs = info["block_sizes"]
    print(f"fastbmm {info['version']} (Python {info['python']})")
    print(f"  OpenMP:            {'yes' if info['openmp'] else 'no (serial build)'}")
    th = info["threads"]
    origin = f"set_num_threads({th['setting']})" if th["setting"] else "OpenMP's setting"
    print(f"  threads:           {info['num_threads']} ({origin}; default {th['default']}; "
          f"at most {th['max_per_call']} per call, fewer while other threads take CPUs)")
    if th["regions_from_helper_thread"]:
        print(f"  fork:              parallel regions run on a helper thread: "
              f"{th['helper_thread_reason']}")
    print(f"  kernel in use:     {info['kernel']}")
    testing = [k for k in info["available_kernels"] if k.endswith("_emulated")]
    runnable = [k for k in info["available_kernels"] if k not in testing]
    print(f"  runnable here:     {', '.join(runnable)}"
          + (f" (and {', '.join(testing)}, for the tests)" if testing else ""))
    print(f"  compiled in:       {', '.join(info['compiled_kernels'])}")
    print(f"  CPU:               {info['cpu']['machine']}: {' '.join(info['cpu']['features'])}")
    print(f"  f32 tile MRxNR:    {bs['f32']['MR']}x{bs['f32']['NR']}, "
          f"KC={bs['f32']['KC']} MC={bs['f32']['MC']} NC={bs['f32']['NC']}; "
          f"small path up to {bs['small_max']} (complex: {bs['small_max_complex']})")
    bf16 = {"amx": "AMX tiles (tdpbf16ps)", "vdpbf16ps": "pair dot products (vdpbf16ps)",
            "widen": "widened to float32"}[info["bf16_kernel"]]
    if info["bf16_kernel"] != "widen" and info["kernel"].endswith("_emulated"):
        bf16 += ", modelled in software"
    print(f"  bfloat16:          {bf16}")
    ints = {"vpdpwssd": "pairs of 16-bit products per lane (vpdpwssd)",
            "widen": "widened to 32-bit lanes"}[info["int_kernel"]]
    if info["int_kernel"] != "widen" and info["kernel"].endswith("_emulated"):
        ints += ", modelled in software"
    print(f"  int8/uint8/int16:  {ints}")
    return None
