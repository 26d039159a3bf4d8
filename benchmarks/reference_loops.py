"""Plain PyTorch implementations of the registry's updates, written without the workbench's machinery, as the
reference the throughput benchmark holds the library to (``benchmarks/throughput.py``, ``plain-*``).

Each is what a researcher would write directly (DomainBed's code shape where DomainBed has the method):
per-parameter ``.grad`` tensors, ``torch._foreach_*`` for perturbations and restores, one ``.item()`` per
step (the trainer's one synchronisation), the same base optimizer. BatchNorm running statistics are saved
and restored around perturbed passes, as the library's updates leave them. ``tests/test_throughput.py``
checks that each computes the library's update, so the timings compare like with like. ERM's reference is
the benchmark's bare timm loop.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

Batches = Sequence[tuple[torch.Tensor, torch.Tensor]]
Step = Callable[[Batches], None]


def _running_buffers(model: nn.Module) -> list[torch.Tensor]:
    return [
        b
        for name, b in model.named_buffers()
        if name.rsplit(".", 1)[-1].startswith("running_") or name.endswith("num_batches_tracked")
    ]


def _gradients(model: nn.Module, loss: torch.Tensor, params: list[nn.Parameter]) -> list[torch.Tensor]:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def _norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors)))


def _dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([torch.sum(x * y) for x, y in zip(a, b)]).sum()


Perturbation = Callable[[list[torch.Tensor]], list[torch.Tensor]]
Combination = Callable[[list[torch.Tensor], list[torch.Tensor]], list[torch.Tensor]]


def _sharpness_aware(
    model: nn.Module, optimizer: torch.optim.Optimizer, perturbation: Perturbation, combine: Combination
) -> Step:
    """The SAM family on the pooled batch: ε from the clean gradient g, then step with combine(g, ∇L(θ + ε))."""
    params = [p for p in model.parameters() if p.requires_grad]
    buffers = _running_buffers(model)

    def step(batches: Batches) -> None:
        x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
        loss = F.cross_entropy(model(x), y)
        g = _gradients(model, loss, params)
        epsilon = perturbation(g)
        saved = [b.clone() for b in buffers]
        with torch.no_grad():
            torch._foreach_add_(params, epsilon)
        perturbed = _gradients(model, F.cross_entropy(model(x), y), params)
        with torch.no_grad():
            torch._foreach_sub_(params, epsilon)
            torch._foreach_copy_(buffers, saved)
        for p, grad in zip(params, combine(g, perturbed)):
            p.grad = grad
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()

    return step


def plain_sam(model: nn.Module, optimizer: torch.optim.Optimizer, rho: float = 0.05) -> Step:
    """SAM: ε = ρ g/‖g‖, step with ∇L(θ + ε)."""
    return _sharpness_aware(
        model, optimizer, lambda g: torch._foreach_mul(g, rho / (_norm(g) + 1e-12)), lambda g, perturbed: perturbed
    )


def plain_sagm(model: nn.Module, optimizer: torch.optim.Optimizer, rho: float = 0.05, alpha: float = 0.001) -> Step:
    """SAGM: ε = ρ g/‖g‖ − α g, step with ½ (g + ∇L(θ + ε))."""

    def perturbation(g: list[torch.Tensor]) -> list[torch.Tensor]:
        epsilon = torch._foreach_mul(g, rho / (_norm(g) + 1e-12))
        torch._foreach_add_(epsilon, g, alpha=-alpha)
        return epsilon

    def combine(g: list[torch.Tensor], perturbed: list[torch.Tensor]) -> list[torch.Tensor]:
        torch._foreach_add_(perturbed, g)
        torch._foreach_mul_(perturbed, 0.5)
        return perturbed

    return _sharpness_aware(model, optimizer, perturbation, combine)


def plain_asam(model: nn.Module, optimizer: torch.optim.Optimizer, rho: float = 0.5, eta: float = 0.01) -> Step:
    """ASAM: T = |w| + η on weights (1 on the rest), ε = ρ T² g/‖T g‖, step with ∇L(θ + ε)."""
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]

    def perturbation(g: list[torch.Tensor]) -> list[torch.Tensor]:
        scales = [p.detach().abs() + eta if "weight" in name else torch.ones_like(p) for name, p in named]
        scaled = torch._foreach_mul(scales, g)
        epsilon = torch._foreach_mul(scaled, scales)
        torch._foreach_mul_(epsilon, rho / (_norm(scaled) + 1e-16))
        return epsilon

    return _sharpness_aware(model, optimizer, perturbation, lambda g, perturbed: perturbed)


def plain_gsam(model: nn.Module, optimizer: torch.optim.Optimizer, rho: float = 0.04, alpha: float = 0.01) -> Step:
    """GSAM: ε = ρ g/‖g‖, step with g_p − α (g − cos(g, g_p) ‖g‖ g_p/‖g_p‖), g_p = ∇L(θ + ε)."""

    def combine(g: list[torch.Tensor], perturbed: list[torch.Tensor]) -> list[torch.Tensor]:
        g_norm, p_norm = _norm(g), _norm(perturbed)
        cos = _dot(g, perturbed) / (g_norm * p_norm + 1e-12)
        vertical = torch._foreach_sub(g, torch._foreach_mul(perturbed, cos * g_norm / (p_norm + 1e-12)))
        torch._foreach_add_(perturbed, vertical, alpha=-alpha)
        return perturbed

    return _sharpness_aware(model, optimizer, lambda g: torch._foreach_mul(g, rho / (_norm(g) + 1e-12)), combine)


def plain_roga(model: nn.Module, optimizer: torch.optim.Optimizer, rho: float = 0.05, alpha: float = 0.001) -> Step:
    """RoGA (docs/method.md): ε_k = ρ g_k/‖g_k‖ − α g per domain; step with ½ (g + mean_k ∇L_k(θ + ε_k))."""
    params = [p for p in model.parameters() if p.requires_grad]
    buffers = _running_buffers(model)

    def step(batches: Batches) -> None:
        k = len(batches)
        losses, clean = [], []
        for x, y in batches:
            loss = F.cross_entropy(model(x), y)
            losses.append(loss.detach())
            clean.append(_gradients(model, loss, params))
        g = torch._foreach_add(clean[0], clean[1]) if k > 1 else [t.clone() for t in clean[0]]
        for grads in clean[2:]:
            torch._foreach_add_(g, grads)
        torch._foreach_div_(g, k)
        saved = [b.clone() for b in buffers]
        total = [torch.zeros_like(p) for p in params]
        for (x, y), grads in zip(batches, clean):
            epsilon = torch._foreach_mul(grads, rho / (_norm(grads) + 1e-12))
            torch._foreach_add_(epsilon, g, alpha=-alpha)
            with torch.no_grad():
                torch._foreach_add_(params, epsilon)
            torch._foreach_add_(total, _gradients(model, F.cross_entropy(model(x), y), params))
            with torch.no_grad():
                torch._foreach_sub_(params, epsilon)
        with torch.no_grad():
            torch._foreach_copy_(buffers, saved)
        torch._foreach_add_(total, g, alpha=k)
        torch._foreach_mul_(total, 0.5 / k)
        for p, grad in zip(params, total):
            p.grad = grad
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.stack(losses).mean().item()

    return step


Mask = Callable[[torch.Tensor], torch.Tensor]


def _gradient_mask(model: nn.Module, optimizer: torch.optim.Optimizer, mask_of: Mask) -> Step:
    """DomainBed's AND-mask loop: per-domain gradients; per parameter tensor, step with mask·ḡ/(1e-10 + mean(mask))
    for the mask ``mask_of`` makes of the stacked gradients ``[K, ...]``."""
    params = [p for p in model.parameters() if p.requires_grad]

    def step(batches: Batches) -> None:
        per_domain, losses = [], []
        for x, y in batches:
            loss = F.cross_entropy(model(x), y)
            losses.append(loss.detach())
            per_domain.append(_gradients(model, loss, params))
        for i, p in enumerate(params):
            grads = torch.stack([domain[i] for domain in per_domain])
            mask = mask_of(grads)
            p.grad = mask * grads.mean(0) / (1e-10 + mask.mean())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.stack(losses).mean().item()

    return step


def plain_andmask(model: nn.Module, optimizer: torch.optim.Optimizer, tau: float = 1.0) -> Step:
    """AND-mask as DomainBed writes it: keep the entries whose domains' gradient signs agree (≥ τ)."""
    return _gradient_mask(model, optimizer, lambda grads: (torch.sign(grads).mean(0).abs() >= tau).to(grads.dtype))


