"""ASAM (Kwon et al., 2021): ε = ρ T²g/(‖Tg‖ + 1e-16), T = |w| + η on parameters named *weight*, 1 elsewhere."""

import torch

from method_cards import card, descend, flat_grad, pooled, pooled_input, shifted


@card("asam", hparams={"rho": 0.3, "eta": 0.05}, stat_inputs=pooled_input)
def asam(model, params, batches, hp, state):
    x, y = pooled(batches)
    g = flat_grad(model, params, x, y)
    t = torch.cat(
        [
            (value.abs() + hp["eta"] if "weight" in name else torch.ones_like(value)).reshape(-1)
            for name, value in params.items()
        ]
    )
    epsilon = hp["rho"] * t * t * g / ((t * g).norm() + 1e-16)
    return descend(params, flat_grad(model, shifted(params, epsilon), x, y))
