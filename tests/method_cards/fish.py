"""Fish (Shi et al., 2021) as DomainBed: K sequential SGD steps, one per domain in order, then
θ + meta_lr (θ_K − θ). With unit SGD the persistent inner optimizer has no state to carry."""

from method_cards import card, flat_grad, shifted


@card("fish", hparams={"meta_lr": 0.3}, optimizer_steps=lambda k: k)
def fish(model, params, batches, hp, state):
    inner = params
    for x, y in batches:
        inner = shifted(inner, -hp["lr"] * flat_grad(model, inner, x, y))
    return {name: value + hp["meta_lr"] * (inner[name] - value) for name, value in params.items()}
