"""Keep freed host memory mapped in the process (glibc), so that update passes do not fault it back in.

An update of several passes (RoGA's 2K, SAM's two) frees each pass's activations and autograd's
gradients before the next. glibc returns the free top of its heap to the kernel once that exceeds its
trim threshold, and serves allocations above a threshold that it adjusts at run time with fresh
mappings; either way the next pass touches new pages, and the kernel faults each one in and zero-fills
it (system time, on every pass). Fixing the two thresholds — allocations up to 32 MiB from the heap
(the ceiling glibc's own adjustment stops at) and no trimming below 1 GiB of free top — keeps that
memory mapped from pass to pass. The setting is process-wide and idempotent; without glibc (macOS,
musl) nothing changes.
"""

from __future__ import annotations

import ctypes
import platform

MMAP_THRESHOLD = 32 << 20  # bytes: larger allocations get their own mapping (flat whole-model vectors)
TRIM_THRESHOLD = 1 << 30  # bytes of free heap top kept before any is returned to the kernel
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, <malloc.h>


def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds to :data:`MMAP_THRESHOLD` and :data:`TRIM_THRESHOLD`; True when
    applied, False where the C library is not glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL("libc.so.6")
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
