"""The device an audit runs a model on, and a seeded RNG that hands the caller its own state back."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import torch

__all__ = ["isolated_rng", "pick_device"]


def pick_device(requested: str) -> tuple[torch.device, str]:
    """The device to probe on and a note when the request could not be honoured."""
    has_cuda = torch.cuda.is_available()
    if requested == "cpu" or (requested == "auto" and not has_cuda):
        return torch.device("cpu"), ""
    if not has_cuda:
        return torch.device(
            "cpu"
        ), "device 'cuda' was requested but CUDA is not available here; probed on cpu"
    return torch.device("cuda", torch.cuda.current_device()), ""


@contextlib.contextmanager
def isolated_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch, numpy and random for the probe and give the caller its RNG state back afterwards."""
    import numpy as np

    saved_torch = torch.get_rng_state()
    saved_numpy = np.random.get_state()
    saved_random = random.getstate()
    saved_cuda = torch.cuda.get_rng_state_all() if device.type == "cuda" else None
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    try:
        yield
    finally:
        torch.set_rng_state(saved_torch)
        np.random.set_state(saved_numpy)
        random.setstate(saved_random)
        if saved_cuda is not None:
            torch.cuda.set_rng_state_all(saved_cuda)
