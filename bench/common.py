"""Shared bits of the benchmark scripts (run as ``python bench/<name>.py``, so this folder is on sys.path)."""

import platform

import torch


def machine_info() -> dict:
    """Where a benchmark ran: platform, CPU, torch version and thread count."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
