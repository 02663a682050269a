"""aiolwm2m: OMA LwM2M 1.1 server, bootstrap server, client and device simulator on asyncio."""

from .compiled import enable as _enable_compiled_core

__version__ = "0.1.0"

# Before any submodule loads: the request path runs compiled when a fresh build exists.
_enable_compiled_core()
