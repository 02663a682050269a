"""aiolwm2m: OMA LwM2M 1.1 server, bootstrap server, client and device simulator on asyncio."""

__version__ = "0.1.0"
