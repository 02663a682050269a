"""What every fuzz test asks of a decoder: a value or the layer's own error, quickly.

A decoder fed hostile bytes may answer with a value or raise the error type of its layer
(``LwM2MError``, ``CoapError``, ``RegistrationError``...), which the edges map to 4.xx; any
other exception (ValueError, KeyError, IndexError, RecursionError, OverflowError...) would
become a 5.00 with a traceback, and is a failure here. So is a call that takes long: inputs
go up to 64 KB, and a linear decoder takes milliseconds on that.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings

T = TypeVar("T")

#: Largest input the fuzzers build (the largest block-wise body the server takes is bigger,
#: but 64 KB is far past every size where a quadratic step would show).
MAX_INPUT = 64 * 1024
#: CPU seconds one decoder call may take on a 64 KB input; linear ones take ~50 ms.
CPU_BUDGET = 1.0

#: Shared by every fuzz test: 600 examples per test keep the whole directory near 35 s on
#: the 2-core CI machine (800 took 47 s there under load); ``FUZZ_EXAMPLES=20000`` runs a
#: longer hunt locally. No wall-time deadline: on a loaded CI machine a 64 KB example once
#: took over 5 s of wall time and passed on replay (a FlakyFailure); the CPU budget above is
#: the bound that measures the decoder. No example database, so CI leaves nothing behind.
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "600")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example, HealthCheck.filter_too_much],
)


def survives(allowed: type[BaseException] | tuple[type[BaseException], ...],
             fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """``fn(*args, **kwargs)``, or None when it raised one of ``allowed``; any other
    exception propagates (the test fails), and so does a call over the CPU budget."""
    # The decoder's own CPU: this thread's, with the cyclic collector held off for the
    # call (a full collection of the test process's heap once charged a parser that
    # takes a millisecond with 2 s; it runs after the call instead).
    enabled = gc.isenabled()
    gc.disable()
    started = time.thread_time()
    try:
        result: T | None = fn(*args, **kwargs)
    except allowed:
        result = None
    finally:
        spent = time.thread_time() - started
        if enabled:
            gc.enable()
    assert spent < CPU_BUDGET, f"{getattr(fn, '__name__', fn)} took {spent:.2f} s of CPU"
    return result
