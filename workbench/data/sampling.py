"""Domain-balanced training batches: one ``(x_k, y_k)`` per source domain per step (docs/method.md).

Domain k's batch holds fakes of manipulation k and real faces from the shared real pool (half and
half by default). Reals are drawn at random from the pool, or, with ``paired=True``, from the real
video each fake was made from (manifest column ``source_video``).

Indices are row *positions* (for ``manifest.iloc``), whatever the manifest's index; they equal the
row labels of :func:`workbench.data.manifest.read_manifests`' output, which has a 0..n-1 index.

The sampler is *stateless*: the indices of step ``s`` come from a generator seeded with
``(seed, s)``, so resuming at step ``s`` reproduces an uninterrupted run exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from workbench.data.manifest import ManifestError


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """A CPU generator determined by ``(seed, step, stream)`` alone."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 7 + stream)


class DomainBatchSampler:
    """Row positions of each step's per-domain batches in a manifest (train split).

    ``real_pool`` are the positions of the real training frames shared by all domains. Every domain
    batch holds at least one fake: ``round(batch_size_per_domain * real_fraction)`` reals, the rest fakes.
    """

    def __init__(
        self,
        manifest: pd.DataFrame,
        source_domains: Sequence[str],
        real_pool: np.ndarray,
        batch_size_per_domain: int,
        real_fraction: float = 0.5,
        paired: bool = False,
        seed: int = 0,
    ) -> None:
        if batch_size_per_domain < 2:
            raise ValueError(f"batch_size_per_domain={batch_size_per_domain} must be at least 2")
        if not 0.0 <= real_fraction < 1.0:
            raise ValueError(f"real_fraction={real_fraction} must be in [0, 1)")
        self.source_domains = list(source_domains)
        self.seed = seed
        self.n_real = int(round(batch_size_per_domain * real_fraction))
        self.n_fake = batch_size_per_domain - self.n_real
        if self.n_fake < 1:
            raise ValueError(
                f"batch_size_per_domain={batch_size_per_domain} with real_fraction={real_fraction} leaves no fake "
                f"in a domain batch ({self.n_real} reals); lower real_fraction or raise batch_size_per_domain"
            )
        manifest = manifest.reset_index(drop=True)  # labels = positions, so .at and .index agree with iloc
        train = manifest["split"] == "train"
        self.fake_pools = []
        for domain in self.source_domains:
            rows = np.flatnonzero(train & (manifest["domain"] == domain) & (manifest["label"] == 1))
            if len(rows) == 0:
                raise ManifestError(f"source domain {domain!r} has no fake frames in the train split")
            self.fake_pools.append(torch.as_tensor(rows))
        if self.n_real and len(real_pool) == 0:
            raise ManifestError("the real pool (real frames in the train split of the source datasets) is empty")
        self.real_pool = torch.as_tensor(np.asarray(real_pool))
        self.paired = paired
        if paired:
            self._pair_reals(manifest)

    def _pair_reals(self, manifest: pd.DataFrame) -> None:
        if "source_video" not in manifest.columns:
            raise ManifestError("paired real sampling needs a 'source_video' column in the manifest")
        reals = manifest.iloc[self.real_pool.numpy()]
        frames_by_video = {
            video: torch.as_tensor(rows.index.to_numpy().copy()) for video, rows in reals.groupby("video")
        }
        self.paired_frames = []
        for domain, pool in zip(self.source_domains, self.fake_pools):
            per_fake = []
            for row in pool.tolist():
                source = manifest.at[row, "source_video"]
                if pd.isna(source) or str(source) not in frames_by_video:
                    raise ManifestError(
                        f"fake frame {manifest.at[row, 'path']!r} (domain {domain!r}) has source_video "
                        f"{source!r}, which has no real frames in the train split"
                    )
                per_fake.append(frames_by_video[str(source)])
            self.paired_frames.append(per_fake)

    @staticmethod
    def _draw(pool: torch.Tensor, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` rows of ``pool`` (without replacement while the pool allows) and their positions."""
        if n <= len(pool):
            positions = torch.randperm(len(pool), generator=generator)[:n]
        else:
            positions = torch.randint(len(pool), (n,), generator=generator)
        return pool[positions], positions

    def indices(self, step: int) -> list[torch.Tensor]:
        """One tensor of manifest row positions per source domain: fakes first, then reals."""
        generator = step_generator(self.seed, step)
        batches = []
        for k, pool in enumerate(self.fake_pools):
            fakes, positions = self._draw(pool, self.n_fake, generator)
            if self.n_real == 0:
                reals = torch.empty(0, dtype=torch.long)
            elif self.paired:
                reals = self._paired_reals(k, positions, generator)
            else:
                reals, _ = self._draw(self.real_pool, self.n_real, generator)
            batches.append(torch.cat([fakes, reals]))
        return batches

    def _paired_reals(self, k: int, positions: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A random frame of each drawn fake's source video (cycling over the fakes if needed)."""
        picks = []
        for i in range(self.n_real):
            frames = self.paired_frames[k][int(positions[i % len(positions)])]
            picks.append(frames[int(torch.randint(len(frames), (1,), generator=generator))])
        return torch.stack(picks)

    def fakes_per_epoch(self) -> int:
        """Number of distinct training fakes; an epoch is this many fakes seen."""
        return sum(len(pool) for pool in self.fake_pools)
