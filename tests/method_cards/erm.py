"""ERM: G = ∇L(θ) on the pooled batch."""

from method_cards import card, descend, flat_grad, pooled, pooled_input


@card("erm", stat_inputs=pooled_input)
def erm(model, params, batches, hp, state):
    return descend(params, flat_grad(model, params, *pooled(batches)))
