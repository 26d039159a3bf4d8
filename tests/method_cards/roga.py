"""RoGA, reconstruction R1 (docs/method.md): per-domain ascending points aligned with the ERM gradient."""

import torch

from method_cards import card, descend, flat_grad, per_domain_inputs, shifted, unit


def ascent_epsilons(grads: list[torch.Tensor], rho: float, alpha: float, ascent: str) -> list[torch.Tensor]:
    """ε_k from the per-domain gradients g_k: ρ ĝ_k − α g, or one shared ρ ĝ_s/‖ĝ_s‖ − α g."""
    g = sum(grads) / len(grads)
    if ascent == "shared":
        return [rho * unit(sum(unit(gk) for gk in grads)) - alpha * g] * len(grads)
    return [rho * unit(gk) - alpha * g for gk in grads]


def roga_direction(model, params, batches, rho, alpha, ascent="per_domain", combine="with_erm"):
    grads = [flat_grad(model, params, x, y) for x, y in batches]
    g = sum(grads) / len(grads)
    eps = ascent_epsilons(grads, rho, alpha, ascent)
    perturbed = [flat_grad(model, shifted(params, e), x, y) for e, (x, y) in zip(eps, batches)]
    mean_p = sum(perturbed) / len(perturbed)
    return 0.5 * (g + mean_p) if combine == "with_erm" else mean_p


@card("roga", hparams={"rho": 0.3, "alpha": 0.05}, stat_inputs=per_domain_inputs)
def roga(model, params, batches, hp, state):
    return descend(params, roga_direction(model, params, batches, hp["rho"], hp["alpha"], hp["ascent"], hp["combine"]))
