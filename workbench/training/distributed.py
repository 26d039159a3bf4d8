"""Multi-process (``torchrun``) data-parallel training at the algorithm level.

API (what the trainer calls)::

    ctx = init_distributed()                  # reads RANK / WORLD_SIZE / LOCAL_RANK; no-op when absent
    model = ctx.prepare_model(model, sync_batchnorm=False)   # to ctx.device, same initial weights everywhere
    algorithm = build_algorithm(name, model, hparams)
    ctx.attach(algorithm)                     # G is averaged across ranks once per step
    ...
    stats = algorithm.update(ctx.shard(global_batches))      # or per-rank batches from per-rank samplers
    stats = ctx.mean_stats(stats)             # optional: log rank-averaged statistics
    ctx.close()

Semantics (why not ``DistributedDataParallel``): DDP all-reduces gradients from hooks on ``backward``.
A sharpness-aware step makes several passes per update (RoGA: 2K), and only the final direction G
may be communicated; ``torch.autograd.grad`` does not fire DDP's hooks anyway. So every pass stays
local, exactly like DDP under ``no_sync()`` (forward included: there is no buffer broadcast), and
:meth:`DistContext.all_reduce_mean_` averages the flat G once, right before the base optimizer step
(``Algorithm.step_with``). Consequences:

- ERM: the mean of the per-rank gradients of equal-sized shards is the gradient of the union batch,
  so a distributed ERM step equals the single-process step on the union batch (without BN, or with
  SyncBatchNorm up to its statistics).
- SAM / SAGM / RoGA: every rank ascends with its own shard's gradients (as in distributed SAM), so the
  step uses the average of the per-rank directions G_r. With BN, batch statistics are per rank unless
  ``sync_batchnorm=True``; then every forward pass (clean and perturbed) also all-reduces BN
  statistics, and RoGA runs its per-domain passes sequentially.
- BN running statistics evolve per rank; rank 0's are the ones to checkpoint.

The reducer is ``graph_safe`` (the all-reduce may be captured in the CUDA graph of a step) only for
NCCL without SyncBatchNorm; otherwise updates run eagerly.

Launch: ``torchrun --nproc_per_node=N -m workbench train --config CONFIG`` (one process per GPU).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from workbench.algorithms.batches import DomainBatches


@dataclass
class DistContext:
    """This process's place in the job, and the few collectives training needs."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None
    sync_batchnorm: bool = False

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes records and checkpoints."""
        return self.rank == 0

    @property
    def graph_safe(self) -> bool:
        """Whether the update's all-reduce may be captured in a CUDA graph (NCCL, no SyncBatchNorm)."""
        return self.backend == "nccl" and not self.sync_batchnorm

    def all_reduce_mean_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Average ``tensor`` across ranks in place (identity in a single process)."""
        if self.is_distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
            tensor.div_(self.world_size)
        return tensor

    def prepare_model(self, model: nn.Module, sync_batchnorm: bool = False) -> nn.Module:
        """Move ``model`` to this rank's device and give every rank rank 0's parameters and buffers.

        ``sync_batchnorm=True`` converts BN layers to ``SyncBatchNorm`` (batch statistics over all ranks).
        """
        if sync_batchnorm and self.is_distributed:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            self.sync_batchnorm = True
        model = model.to(self.device)
        self.broadcast_module(model)
        return model

    @torch.no_grad()
    def broadcast_module(self, module: nn.Module) -> None:
        """Overwrite every parameter and buffer with rank 0's values."""
        if not self.is_distributed:
            return
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)

    def attach(self, algorithm: nn.Module) -> None:
        """Make ``algorithm`` average its update direction across ranks (no-op in a single process)."""
        if self.is_distributed:
            algorithm.distributed = self

    def share(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's interleaved share of one batch: items ``rank, rank + world_size, ...`` (all in one process).

        The one sharding rule: the trainer's rows, their augmentation draws and :meth:`shard` all use it.
        """
        return batch[self.rank :: self.world_size]

    def shard(self, minibatches: DomainBatches) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's interleaved share of every domain batch: rows ``rank, rank + world_size, ...``.

        Interleaving, as the trainer does with its rows, keeps the classes balanced on every rank: a domain
        batch of fakes then reals gives each rank both. Each batch must split evenly across ranks.
        """
        if not self.is_distributed:
            return list(minibatches)
        shards = []
        for k, (x, y) in enumerate(minibatches):
            n = x.shape[0]
            if n % self.world_size or y.shape[0] != n:
                raise ValueError(
                    f"domain batch {k} has {n} images and {y.shape[0]} labels; both must be equal and "
                    f"divisible by the world size {self.world_size}"
                )
            shards.append((self.share(x), self.share(y)))
        return shards

    def mean_stats(self, stats: Mapping[str, float]) -> dict[str, float]:
        """Average scalar statistics across ranks (one all-reduce)."""
        if not self.is_distributed or not stats:
            return dict(stats)
        values = torch.tensor(list(stats.values()), dtype=torch.float64, device=self.device)
        self.all_reduce_mean_(values)
        return dict(zip(stats.keys(), values.tolist()))

    def barrier(self) -> None:
        if self.is_distributed:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group (safe to call in a single process)."""
        if self.is_distributed and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(backend: str | None = None) -> DistContext:
    """Join the ``torchrun`` job described by RANK / WORLD_SIZE / LOCAL_RANK, or return a single-process context.

    ``backend`` defaults to NCCL when CUDA is available and gloo otherwise. Each process uses GPU
    ``LOCAL_RANK`` when CUDA is available.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext(device=torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise RuntimeError(
                f"WORLD_SIZE={world_size} but environment variable {name} is not set; launch with torchrun"
            )
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    backend = backend or ("nccl" if device.type == "cuda" else "gloo")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device, backend=backend)
