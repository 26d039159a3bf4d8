"""SAM (Foret et al., 2021) and SAGM (Wang et al., 2023) on the pooled batch."""

from method_cards import card, descend, flat_grad, pooled, pooled_input, shifted, unit


@card("sam", hparams={"rho": 0.3}, stat_inputs=pooled_input)
def sam(model, params, batches, hp, state):
    x, y = pooled(batches)
    g = flat_grad(model, params, x, y)
    return descend(params, flat_grad(model, shifted(params, hp["rho"] * unit(g)), x, y))


@card("sagm", hparams={"rho": 0.3, "alpha": 0.05}, stat_inputs=pooled_input)
def sagm(model, params, batches, hp, state):
    x, y = pooled(batches)
    g = flat_grad(model, params, x, y)
    g_p = flat_grad(model, shifted(params, hp["rho"] * unit(g) - hp["alpha"] * g), x, y)
    return descend(params, 0.5 * (g + g_p))
