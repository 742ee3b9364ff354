"""What CPU this is: its name and the instruction-set features that decide integer speed.

Machines of one kind differ (some have AVX-512 VNNI and AMX, some only AVX2), and INT8 kernels
are 2-4x faster with VNNI/AMX than without, so reports and benchmarks record the features next
to every latency figure.
"""

from __future__ import annotations

import platform
from pathlib import Path

#: The features that change how fast onnxruntime's integer and float kernels run, in order.
SPEED_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16")
#: Features with integer dot-product instructions (int8 GEMMs use them).
VNNI_FEATURES = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


def _cpuinfo_field(key: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags() -> set[str]:
    """Every flag the kernel reports for the first CPU (empty where /proc/cpuinfo is absent)."""
    return set((_cpuinfo_field("flags") or "").split())


def cpu_name() -> str:
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def speed_features() -> list[str]:
    """The SPEED_FEATURES this CPU has, e.g. ["avx2", "avx512f", "avx512_vnni"]."""
    flags = cpu_flags()
    return [feature for feature in SPEED_FEATURES if feature in flags]
