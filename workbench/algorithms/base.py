"""The algorithm interface (after DomainBed): ``update(per-domain minibatches)`` and ``predict(x)``.

A subclass implements :meth:`Algorithm.step` — one update on one ``(x_k, y_k)`` batch per source
domain — in plain PyTorch: forward passes through :meth:`Algorithm.logits` / :meth:`Algorithm.loss`
(which apply the execution policy's precision and layout), ``backward()`` or ``torch.autograd.grad``,
and ``self.optimizer.step()``. Statistics may be floats or 0-d tensors. The class declares its
hyper-parameters (``HPARAMS``, beside the shared ones of :mod:`workbench.algorithms.hparams`) and
registers itself with ``@register_algorithm``.

State. ``Algorithm.state_dict()`` holds everything the next update depends on: the model's weights
and buffers, buffers the algorithm registers (counters, group weights), the base optimizer's state,
and whatever :meth:`Algorithm.extra_state` returns (e.g. moving averages). Checkpoints store it
whole, so resuming continues exactly.

Distributed training: set ``algorithm.distributed`` to a reducer (see
:class:`~workbench.algorithms.execution.Reducer`); every optimizer made by :meth:`make_optimizer`
then averages its gradients across processes right before it steps — for the SAM family that is the
final update direction G, once per step; the clean and ascent passes never communicate.

CUDA graphs: an algorithm that sets ``capturable = True`` promises that :meth:`step` never waits on
the device (no ``.item()``, no data-dependent Python branches), returns 0-d tensors and never
replaces its optimizer; its whole update is then captured and replayed (``cuda_graph`` hparam).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from workbench.algorithms.batches import DomainBatches, check_domain_batches
from workbench.algorithms.cuda_graph import GraphedStep
from workbench.algorithms.execution import ExecutionPolicy, Reducer, full_precision, reduce_gradients_
from workbench.algorithms.hparams import COMMON_HPARAMS, HParam, resolve
from workbench.algorithms.param_vector import ParamVector
from workbench.models import classifier_split

Stats = dict[str, torch.Tensor | float]


def build_optimizer(params: list[nn.Parameter], hparams: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The base optimizer; weight decay lives here, never in a perturbation."""
    if hparams["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=hparams["lr"], weight_decay=hparams["weight_decay"])
    return torch.optim.SGD(params, lr=hparams["lr"], momentum=hparams["momentum"], weight_decay=hparams["weight_decay"])


class Algorithm(nn.Module):
    """A training algorithm wrapping a model and its base optimizer (see the module docstring)."""

    name: ClassVar[str] = ""
    # "baseline", "flatness", "invariance", "gradient matching" or "robust alignment": how tables group methods
    family: ClassVar[str] = ""
    HPARAMS: ClassVar[Mapping[str, HParam]] = {}
    capturable: ClassVar[bool] = False

    def __init__(
        self, model: nn.Module, hparams: Mapping[str, Any] | None = None, num_domains: int | None = None
    ) -> None:
        super().__init__()
        self.hparams = resolve(self.hparam_spec(), hparams, self.name or type(self).__name__)
        if num_domains is not None and (
            isinstance(num_domains, bool) or not isinstance(num_domains, int) or num_domains < 1
        ):
            raise ValueError(f"num_domains={num_domains!r} must be a positive integer")
        self.num_domains = num_domains
        self.execution = ExecutionPolicy(self.hparams)
        self.model = self.execution.prepare(model)
        self.vector = ParamVector(model)
        self.distributed: Reducer | None = None
        self.optimizer = self.make_optimizer(self.vector.params)
        self._graphed: GraphedStep | None = None

    @classmethod
    def hparam_spec(cls) -> dict[str, HParam]:
        """Every hyper-parameter this algorithm accepts: the shared ones, then its own."""
        return {**COMMON_HPARAMS, **cls.HPARAMS}

    # ------------------------------------------------------------------ the method
    def step(self, minibatches: DomainBatches) -> Stats:
        """One update on one ``(x_k, y_k)`` batch per source domain; returns statistics."""
        raise NotImplementedError

    def update(self, minibatches: DomainBatches) -> dict[str, float]:
        """One update on one ``(x_k, y_k)`` batch per source domain; returns float statistics."""
        return as_floats(self.launch(minibatches))

    def launch(self, minibatches: DomainBatches) -> Stats:
        """Enqueue one update (eagerly, or as a CUDA-graph replay) and return its statistics.

        For a capturable algorithm the statistics are 0-d tensors valid until the next ``launch``: read
        them (e.g. with :func:`as_floats`) after queuing other work, such as the next batch's
        host-to-device copy, so that the host prepares it while the device computes this update.
        """
        self.check_batches(minibatches)
        with self.execution.math():
            if self.capturable and self.execution.graphs(minibatches, self.distributed):
                return self.graphed_step(minibatches, (id(self.distributed), tuple(sorted(self.hparams.items()))))
            return self.step(minibatches)

    def check_batches(self, minibatches: DomainBatches) -> None:
        """Refuse an empty or malformed update, or one with another number of domains than ``num_domains``."""
        check_domain_batches(minibatches, expected=self.num_domains, owner=f"{self.name}: update()")

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, 2]`` (index 1 = fake)."""
        return self.execution.predict(self.model, x)

    # ------------------------------------------------------------------ helpers for step()
    def logits(self, x: torch.Tensor, forward=None) -> torch.Tensor:
        """Full-precision logits of the model (or of ``forward``) under the execution policy."""
        return self.execution.logits(self.model if forward is None else forward, x)

    def loss(self, x: torch.Tensor, y: torch.Tensor, forward=None) -> torch.Tensor:
        """2-logit cross-entropy (DeepfakeBench convention) of the model (or ``forward``) on one batch."""
        return F.cross_entropy(self.logits(x, forward), y)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (what the classifier sees), full precision, under the execution policy."""
        featurize, _ = classifier_split(self.model)
        with self.execution.autocast(x.device):
            return full_precision(featurize(self.execution.layout(x)))

    @property
    def classifier(self) -> nn.Module:
        """The model's last layer: ``classifier(features(x))`` are the logits."""
        return classifier_split(self.model)[1]

    def make_optimizer(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        """A base optimizer (``optimizer``, ``lr``, ``weight_decay``, ``momentum``) over ``params``.

        In distributed training it averages its gradients across processes before every step.
        """
        optimizer = build_optimizer(params, self.hparams)
        optimizer.register_step_pre_hook(self._reduce_before_step)
        return optimizer

    def _reduce_before_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if self.distributed is not None:
            reduce_gradients_([p for group in optimizer.param_groups for p in group["params"]], self.distributed)

    def descend(self, loss: torch.Tensor) -> None:
        """One base-optimizer step on the gradient of ``loss`` (``backward()``, ``step()``, gradients cleared).

        Parameters ``loss`` does not reach keep ``.grad`` None, so the optimizer skips them.
        """
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def step_with(self, direction: torch.Tensor) -> None:
        """Let the base optimizer step with the flat (:class:`ParamVector`) update direction ``direction``."""
        self.vector.set_grad(direction)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    @staticmethod
    def pooled(minibatches: DomainBatches) -> tuple[torch.Tensor, torch.Tensor]:
        """Concatenate the per-domain batches into one batch."""
        if len(minibatches) == 0:
            raise ValueError("no domain batches to pool")
        xs, ys = zip(*minibatches)
        return torch.cat(xs), torch.cat(ys)

    # ------------------------------------------------------------------ state
    def extra_state(self) -> dict[str, Any]:
        """State beyond parameters, buffers and the base optimizer that the next update needs (tensors,
        numbers, strings and containers of them). Subclasses with such state override this and
        :meth:`load_extra_state`."""
        return {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""
        if state:
            raise ValueError(f"{self.name}: unexpected extra state {sorted(state)}")

    def get_extra_state(self) -> dict[str, Any]:
        """nn.Module hook: the base optimizer's state and :meth:`extra_state` travel in ``state_dict()``."""
        return {"optimizer": self.optimizer.state_dict(), "algorithm": self.extra_state()}

    def set_extra_state(self, state: Mapping[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.load_extra_state(state["algorithm"])

    # ------------------------------------------------------------------ CUDA graphs
    @property
    def graphed_step(self) -> GraphedStep:
        """The CUDA-graph runner of :meth:`step` (created on first use)."""
        if self._graphed is None:
            self._graphed = GraphedStep(self.step, self.model, self.optimizer, self.hparams["channels_last"])
        return self._graphed

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles drop the captured graph; it is rebuilt on demand."""
        state = self.__dict__.copy()
        state["_graphed"] = None
        return state


def as_floats(stats: Mapping[str, torch.Tensor | float]) -> dict[str, float]:
    """Statistics as Python floats, with one device synchronisation for all the tensors among them."""
    tensors = [key for key, value in stats.items() if torch.is_tensor(value)]
    values = torch.stack([stats[k].detach().float().reshape(()) for k in tensors]).tolist() if tensors else []
    converted = dict(zip(tensors, values))
    return {key: converted[key] if key in converted else float(value) for key, value in stats.items()}
