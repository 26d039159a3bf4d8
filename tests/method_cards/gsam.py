"""GSAM (Zhuang et al., 2022): descend g_p = ∇L(θ + ρĝ) minus α times the part of g orthogonal to g_p."""

from method_cards import card, descend, flat_grad, pooled, pooled_input, shifted, unit


@card("gsam", hparams={"rho": 0.3, "alpha": 0.4}, stat_inputs=pooled_input)
def gsam(model, params, batches, hp, state):
    x, y = pooled(batches)
    g = flat_grad(model, params, x, y)
    g_p = flat_grad(model, shifted(params, hp["rho"] * unit(g)), x, y)
    g_perp = g - (g @ g_p) / (g_p @ g_p) * g_p
    return descend(params, g_p - hp["alpha"] * g_perp)
