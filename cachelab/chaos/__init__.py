"""Faults under steady load: the runner behind `make chaos` and the README's "Reliability" figures.

    faults.py   what goes wrong: Redis killed or paused (through `Stack`), upstream modes, latency, flapping
    relay.py    `FaultRelay`: the outage scenario's admin calls start and lift any fault at its phase boundaries
    plan.py     the plans (quick, full), the stack every fault runs against, the faults by name (`make_fault`)
    run.py      one outage-scenario run with a fault in its outage phase (`run_fault`)
    figures.py  one run's figures (`figures`) and the Markdown table (`table`)

The names below are the package's interface (`from cachelab import chaos; chaos.make_fault(...)`).
"""

from cachelab.chaos.faults import (
    Fault,
    FaultError,
    Flapping,
    NoFault,
    RedisKill,
    RedisPause,
    StubFault,
    upstream_mode,
    upstream_slow,
)
from cachelab.chaos.figures import RECOVERY_TOLERANCE, Figures, figures, recovery_seconds, table
from cachelab.chaos.plan import FAULT_NAMES, PROFILES, Plan, make_fault, stack_config
from cachelab.chaos.relay import FaultRelay, RelayLog, relaying
from cachelab.chaos.run import reset, run_fault

__all__ = [
    "FAULT_NAMES",
    "PROFILES",
    "RECOVERY_TOLERANCE",
    "Fault",
    "FaultError",
    "FaultRelay",
    "Figures",
    "Flapping",
    "NoFault",
    "Plan",
    "RedisKill",
    "RedisPause",
    "RelayLog",
    "StubFault",
    "figures",
    "make_fault",
    "recovery_seconds",
    "relaying",
    "reset",
    "run_fault",
    "stack_config",
    "table",
    "upstream_mode",
    "upstream_slow",
]
