"""Devices and processes: which device to use, and the process group under ``torchrun`` (DDP)."""

from __future__ import annotations

import io
import os
import re

import torch
import torch.distributed as dist


def pick_device(device: str | None = "auto") -> torch.device:
    """``cuda`` when available for ``auto``/``None``, else the device named: ``cpu``, ``cuda`` or
    ``cuda:N`` (a one-line ValueError for any other name, or for a GPU that is not there)."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if not re.fullmatch(r"cuda(:\d+)?", str(device)):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, not {device!r}")
    index = int(device.partition(":")[2] or 0)
    if not torch.cuda.is_available() or index >= torch.cuda.device_count():
        visible = torch.cuda.device_count()
        raise ValueError(f"device {device}: no such CUDA GPU here ({visible} visible); use cpu or auto")
    return torch.device(device)


def setup_distributed(device: str = "auto") -> tuple[int, int, torch.device]:
    """(rank, world size, device) for ``train.device`` = ``device``. Under ``torchrun`` (WORLD_SIZE > 1)
    joins the process group: NCCL with one GPU per process when CUDA is there, else gloo on the CPU."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1, pick_device(device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda:"):  # each process takes its local rank's GPU
        raise ValueError(
            f"train.device={device} names one GPU, but under torchrun each process takes the GPU of its "
            "local rank: use cuda (or auto), or cpu"
        )
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device=cuda but no CUDA GPU is available: use cpu or auto")
    use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    if use_cuda and local_rank >= torch.cuda.device_count():
        raise RuntimeError(
            f"process {local_rank} of this machine needs GPU cuda:{local_rank}, but {torch.cuda.device_count()} "
            "GPU(s) are visible: start at most one process per GPU, or set train.device=cpu"
        )
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return dist.get_rank(), world_size, torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")


def gather_tensors(value: object, world_size: int) -> list:
    """Every rank's ``value`` (tensors and plain values), in rank order, sent as bytes: tensors do
    not pickle across gloo."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    gathered: list = [None] * world_size
    dist.all_gather_object(gathered, buffer.getvalue())
    return [torch.load(io.BytesIO(b), weights_only=True) for b in gathered]


def broadcast_values(values: list, world_size: int) -> list:
    """Rank 0's ``values`` on every rank (unchanged with one process)."""
    if world_size > 1:
        dist.broadcast_object_list(values, src=0)
    return values


def sum_over_ranks(value: torch.Tensor, world_size: int) -> torch.Tensor:
    """``value`` summed over all ranks, in place (unchanged with one process)."""
    if world_size > 1:
        dist.all_reduce(value)
    return value


def wait_for_all(world_size: int) -> None:
    """A barrier: every rank waits here for the others."""
    if world_size > 1:
        dist.barrier()