def plain_sandmask(model: nn.Module, optimizer: torch.optim.Optimizer, tau: float = 1.0, k: float = 10.0) -> Step:
    """SAND-mask as DomainBed writes it: a smooth mask from the sign agreement and the gradient variance."""

    def mask_of(grads: torch.Tensor) -> torch.Tensor:
        variance = grads.var(dim=0)
        variance[torch.isnan(variance)] = 1e-17
        mask = torch.tanh(k * variance.reciprocal() * (torch.sign(grads).mean(0).abs() - tau)).clamp_min(0.0)
        mask[torch.isnan(mask)] = 1e-17
        return mask

    return _gradient_mask(model, optimizer, mask_of)


def plain_fish(model: nn.Module, optimizer: torch.optim.Optimizer, meta_lr: float = 0.5) -> Step:
    """Fish: one optimizer step per domain from θ, then θ ← θ + meta_lr (θ_K − θ), buffers included."""

    def step(batches: Batches) -> None:
        start = {name: value.clone() for name, value in model.state_dict().items()}
        losses = []
        for x, y in batches:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
        optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for name, value in model.state_dict().items():
                begin = start[name]
                moved = begin.double() + meta_lr * (value - begin).double()
                value.copy_(moved if not value.is_floating_point() else begin + meta_lr * (value - begin))
        torch.stack(losses).mean().item()

    return step


