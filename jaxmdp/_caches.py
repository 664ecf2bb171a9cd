"""`jaxmdp.clear_caches()`: release the compiled programs and cached layouts (issue 16 #10).

Every new shape (states, actions, batch size, dtype, solver's static options) compiles new
programs, and JAX keeps them for the life of the process: 200 new shapes grew RSS from
172 MB to 1.9 GB (8.7 MB per shape; measured again here: 10.5 MB per shape). A long-lived
service that solves ever-new shapes calls this between jobs (as `sweep` may between models).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys

import jax

# Module-level caches of the library that hold arrays, by attribute name (found in whatever
# module of the package defines them, so moving code between modules keeps them cleared).
_MAPPINGS = ("_PREPARED",)


def _library_caches():
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "jaxmdp" or name.startswith("jaxmdp.")):
            continue
        for attr, value in list(vars(module).items()):
            if attr in _MAPPINGS and hasattr(value, "clear"):
                yield value.clear
            elif callable(getattr(value, "cache_clear", None)) and getattr(
                value, "__module__", ""
            ).startswith("jaxmdp"):
                yield value.cache_clear  # functools.cache / lru_cache of jitted programs


def _trim_heap() -> None:
    """Give freed heap pages back to the OS (glibc's `malloc_trim`; a no-op elsewhere)."""
    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def clear_caches() -> None:
    """Release every compiled program and cached layout jaxmdp and JAX hold.

    Clears JAX's compilation and tracing caches (`jax.clear_caches()`: for every jitted
    function in the process, not only jaxmdp's), jaxmdp's own caches (prepared layouts of
    shared transitions, per-configuration jitted programs), then returns the freed memory to
    the operating system where the C library allows (glibc). The next call of any shape
    compiles again (seconds), so call it between jobs of different shapes, not inside loops
    over one shape. Results are unaffected.

    Measured (`benchmarks/results/reliability.md`): solving 60 new shapes grew RSS by 10.5
    MB per shape; with `clear_caches()` after each, by 0.1-0.5 MB per shape.
    """
    for clear in _library_caches():
        clear()
    jax.clear_caches()
    gc.collect()
    _trim_heap()
