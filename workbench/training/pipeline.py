"""The training data of a run: its manifest and protocol, decoded frames, the per-step domain batches and how
each step's batch reaches the device (decoding, augmentation, normalisation, prefetching workers).

Batches depend only on ``(seed, step)``: the sampler and the augmentation draw from generators seeded by
them, so an interrupted run that resumes at a step sees the batches an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch.utils.data import DataLoader, Sampler

from workbench.config import ConfigError
from workbench.data.augment import Augment, normalize
from workbench.data.images import FrameDataset, collate_frames
from workbench.data.manifest import read_manifests
from workbench.data.protocol import Protocol, evaluation_groups, training_real_pool
from workbench.data.sampling import DomainBatchSampler, step_generator
from workbench.training.distributed import DistContext


def synthetic_manifest(settings: dict[str, Any]) -> Path:
    """Generate (or reuse) the embedded benchmark described by ``data.synthetic``; return its manifest.

    Each benchmark gets its own folder under ``cache_dir``: ``v<videos>-f<frames>-<size>px-seed<seed>``,
    plus a hash of any other generator option (split fractions, target videos, forgery strengths),
    so two configs never rebuild, or read, each other's images.
    """
    from workbench.data.synthetic import generate_benchmark

    options = dict(settings)
    cache_dir = Path(options.pop("cache_dir"))
    videos = options.pop("videos_per_domain")
    frames = options.pop("frames_per_video")
    tag = f"v{videos}-f{frames}-{options.get('size', 64)}px-seed{options.get('seed', 0)}"
    others = {key: value for key, value in options.items() if key not in ("size", "seed", "workers")}
    if others:
        tag += "-" + hashlib.sha1(json.dumps(others, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return generate_benchmark(cache_dir / tag, n_videos_per_domain=videos, frames_per_video=frames, **options)


def training_protocol(
    config: dict[str, Any], manifest: pd.DataFrame, world_size: int = 1
) -> tuple[Protocol, dict[str, Any]]:
    """The protocol and evaluation groups a config trains (or evaluates) with on ``manifest``, after the
    checks that need no model: domain names and roles, non-empty groups, and a batch the source domains
    (and processes) divide. Raises naming what is wrong."""
    data = config["data"]
    protocol = Protocol(
        source_domains=tuple(data["source_domains"]),
        target_domains=tuple(data["target_domains"] or ()),
        lodo_domain=data["lodo_domain"],
    )
    groups = evaluation_groups(manifest, protocol)
    k = len(protocol.source_domains)
    if data["batch_size"] % (k * world_size):
        raise ConfigError(
            f"data.batch_size={data['batch_size']} must be divisible by the {k} source domains "
            f"times the {world_size} process(es)"
        )
    return protocol, groups


class TrainingData:
    """One config's data: ``manifest`` (with its dataset ``roots``), ``protocol``, evaluation ``groups``, the
    decoded frames (``dataset``), the per-step domain ``sampler`` and the augmentation.

    ``normalization`` is the model's input mean and std; ``dist`` shards each step's rows between processes.
    """

    def __init__(
        self, config: dict[str, Any], device: torch.device, dist: DistContext, normalization: tuple[Any, Any]
    ) -> None:
        data = config["data"]
        self.device, self.dist, self.normalization = device, dist, normalization
        self.seed, self.workers = int(config["train"]["seed"]), int(data["workers"])
        self.manifest, self.roots = read_manifests(
            data["manifest"] or synthetic_manifest(data["synthetic"]), data["root"]
        )
        self.protocol, self.groups = training_protocol(config, self.manifest, dist.world_size)
        self.dataset = FrameDataset(self.manifest, self.roots, data["image_size"], cache=data["cache_images"])
        k = len(self.protocol.source_domains)
        self.sampler = DomainBatchSampler(
            self.manifest,
            self.protocol.source_domains,
            training_real_pool(self.manifest, self.protocol),
            batch_size_per_domain=data["batch_size"] // k,
            real_fraction=data["real_fraction"],
            paired=data["paired_reals"],
            seed=self.seed,
        )
        self.augment = Augment() if data["augment"] else None

    def step_rows(self, step: int) -> list[torch.Tensor]:
        """This process's manifest rows of ``step``, one tensor per source domain.

        Under torchrun every process draws the same global batch and keeps an interleaved shard of
        each domain's rows, so fakes and reals stay balanced on every rank.
        """
        return [self.dist.share(rows) for rows in self.sampler.indices(step)]

    def prepare_batches(
        self, images: torch.Tensor, labels: torch.Tensor, step: int, sizes: list[int]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """uint8 images of one step → augmented, normalised per-domain ``(x_k, y_k)`` on the device.

        On CUDA the images are copied from pinned memory: a copy from pageable memory would first wait
        for the update still running on the device, undoing the overlap the training loop arranges.
        """
        if self.device.type == "cuda" and not images.is_pinned():
            images, labels = images.pin_memory(), labels.pin_memory()
        x = images.to(self.device, non_blocking=True).float() / 255.0
        if self.augment is not None:
            generator = step_generator(self.seed, step, stream=1)
            x = self.augment(x, generator, *self.shard_positions(sizes))
        x = normalize(x, *self.normalization)
        y = labels.to(self.device, non_blocking=True)
        return list(zip(x.split(sizes), y.split(sizes)))

    def shard_positions(self, sizes: list[int]) -> tuple[torch.Tensor, int] | tuple[()]:
        """Where this process's images sit in the global batch (for the augmentation draws), and its size.

        Empty in a single process. ``sizes`` are this process's per-domain shard sizes (:meth:`step_rows`);
        the positions are the same share of the global batch's places as the rows.
        """
        world = self.dist.world_size
        if world == 1:
            return ()
        offsets = [0, *itertools.accumulate(size * world for size in sizes)]
        positions = torch.cat([self.dist.share(torch.arange(start, end)) for start, end in zip(offsets, offsets[1:])])
        return positions, offsets[-1]

    def domain_batches(self, step: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The per-domain training batches of ``step`` (sampled, augmented, normalised, on device)."""
        rows = self.step_rows(step)
        images, labels = self.dataset.batch(torch.cat(rows))
        return self.prepare_batches(images, labels, step, [len(r) for r in rows])

    def iterate_steps(self, first: int, last: int) -> Iterator[tuple[int, list[tuple[torch.Tensor, torch.Tensor]]]]:
        """``(step, domain batches)`` for steps ``first..last``.

        With ``data.workers > 0`` images are decoded ahead of time by DataLoader workers fed with each
        step's (deterministic) rows, so a GPU is not kept waiting; the batches are identical either way.
        """
        if self.workers == 0:
            for step in range(first, last + 1):
                yield step, self.domain_batches(step)
            return
        sizes = [len(r) for r in self.step_rows(first)]
        loader = DataLoader(
            self.dataset,
            batch_sampler=StepRows(self, first, last),
            num_workers=self.workers,
            collate_fn=collate_frames,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=4,
        )
        for step, (images, labels, _) in zip(range(first, last + 1), loader):
            yield step, self.prepare_batches(images, labels, step, sizes)


class StepRows(Sampler):
    """Batch sampler of a DataLoader: the flat manifest rows of each training step, in order."""

    def __init__(self, data: TrainingData, first: int, last: int) -> None:
        self.data, self.steps = data, range(first, last + 1)

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[list[int]]:
        for step in self.steps:
            yield torch.cat(self.data.step_rows(step)).tolist()


def steps_for_epochs(sampler: DomainBatchSampler, epochs: float) -> int:
    """Steps that show every training fake ``epochs`` times on average (the trainer's epoch definition)."""
    if epochs <= 0:
        raise ValueError(f"epochs={epochs} must be positive")
    fakes_per_step = sampler.n_fake * len(sampler.fake_pools)
    return max(1, math.ceil(epochs * sampler.fakes_per_epoch() / fakes_per_step))