def plain_groupdro(model: nn.Module, optimizer: torch.optim.Optimizer, groupdro_eta: float = 1e-2) -> Step:
    """GroupDRO as DomainBed writes it: q_k ← q_k exp(η R_k), normalised; descend Σ_k q_k R_k."""
    q: list[torch.Tensor] = []

    def step(batches: Batches) -> None:
        losses = torch.stack([F.cross_entropy(model(x), y) for x, y in batches])
        if not q:
            q.append(torch.ones(len(batches), dtype=losses.dtype, device=losses.device))
        with torch.no_grad():
            q[0].mul_(torch.exp(groupdro_eta * losses)).div_(q[0].sum())
        loss = torch.dot(losses, q[0])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()

    return step


Risks = Callable[[list[torch.Tensor], list[torch.Tensor]], tuple[torch.Tensor, torch.Tensor]]


def _annealed(model: nn.Module, optimizer: torch.optim.Optimizer, risks: Risks, lam: float, anneal_iters: int) -> Step:
    """DomainBed's IRM/V-REx loop: one pooled forward, nll + w·penalty with w = 1 then λ, optimizer reset then."""
    updates = [0]

    def step(batches: Batches) -> None:
        x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
        sizes = [len(b[0]) for b in batches]
        nll, penalty = risks(list(model(x).split(sizes)), list(y.split(sizes)))
        loss = nll + (lam if updates[0] >= anneal_iters else 1.0) * penalty
        if updates[0] == anneal_iters:
            optimizer.state.clear()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        updates[0] += 1
        loss.item()

    return step


