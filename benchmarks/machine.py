"""What the benchmarks print about the machine they ran on."""

import os
import platform


def cpu_name() -> str:
    """The CPU's model name and core count, e.g. ``Intel(R) Xeon(R) Processor, 2 cores``.

    ``platform.processor()`` is empty on most Linux systems, and timings differ by CPU model more
    than by architecture, so read the model from ``/proc/cpuinfo`` where there is one.
    """
    name = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            name = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    except OSError:
        pass
    return f"{name or platform.processor() or platform.machine()}, {os.cpu_count()} cores"
