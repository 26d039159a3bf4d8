"""RoGA — Robust Gradient Alignment (Qiu, Jiang & Tan, ICME 2025), reconstruction R1 (docs/method.md).

Each source domain's weights are perturbed to its ascending point, shifted against the ERM gradient
(ε_k = ρ g_k/‖g_k‖ − α g); the gradients found there are averaged and combined with the ERM gradient.
To first order, descending L_k(θ + ε_k) lowers each domain's worst-case loss and raises the agreement
⟨∇L_k(θ + ρ ĝ_k), g⟩ between every domain's perturbed gradient and the ERM gradient — alignment
without an extra regulariser or module.

Two implementations of the same update (``domain_passes`` hparam): ``"sequential"`` perturbs the
module's weights in place domain after domain (BN running statistics frozen, weights restored by
copy); ``"concurrent"`` evaluates every pass functionally at its own parameter vector with private BN
buffers (see :mod:`workbench.algorithms.domain_passes`), so the K passes of each phase overlap on K
CUDA streams. Both are captured whole by the CUDA-graph path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.nn.modules.batchnorm import SyncBatchNorm

from workbench.algorithms.base import Algorithm, DomainBatches
from workbench.algorithms.batchnorm import RunningStats, frozen_running_stats
from workbench.algorithms.domain_passes import Lanes, functional_loss_and_grad, perturbed_parameters
from workbench.algorithms.hparams import choice, number
from workbench.algorithms.param_vector import cosine, row_cosines
from workbench.algorithms.registry import register_algorithm

ASCENTS = ("per_domain", "shared")


def check_ascent(ascent: str, rho: float, alpha: float) -> None:
    """Refuse an ascent that is not one of :data:`ASCENTS`, or a negative ρ or α, naming the value."""
    if ascent not in ASCENTS:
        raise ValueError(f"ascent={ascent!r} is not one of {list(ASCENTS)}")
    if rho < 0 or alpha < 0:
        raise ValueError(f"rho={rho} and alpha={alpha} must be non-negative")


def ascent_perturbations(
    domain_grads: Sequence[torch.Tensor], g: torch.Tensor, rho: float, alpha: float, ascent: str = "per_domain"
) -> list[torch.Tensor]:
    """ε_k = ρ g_k/(‖g_k‖ + 1e-12) − α g; ``ascent="shared"``: one ε = ρ ŝ/‖ŝ‖ − α g, ŝ = Σ_k g_k/‖g_k‖."""
    return list(iter_perturbations(domain_grads, g, rho, alpha, ascent))


def iter_perturbations(
    domain_grads: Sequence[torch.Tensor],
    g: torch.Tensor,
    rho: float,
    alpha: float,
    ascent: str = "per_domain",
    out: torch.Tensor | None = None,
    norms: torch.Tensor | None = None,
) -> Iterator[torch.Tensor]:
    """The ε_k of :func:`ascent_perturbations` one at a time, each written into ``out`` when given (valid until
    the next one is produced), so that a step holds one perturbation at a time. ``norms``: the ‖g_k‖, when the
    caller has them already (taken here otherwise)."""
    if norms is None:
        norms = [torch.linalg.vector_norm(g_k) for g_k in domain_grads]
    if ascent == "shared":
        shared = torch.stack([g_k / (norm + 1e-12) for g_k, norm in zip(domain_grads, norms)]).sum(0)
        epsilon = torch.mul(shared, rho / (torch.linalg.vector_norm(shared) + 1e-12), out=out).add_(g, alpha=-alpha)
        for _ in domain_grads:
            yield epsilon
        return
    for g_k, norm in zip(domain_grads, norms):
        yield torch.mul(g_k, rho / (norm + 1e-12), out=out).add_(g, alpha=-alpha)


def mean_into(vectors: Sequence[torch.Tensor], out: torch.Tensor) -> torch.Tensor:
    """The mean of equally long flat vectors, written into ``out`` (no stacked copy)."""
    out.copy_(vectors[0])
    for vector in vectors[1:]:
        out.add_(vector)
    return out.div_(len(vectors))


@register_algorithm("roga")
class RoGA(Algorithm):
    """Per-domain ascent towards each domain's ascending point, aligned with the ERM gradient."""

    family = "roga"
    capturable = True
    HPARAMS = {
        "rho": number(0.05, "radius ρ of each domain's ascent"),
        "alpha": number(0.001, "step α against the ERM gradient in every ascent"),
        "ascent": choice("per_domain", "one ascending point per domain, or one shared", *ASCENTS),
        "combine": choice(
            "with_erm",
            "G = ½ (g + mean perturbed gradient), or the mean perturbed gradient alone",
            "with_erm",
            "perturbed_only",
        ),
        "domain_passes": choice(
            "sequential",
            "per-domain passes one after the other on the module, or as "
            "concurrent functional passes (one CUDA stream per domain)",
            "sequential",
            "concurrent",
        ),
    }

    def __init__(
        self, model: torch.nn.Module, hparams: Mapping[str, Any] | None = None, num_domains: int | None = None
    ) -> None:
        super().__init__(model, hparams, num_domains)
        self._lanes = Lanes()

    def ascent_directions(
        self, domain_grads: Sequence[torch.Tensor], g: torch.Tensor, norms: torch.Tensor | None = None
    ) -> Iterator[torch.Tensor]:
        """ε_k for every domain with this algorithm's ρ, α and ``ascent`` switch, one at a time in a reused buffer
        (``norms``: the ‖g_k‖ when known)."""
        return iter_perturbations(
            domain_grads,
            g,
            self.hparams["rho"],
            self.hparams["alpha"],
            self.hparams["ascent"],
            out=self.vector.buffer("eps"),
            norms=norms,
        )

    def concurrent(self) -> bool:
        """Whether this step runs the functional, stream-overlapped passes (``domain_passes``)."""
        if self.hparams["domain_passes"] != "concurrent":
            return False
        if any(isinstance(m, SyncBatchNorm) for m in self.model.modules()):
            raise ValueError("domain_passes='concurrent' cannot overlap SyncBatchNorm collectives; use 'sequential'")
        unmergeable = RunningStats(self.model).unmergeable()
        if unmergeable:
            raise ValueError(
                f"domain_passes='concurrent' cannot merge the running statistics of {unmergeable}: it needs "
                "BatchNorm/InstanceNorm layers with a momentum (not a cumulative average); use 'sequential'"
            )
        return True

    def step(self, minibatches: DomainBatches) -> dict[str, torch.Tensor]:
        if self.concurrent():
            losses, domain_grads, perturbed_losses, perturbed_grads = self._passes_concurrent(minibatches)
            clean = torch.stack(domain_grads)
            g = clean.mean(0)
            grad_norm = torch.linalg.vector_norm(g)
            perturbed = torch.stack(perturbed_grads)
            perturbed_sum = perturbed.sum(0)
            cos_perturbed = row_cosines(perturbed, g, grad_norm)
            cos_clean = row_cosines(clean, g, grad_norm)
        else:
            losses, g, grad_norm, cos_clean, perturbed_losses, perturbed_sum, cos_perturbed = self._passes_sequential(
                minibatches
            )
        k = len(minibatches)
        if self.hparams["combine"] == "with_erm":
            direction = perturbed_sum.add_(g, alpha=k).mul_(0.5 / k)  # ½ (g + mean_k g_k^p)
        else:
            direction = perturbed_sum.div_(k)
        self.step_with(direction)
        return {
            "loss": torch.stack(losses).mean(),
            "loss_perturbed": torch.stack(perturbed_losses).mean(),
            "grad_norm": grad_norm,
            "cos_clean_mean": cos_clean.mean(),
            "cos_perturbed_mean": cos_perturbed.mean(),
        }

    def _passes_sequential(self, minibatches: DomainBatches) -> tuple:
        """Clean and perturbed passes on the module itself, one domain after the other, into reused buffers.

        Returns the per-domain losses, the mean gradient g and ‖g‖, each cos(g_k, g), the perturbed losses,
        the sum of the perturbed gradients Σ_k g_k^p and each cos(g_k^p, g). The g_k are the rows of one
        buffer, so their norms and cosines take one kernel each and ‖g_k‖ serves both the ascent and the
        cosine; each cos(g_k^p, g) is taken as g_k^p is found, so one perturbed gradient is held at a time.
        """
        vector = self.vector
        clean = vector.buffer("clean", rows=len(minibatches))
        losses = []
        for row, (x, y) in zip(clean, minibatches):
            loss = self.loss(x, y)
            losses.append(loss.detach())
            vector.grad_into(loss, row)
        g = mean_into(clean, vector.buffer("g"))
        grad_norm = torch.linalg.vector_norm(g)
        clean_norms = torch.linalg.vector_norm(clean, dim=1)
        cos_clean = row_cosines(clean, g, grad_norm, clean_norms)
        theta = vector.snapshot(vector.buffer("theta"))
        perturbed_losses, cos_perturbed = [], []
        perturbed_sum = vector.buffer("perturbed_sum").zero_()
        g_p = vector.buffer("perturbed")
        with frozen_running_stats(self.model):
            for (x, y), epsilon in zip(minibatches, self.ascent_directions(clean, g, clean_norms)):
                vector.add_(epsilon)
                loss_p = self.loss(x, y)
                vector.grad_into(loss_p, g_p)
                vector.copy_(theta)
                perturbed_losses.append(loss_p.detach())
                cos_perturbed.append(cosine(g_p, g, b_norm=grad_norm))
                perturbed_sum.add_(g_p)
        return losses, g, grad_norm, cos_clean, perturbed_losses, perturbed_sum, torch.stack(cos_perturbed)

    def _passes_concurrent(self, minibatches: DomainBatches) -> tuple[list[torch.Tensor], ...]:
        """Clean and perturbed passes as functional passes with private BN buffers, overlapped."""
        device = minibatches[0][0].device
        running = RunningStats(self.model)
        private = [running.private_copies() for _ in minibatches]

        def run(points: list[list[torch.Tensor] | None]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
            results = []
            with self._lanes.fork(device, len(minibatches)) as contexts:
                for context, params, buffers, (x, y) in zip(contexts, points, private, minibatches):
                    with context:
                        results.append(
                            functional_loss_and_grad(self.model, self.vector, self.loss, params, buffers, x, y)
                        )
            losses, grads = zip(*results)
            return list(losses), list(grads)

        losses, domain_grads = run([None] * len(minibatches))
        running.merge(private)
        g = torch.stack(domain_grads).mean(0)
        points = [perturbed_parameters(self.vector, eps) for eps in self.ascent_directions(domain_grads, g)]
        perturbed_losses, perturbed_grads = run(points)
        return losses, domain_grads, perturbed_losses, perturbed_grads