def plain_irm(
    model: nn.Module, optimizer: torch.optim.Optimizer, irm_lambda: float = 1e2, irm_penalty_anneal_iters: int = 500
) -> Step:
    """IRMv1 as DomainBed writes it: the product of the two half-batch gradients of a dummy scale, per domain."""

    def penalty(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        scale = torch.tensor(1.0, dtype=logits.dtype, requires_grad=True)
        loss_1 = F.cross_entropy(logits[::2] * scale, y[::2])
        loss_2 = F.cross_entropy(logits[1::2] * scale, y[1::2])
        grad_1 = torch.autograd.grad(loss_1, [scale], create_graph=True)[0]
        grad_2 = torch.autograd.grad(loss_2, [scale], create_graph=True)[0]
        return torch.sum(grad_1 * grad_2)

    def risks(logits: list[torch.Tensor], labels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        nll = sum(F.cross_entropy(z, y) for z, y in zip(logits, labels)) / len(logits)
        return nll, sum(penalty(z, y) for z, y in zip(logits, labels)) / len(logits)

    return _annealed(model, optimizer, risks, irm_lambda, irm_penalty_anneal_iters)


def plain_vrex(
    model: nn.Module, optimizer: torch.optim.Optimizer, vrex_lambda: float = 1e1, vrex_penalty_anneal_iters: int = 500
) -> Step:
    """V-REx as DomainBed writes it: the mean risk plus the variance of the domains' risks."""

    def risks(logits: list[torch.Tensor], labels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        losses = torch.stack([F.cross_entropy(z, y) for z, y in zip(logits, labels)])
        mean = losses.mean()
        return mean, ((losses - mean) ** 2).mean()

    return _annealed(model, optimizer, risks, vrex_lambda, vrex_penalty_anneal_iters)


def _features_and_classifier(model: nn.Module) -> tuple[Callable[[torch.Tensor], torch.Tensor], nn.Module]:
    if hasattr(model, "forward_features"):
        return (lambda x: model.forward_head(model.forward_features(x), pre_logits=True)), model.get_classifier()
    return model[:-1], model[-1]


def _feature_matching(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    discrepancy: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    gamma: float,
) -> Step:
    """DomainBed's CORAL/MMD loop: per-domain features, mean risk plus γ × the mean pairwise discrepancy."""
    featurize, classifier = _features_and_classifier(model)

    def step(batches: Batches) -> None:
        features = [featurize(x) for x, _ in batches]
        objective = sum(F.cross_entropy(classifier(f), y) for f, (_, y) in zip(features, batches)) / len(batches)
        k = len(batches)
        pairs = [discrepancy(features[i], features[j]) for i in range(k) for j in range(i + 1, k)]
        loss = objective + gamma * sum(pairs) / len(pairs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        objective.item()

    return step


def plain_coral(model: nn.Module, optimizer: torch.optim.Optimizer, mmd_gamma: float = 1.0) -> Step:
    """CORAL as DomainBed writes it: the mean and covariance distance of two domains' features."""

    def coral(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        mean_a, mean_b = a.mean(0, keepdim=True), b.mean(0, keepdim=True)
        cova = (a - mean_a).t() @ (a - mean_a) / (len(a) - 1)
        covb = (b - mean_b).t() @ (b - mean_b) / (len(b) - 1)
        return (mean_a - mean_b).pow(2).mean() + (cova - covb).pow(2).mean()

    return _feature_matching(model, optimizer, coral, mmd_gamma)


def plain_mmd(model: nn.Module, optimizer: torch.optim.Optimizer, mmd_gamma: float = 1.0) -> Step:
    """MMD as DomainBed writes it: a sum of Gaussian kernels at seven bandwidths, biased MMD² estimate."""

    def kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        distances = (x.pow(2).sum(-1, keepdim=True) + y.pow(2).sum(-1, keepdim=True).t() - 2 * x @ y.t()).clamp_min(
            1e-30
        )
        return sum(torch.exp(-gamma * distances) for gamma in (1e-3, 1e-2, 1e-1, 1, 10, 100, 1000))

    def mmd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return kernel(a, a).mean() + kernel(b, b).mean() - 2 * kernel(a, b).mean()

    return _feature_matching(model, optimizer, mmd, mmd_gamma)


def plain_mixup(model: nn.Module, optimizer: torch.optim.Optimizer, mixup_alpha: float = 0.2) -> Step:
    """Inter-domain mixup as DomainBed writes it: random pairs of domains, one Beta(α, α) mix per pair (the
    library's draws: the permutation, then the K weights in one call)."""

    def step(batches: Batches) -> None:
        k = len(batches)
        order = torch.randperm(k).tolist()
        weights = torch.distributions.Beta(mixup_alpha, mixup_alpha).sample((k,)).tolist()
        objective = 0.0
        for i, lam in enumerate(weights):
            (x_i, y_i), (x_j, y_j) = batches[order[i]], batches[order[(i + 1) % k]]
            n = min(len(x_i), len(x_j))
            logits = model(lam * x_i[:n] + (1 - lam) * x_j[:n])
            objective = (
                objective + lam * F.cross_entropy(logits, y_i[:n]) + (1 - lam) * F.cross_entropy(logits, y_j[:n])
            )
        objective = objective / k
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        objective.item()

    return step


def plain_mldg(
    model: nn.Module, optimizer: torch.optim.Optimizer, mldg_beta: float = 1.0, n_meta_test: int = 2
) -> Step:
    """First-order MLDG as DomainBed writes it: per (meta-train, meta-test) pair, a deep copy of the network takes
    one step of a fresh optimizer on the meta-train batch; its meta-test gradient, weighted β, joins the
    meta-train gradient; the sum / K is the step. The meta-train pass runs on the live network, so that its
    running statistics move as the library's do (DomainBed's never move: its ResNet freezes BatchNorm)."""
    params = [p for p in model.parameters() if p.requires_grad]

    def step(batches: Batches) -> None:
        k = len(batches)
        order = torch.randperm(k).tolist()
        meta_train, meta_test = order[: k - n_meta_test], order[k - n_meta_test :]
        total = [torch.zeros_like(p) for p in params]
        objective = 0.0
        for i, j in zip(meta_train, itertools.cycle(meta_test)):
            (x_i, y_i), (x_j, y_j) = batches[i], batches[j]
            n = min(len(x_i), len(x_j))
            loss_i = F.cross_entropy(model(x_i[:n]), y_i[:n])
            grads_i = _gradients(model, loss_i, params)
            torch._foreach_add_(total, grads_i)
            inner = copy.deepcopy(model)
            inner_params = [p for p in inner.parameters() if p.requires_grad]
            for p, grad in zip(inner_params, grads_i):
                p.grad = grad
            type(optimizer)(inner_params, **optimizer.defaults).step()
            loss_j = F.cross_entropy(inner(x_j[:n]), y_j[:n])
            torch._foreach_add_(total, _gradients(inner, loss_j, inner_params), alpha=mldg_beta)
            objective = objective + loss_i.detach() + mldg_beta * loss_j.detach()
        torch._foreach_div_(total, k)
        for p, grad in zip(params, total):
            p.grad = grad
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        (objective / k).item()

    return step


def plain_fishr(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    lam: float = 1000.0,
    penalty_anneal_iters: int = 1500,
    ema: float = 0.95,
) -> Step:
    """Fishr as DomainBed writes it, with the per-sample gradients of the linear head in closed form instead of
    BackPACK: for logits W z + b, sample i's gradient of its cross-entropy is ((p_i − e_{y_i}) z_iᵀ, p_i − e_{y_i}),
    differentiable in z and the head. Each domain's centred gradient variance enters a moving average (corrected
    by 1/(1 − ema)); the penalty is the mean squared spread of the domains' averages, weighed 0 before update
    ``penalty_anneal_iters`` and λ from it on, where the optimizer is reset."""
    featurize, classifier = _features_and_classifier(model)
    if not isinstance(classifier, nn.Linear):
        raise TypeError(f"plain_fishr needs a linear classifier, got {type(classifier).__name__}")
    averages: list[torch.Tensor] = []
    updates = [0]

    def step(batches: Batches) -> None:
        x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
        z = featurize(x)
        logits = classifier(z)
        nll = F.cross_entropy(logits, y)
        error = torch.softmax(logits, dim=1) - F.one_hot(y, logits.shape[1]).to(logits.dtype)
        per_sample = torch.cat([(error.unsqueeze(2) * z.unsqueeze(1)).flatten(1), error], dim=1)
        variances = [
            (grads - grads.mean(0, keepdim=True)).pow(2).mean(0)
            for grads in per_sample.split([len(b[0]) for b in batches])
        ]
        previous = averages or [torch.zeros_like(v) for v in variances]
        current = [ema * p + (1 - ema) * v for p, v in zip(previous, variances)]
        averages[:] = [c.detach().clone() for c in current]
        corrected = [c / (1 - ema) for c in current]
        mean = sum(corrected) / len(corrected)
        penalty = sum((c - mean).pow(2).mean() for c in corrected) / len(corrected)
        if updates[0] == penalty_anneal_iters:
            optimizer.state.clear()
        objective = nll + (lam if updates[0] >= penalty_anneal_iters else 0.0) * penalty
        updates[0] += 1
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        objective.item()

    return step


# algorithm → (reference loop, the library hyper-parameters it takes as keyword arguments)
REFERENCE_LOOPS: dict[str, tuple[Callable[..., Step], tuple[str, ...]]] = {
    "sam": (plain_sam, ("rho",)),
    "sagm": (plain_sagm, ("rho", "alpha")),
    "asam": (plain_asam, ("rho", "eta")),
    "gsam": (plain_gsam, ("rho", "alpha")),
    "roga": (plain_roga, ("rho", "alpha")),
    "andmask": (plain_andmask, ("tau",)),
    "sandmask": (plain_sandmask, ("tau", "k")),
    "fish": (plain_fish, ("meta_lr",)),
    "groupdro": (plain_groupdro, ("groupdro_eta",)),
    "irm": (plain_irm, ("irm_lambda", "irm_penalty_anneal_iters")),
    "vrex": (plain_vrex, ("vrex_lambda", "vrex_penalty_anneal_iters")),
    "coral": (plain_coral, ("mmd_gamma",)),
    "mmd": (plain_mmd, ("mmd_gamma",)),
    "mixup": (plain_mixup, ("mixup_alpha",)),
    "mldg": (plain_mldg, ("mldg_beta", "n_meta_test")),
    "fishr": (plain_fishr, ("lambda", "penalty_anneal_iters", "ema")),
}

KEYWORDS = {"lambda": "lam"}  # library hyper-parameters whose names are Python keywords


def reference_loop(name: str, model: nn.Module, optimizer: torch.optim.Optimizer, hparams: dict) -> Step:
    """Algorithm ``name``'s reference loop on ``model``, with the hyper-parameters it takes from ``hparams``."""
    loop, keys = REFERENCE_LOOPS[name]
    return loop(model, optimizer, **{KEYWORDS.get(key, key): hparams[key] for key in keys})
