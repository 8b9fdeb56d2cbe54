"""One adapter per tool. TOOLS maps the name used on the command line to its class."""

from .base import Profile, Service, Unavailable
from .horust import Horust
from .pm2 import PM2
from .runit import Runit
from .s6 import S6
from .shell import ShellFloor
from .steward import Steward, StewardBaseline
from .supervisord import Supervisord

TOOLS = {
    "steward": Steward,
    "steward-base": StewardBaseline,
    "supervisord": Supervisord,
    "pm2": PM2,
    "s6": S6,
    "runit": Runit,
    "horust": Horust,
}
PEERS = [n for n in TOOLS if not n.startswith("steward")]

__all__ = ["TOOLS", "PEERS", "Profile", "Service", "Unavailable", "ShellFloor"]
