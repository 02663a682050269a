"""A SCEF emulator serving the T8 NIDD API (3GPP TS 29.122) over emulated UEs: the peer
the server's NIDD transport is tested against, and what ``aiolwm2m scef-emulator`` runs."""

from .runner import ScefEmulator
from .scef import Scef, ScefError, ScefLimits
from .ues import UeBehaviour

__all__ = ["Scef", "ScefEmulator", "ScefError", "ScefLimits", "UeBehaviour"]
