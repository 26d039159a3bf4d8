"""Keeping freed host memory: memory freed by one pass is reused by the next without page faults."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from workbench.training.host_memory import keep_freed_memory

# 24 tensors of 16 MiB are filled, freed, then filled again; prints the page faults of the second round.
CHURN = """
import resource, sys, torch
from workbench.training.host_memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def churn():
    blocks = [torch.ones(4 << 20) for _ in range(24)]
    del blocks
churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
PAGES = 24 * (16 << 20) // 4096

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt thresholds are glibc's")


def faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


@glibc
def test_memory_freed_by_one_pass_is_reused_by_the_next_without_faults():
    assert faults("default") > PAGES // 2  # glibc's defaults return the freed heap top: every page faults again
    assert faults("keep") < PAGES // 20


@glibc
def test_keeping_freed_memory_is_applied_and_can_be_repeated():
    assert keep_freed_memory() and keep_freed_memory()
