"""The GPU measurement suite behind docs/performance.md: the main question first, then the rest.

    python -m benchmarks.gpu_suite --out DIR [--budget-s 400] [--only efficientnet_b4:32,...]

Records (one JSON line each, flushed as it is made):

- ``throughput.jsonl``: ERM/SAM/SAGM/RoGA (+ the bare timm loop and the eager variants) × bf16/TF32 ×
  EfficientNet-B4/Xception × batch 32/128. Each line is a ``benchmarks.throughput.measure`` result
  plus a ``variant`` label, the run's ``environment`` and ``ratio_to_erm`` (see :class:`ErmReference`).
- ``correctness.jsonl``: the fast paths (CUDA graph + channels-last, with sequential or concurrent
  domain passes) against the plain eager sequential path from identical models, over several steps
  with fresh batches: relative error and cosine of every step's parameter change, and BN
  running-statistic error. Strict fp32 (TF32 off) on a small timm CNN and on EfficientNet-B4; bf16
  and TF32 on EfficientNet-B4.
- ``trainer.jsonl``: ``benchmarks.trainer_overhead`` at the paper setting (EfficientNet-B4, 256 px,
  batch 32, bf16, channels-last) on the embedded benchmark: the trainer's ERM loop against a bare
  timm loop on the same batches (goal in docs/performance.md).
- ``nccl.jsonl``: a one-process NCCL group: the update's all-reduce captured inside the CUDA graph.

Order (:func:`sections`), most important first, so that a run cut short still answers the main
question (RoGA against ERM at the paper setting, concurrent against sequential domain passes):

1. throughput tier 1: ERM, RoGA (sequential and concurrent), the bare loop and eager ERM at the paper
   setting (EfficientNet-B4, batch 32), bf16 and TF32;
2. correctness of the concurrent path on EfficientNet-B4 (strict fp32);
3. the trainer against a bare loop;
4. the other correctness cases;
5. the rest of the throughput plan;
6. NCCL.

A failed case is recorded with its traceback and the suite goes on, after releasing CUDA memory
best-effort. If that release fails too (a sticky CUDA error such as ``misaligned address``), that
failure is recorded and every remaining case and section is skipped. Once ``--budget-s`` is reached
the rest is skipped as well. Every skipped case or section gets a line with ``skipped`` and ``reason``.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import socket
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import torch

from benchmarks.throughput import BenchConfig, environment, measure
from workbench.algorithms import ALGORITHMS, build_algorithm, hparam_spec
from workbench.models import create_model

BACKBONES = ("efficientnet_b4", "legacy_xception")
BATCHES = (32, 128)
PRECISIONS = ("bf16", "tf32")
SIZE = 256

# (variant label, algorithm, overrides of BenchConfig)
VARIANTS = [
    ("erm", "erm", {}),
    ("bare", "bare", {}),
    ("erm-eager", "erm", {"cuda_graph": False}),
    ("sam", "sam", {}),
    ("sagm", "sagm", {}),
    ("roga", "roga", {}),
    ("roga-concurrent", "roga", {"domain_passes": "concurrent"}),
    ("roga-eager-loop", "roga", {"cuda_graph": False, "domain_passes": "sequential", "steps": 4, "warmup": 2}),
]
# every other registered algorithm, at the paper setting only
BASELINES = [name for name in ALGORITHMS if name not in {algorithm for _, algorithm, _ in VARIANTS}]
VARIANTS += [(name, name, {}) for name in BASELINES]
LAYOUT_VARIANTS = [
    ("erm-nchw", "erm", {"channels_last": False}),
    ("roga-nchw", "roga", {"channels_last": False}),
    ("bare-nchw", "bare", {"channels_last": False}),
]
# (variant label, algorithm, timed configuration)
Cell = tuple[str, str, BenchConfig]


class Suite:
    """Where records go, the time budget, the run's environment, and whether the device is still usable."""

    def __init__(self, out: Path, budget_s: float, env: dict | None = None) -> None:
        self.out = out
        self.budget_s = budget_s
        self.env = env or {}
        self.cuda_failure: str | None = None
        self.start = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def over_budget(self) -> bool:
        return self.elapsed() > self.budget_s

    def skip_reason(self) -> str | None:
        """Why work that would start now is skipped (an unusable device, the budget), or None."""
        if self.cuda_failure is not None:
            return f"CUDA unusable after an earlier error ({self.cuda_failure})"
        if self.over_budget():
            return f"over the {self.budget_s:g} s budget"
        return None

    def write(self, name: str, record: dict) -> None:
        record = {**record, "t_s": round(self.elapsed(), 1)}
        with open(self.out / name, "a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)

    def release_cuda(self, name: str, context: dict) -> None:
        """Free CUDA memory after a failed case, best-effort.

        If that fails too, the device is in a sticky error state: the failure is recorded in ``name``
        and every later case and section is skipped (see :meth:`skip_reason`).
        """
        try:
            gc.collect()
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
        except Exception as error:  # noqa: BLE001 - recorded, never raised
            self.cuda_failure = f"{type(error).__name__}: {error}"[:1000]
            self.write(
                name, {**context, "cleanup_error": self.cuda_failure, "skipping": "every remaining case and section"}
            )


# ------------------------------------------------------------------------------------- correctness


def _batches(step: int, k: int, n: int, size: int, channels_last: bool = False):
    gen = torch.Generator().manual_seed(1000 + step)
    out = []
    for i in range(k):
        x = torch.randn(n, 3, size, size, generator=gen) + 0.2 * i
        out.append((x.cuda(), torch.randint(0, 2, (n,), generator=gen).cuda()))
    return out


def _vector(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().double().reshape(-1) for p in model.parameters()])


def _running(model: torch.nn.Module) -> torch.Tensor:
    stats = [b.detach().double().reshape(-1) for n, b in model.named_buffers() if "running" in n]
    return torch.cat(stats) if stats else torch.zeros(1, device="cuda")


def compare_paths(
    backbone: str, name: str, precision: str, fast_hp: dict, size: int, k: int, n: int, steps: int, optimizer: str
) -> dict:
    """Run the fast and the plain path side by side; report per-step agreement of the parameter changes."""
    torch.manual_seed(0)
    base = create_model(backbone, num_classes=2).cuda()
    spec = hparam_spec(name)
    hp = {"optimizer": optimizer, "lr": 1e-3 if optimizer == "sgd" else 1e-4, "momentum": 0.9, "precision": precision}
    plain = {key: value for key, value in {"cuda_graph": False, "domain_passes": "sequential"}.items() if key in spec}
    fast = build_algorithm(name, copy.deepcopy(base), {**hp, **fast_hp}, num_domains=k)
    slow = build_algorithm(name, copy.deepcopy(base), {**hp, **plain}, num_domains=k)
    rows = []
    for step in range(steps):
        batches = _batches(step, k, n, size)
        before_fast, before_slow = _vector(fast.model), _vector(slow.model)
        stats_fast = fast.update(batches)
        stats_slow = slow.update(batches)
        d_fast, d_slow = _vector(fast.model) - before_fast, _vector(slow.model) - before_slow
        rows.append(
            {
                "step": step,
                "rel_err": ((d_fast - d_slow).norm() / d_slow.norm()).item(),
                "cosine": torch.nn.functional.cosine_similarity(d_fast, d_slow, dim=0).item(),
                "loss_fast": stats_fast["loss"],
                "loss_slow": stats_slow["loss"],
            }
        )
    running_err = ((_running(fast.model) - _running(slow.model)).norm() / _running(slow.model).norm()).item()
    theta_err = ((_vector(fast.model) - _vector(slow.model)).norm() / _vector(slow.model).norm()).item()
    runner = fast.graphed_step if fast._graphed is not None else None
    return {
        "backbone": backbone,
        "algorithm": name,
        "precision": precision,
        "optimizer": optimizer,
        "fast": fast_hp,
        "size": size,
        "domains": k,
        "per_domain": n,
        "steps": rows,
        "max_rel_err": max(r["rel_err"] for r in rows),
        "min_cosine": min(r["cosine"] for r in rows),
        "final_param_rel_err": theta_err,
        "running_stats_rel_err": running_err,
        "graph_replays": None if runner is None else runner.replays,
        "graph_failure": None if runner is None else runner.failure,
    }


def correctness_cases(quick: bool = False) -> list[tuple]:
    """``compare_paths`` arguments; the first is the concurrent path on EfficientNet-B4 in strict fp32."""
    graph = {"cuda_graph": True, "channels_last": True}
    overlap = {**graph, "domain_passes": "concurrent"}
    fp32 = [("efficientnet_b4", "roga", "fp32", fast, 128, 4, 4, 4, "sgd") for fast in (overlap, graph)]
    fp32 += [("resnet18", a, "fp32", graph, 64, 4, 4, 5, "sgd") for a in ALGORITHMS if ALGORITHMS[a].capturable]
    fp32 += [("resnet18", "roga", "fp32", overlap, 64, 4, 4, 5, "sgd")]
    fp32 += [("resnet18", a, "fp32", graph, 64, 4, 4, 5, "adam") for a in ("erm", "roga")]
    mixed = [
        ("efficientnet_b4", "roga", p, fast, 256, 4, 8, 4, "sgd") for p in ("bf16", "tf32") for fast in (graph, overlap)
    ]
    if quick:
        fp32 = [c for c in fp32 if c[1] in ("erm", "roga") and c[-1] == "sgd"]
        mixed = [c for c in mixed if c[2] == "bf16"]
    return fp32 + mixed


def correctness(suite: Suite, cases: Sequence[tuple]) -> None:
    """Write one ``correctness.jsonl`` line per case: its agreement, its error, or why it was skipped."""
    strict = dict(cudnn=torch.backends.cudnn.allow_tf32, matmul=torch.backends.cuda.matmul.allow_tf32)
    for case in cases:
        reason = suite.skip_reason()
        if reason:
            suite.write("correctness.jsonl", {"skipped": list(map(str, case)), "reason": reason})
            continue
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = case[2] != "fp32"
        try:
            suite.write("correctness.jsonl", compare_paths(*case))
        except Exception:  # noqa: BLE001 - report and go on
            suite.write("correctness.jsonl", {"case": list(map(str, case)), "error": traceback.format_exc()[-3000:]})
            suite.release_cuda("correctness.jsonl", {"case": list(map(str, case))})
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = strict["cudnn"], strict["matmul"]


# ------------------------------------------------------------------------------------- throughput


def tiers() -> list[list[tuple[str, int, str]]]:
    """(backbone, batch, variant) groups, most important first.

    Tier 1 is the main question: the paper setting's ERM, RoGA (sequential and concurrent), bare loop
    and eager ERM. Then ERM/RoGA at every other setting, then the rest. ERM comes first at every setting.
    """
    others = [(bb, batch) for batch in BATCHES for bb in BACKBONES][1:]
    return [
        [("efficientnet_b4", 32, v) for v in ("erm", "roga", "roga-concurrent", "bare", "erm-eager")],
        [(bb, batch, v) for bb, batch in others for v in ("erm", "roga", "roga-concurrent")],
        [("efficientnet_b4", 32, v) for v in ("sam", "sagm", "roga-eager-loop")],
        [("efficientnet_b4", 32, v) for v in BASELINES],
        [(bb, batch, v) for bb, batch in others for v in ("sam", "sagm", "bare")],
        [("efficientnet_b4", 32, v) for v in ("erm-nchw", "roga-nchw", "bare-nchw")],
        [(bb, batch, v) for bb, batch in others for v in ("erm-eager", "roga-eager-loop")],
    ]


def plan(only: set[str] | None, start: int = 0, stop: int | None = None) -> list[tuple[str, str, int, str, str, dict]]:
    """(backbone, precision, batch, variant, algorithm, overrides) of tiers ``start:stop``, most important first.

    ``only`` keeps the ``backbone:batch`` settings it names (None: all).
    """
    variants = {label: (name, overrides) for label, name, overrides in VARIANTS + LAYOUT_VARIANTS}
    out = []
    for tier in tiers()[start:stop]:
        for backbone, batch, label in tier:
            if only and f"{backbone}:{batch}" not in only:
                continue
            for precision in PRECISIONS:
                name, overrides = variants[label]
                out.append((backbone, precision, batch, label, name, overrides))
    return out


def cells(rows: Sequence[tuple[str, str, int, str, str, dict]], steps: int, cudnn_benchmark: bool) -> list[Cell]:
    """The timed configuration of each :func:`plan` row (``steps`` at batch 32, half that at larger batches)."""
    out = []
    for backbone, precision, batch, label, name, overrides in rows:
        base = BenchConfig(
            device="cuda",
            backbone=backbone,
            size=SIZE,
            batch=batch,
            domains=4,
            steps=steps if batch == 32 else max(steps // 2, 5),
            warmup=3,
            precision=precision,
            channels_last=True,
            cudnn_benchmark=cudnn_benchmark,
        )
        out.append((label, name, replace(base, **overrides)))
    return out


def setting(config: BenchConfig) -> tuple[str, int, int]:
    """What ``ratio_to_erm`` compares within: backbone, image size and batch."""
    return config.backbone, config.size, config.batch


class ErmReference:
    """The suite's ``ratio_to_erm``: img/s over the best graphed ERM (``erm``, bf16 or TF32) of the same setting.

    A setting's reference is final once every ``erm`` cell of it in the plan has been measured, failed or
    skipped (the plan puts them before the setting's other cells). Lines written before that (in a full
    run: the bf16 ERM line) and lines of a setting whose ERM cells all failed carry null.
    """

    def __init__(self, planned: Sequence[Cell]) -> None:
        self.pending = Counter(setting(config) for label, _, config in planned if label == "erm")
        self.best: dict[tuple[str, int, int], float] = {}

    def add(self, label: str, config: BenchConfig, result: dict) -> None:
        """Account for one attempted cell (``result`` without ``img_s``: failed or skipped)."""
        if label != "erm":
            return
        key = setting(config)
        self.pending[key] -= 1
        if "img_s" in result:
            self.best[key] = max(self.best.get(key, 0.0), result["img_s"])

    def ratio(self, config: BenchConfig, result: dict) -> float | None:
        """``result``'s img/s over its setting's final reference, or None (see the class docstring)."""
        key = setting(config)
        if self.pending[key] > 0 or key not in self.best or "img_s" not in result:
            return None
        return result["img_s"] / self.best[key]


def throughput(suite: Suite, planned: Sequence[Cell], reference: ErmReference) -> None:
    """Write one ``throughput.jsonl`` line per cell: its timing, its error, or why it was skipped."""
    for label, name, config in planned:
        reason = suite.skip_reason()
        if reason:
            reference.add(label, config, {})
            suite.write(
                "throughput.jsonl",
                {
                    "skipped": label,
                    "backbone": config.backbone,
                    "batch": config.batch,
                    "precision": config.precision,
                    "reason": reason,
                },
            )
            continue
        try:
            result = measure(config, name)
        except Exception:  # noqa: BLE001 - report and go on
            result = {"algorithm": name, **asdict(config), "error": traceback.format_exc()[-2000:]}
        reference.add(label, config, result)
        suite.write(
            "throughput.jsonl",
            {"variant": label, **result, "ratio_to_erm": reference.ratio(config, result), "environment": suite.env},
        )
        if "error" in result:
            suite.release_cuda(
                "throughput.jsonl",
                {"variant": label, "backbone": config.backbone, "batch": config.batch, "precision": config.precision},
            )


# ------------------------------------------------------------------------------------- trainer overhead

TRAINER_SETTING = [
    "train.device=cuda",
    "train.cpu_threads=null",
    "model.name=efficientnet_b4",
    "data.image_size=256",
    "data.batch_size=32",
    "data.workers=0",
    "algorithm.hparams.precision=bf16",
    "algorithm.hparams.channels_last=true",
]


def trainer_overhead(suite: Suite, steps: int) -> None:
    from benchmarks.trainer_overhead import erm_config, run

    reason = suite.skip_reason()
    if reason:
        suite.write("trainer.jsonl", {"skipped": "trainer", "reason": reason})
        return
    try:
        config = erm_config("configs/demo.yaml", TRAINER_SETTING, steps)
        run(config, repeats=2, emit=lambda record: suite.write("trainer.jsonl", record))
    except Exception:  # noqa: BLE001 - report and go on
        suite.write("trainer.jsonl", {"error": traceback.format_exc()[-2000:]})
        suite.release_cuda("trainer.jsonl", {"section": "trainer"})


# ------------------------------------------------------------------------------------- NCCL capture


class NcclReducer:
    """A reducer that always calls NCCL's all-reduce (a one-process group would otherwise skip it)."""

    graph_safe = True

    def all_reduce_mean_(self, tensor: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        dist.all_reduce(tensor)
        return tensor.div_(dist.get_world_size())


def nccl_capture(suite: Suite) -> None:
    import torch.distributed as dist

    reason = suite.skip_reason()
    if reason:
        suite.write("nccl.jsonl", {"skipped": "nccl", "reason": reason})
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
        torch.manual_seed(0)
        base = create_model("resnet18", num_classes=2).cuda()
        hp = {"optimizer": "sgd", "lr": 1e-3, "precision": "fp32"}
        graphed = build_algorithm("roga", copy.deepcopy(base), hp)
        graphed.distributed = NcclReducer()
        eager = build_algorithm("roga", copy.deepcopy(base), {**hp, "cuda_graph": False})
        eager.distributed = NcclReducer()
        for step in range(4):
            batches = _batches(step, 4, 4, 64)
            graphed.update(batches)
            eager.update(batches)
        err = ((_vector(graphed.model) - _vector(eager.model)).norm() / _vector(eager.model).norm()).item()
        suite.write(
            "nccl.jsonl",
            {"replays": graphed.graphed_step.replays, "failure": graphed.graphed_step.failure, "param_rel_err": err},
        )
    except Exception:  # noqa: BLE001
        suite.write("nccl.jsonl", {"error": traceback.format_exc()[-2000:]})
    finally:
        leave_process_group(suite)


def leave_process_group(suite: Suite) -> None:
    """Destroy the NCCL group if it exists; a failure (e.g. after a sticky CUDA error) is recorded, not raised."""
    import torch.distributed as dist

    try:
        if dist.is_initialized():
            dist.destroy_process_group()
    except Exception as error:  # noqa: BLE001
        suite.write("nccl.jsonl", {"cleanup_error": f"{type(error).__name__}: {error}"[:1000]})


# ------------------------------------------------------------------------------------- summary


def best_erm(rows: Sequence[dict]) -> dict[tuple[str, int, int], float]:
    """The best graphed ERM img/s (variant ``erm``) of each (backbone, size, batch) among measured rows."""
    best: dict[tuple[str, int, int], float] = {}
    for r in rows:
        if r.get("variant") == "erm" and "img_s" in r:
            key = (r["backbone"], r["size"], r["batch"])
            best[key] = max(best.get(key, 0.0), r["img_s"])
    return best


def summary(out: Path) -> None:
    """Print the measured throughput lines as a table, with each line's ratio to the final best ERM."""
    path = out / "throughput.jsonl"
    if not path.exists():
        return
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows = [r for r in rows if "img_s" in r]
    best = best_erm(rows)
    print("\nbackbone          batch prec  variant            img/s   ms/step  GiB   x best ERM  graph")
    for backbone in BACKBONES:
        for batch in BATCHES:
            for r in [r for r in rows if r["backbone"] == backbone and r["batch"] == batch]:
                reference = best.get((backbone, r["size"], batch), float("nan"))
                graph = r.get("graph_replays", "-")
                print(
                    f"{backbone:17s} {batch:5d} {r['precision']:5s} {r['variant']:17s} {r['img_s']:7.0f} "
                    f"{r['ms_per_step']:8.1f} {r['peak_mem_gib']:5.1f} {r['img_s'] / reference:8.2f}   {graph}"
                )


# ------------------------------------------------------------------------------------- the run


def sections(
    suite: Suite, only: set[str] | None, steps: int, cudnn_benchmark: bool, quick: bool
) -> list[tuple[str, Callable[[], None]]]:
    """The suite's work in priority order: (``--skip`` name, runner). See the module docstring."""
    main_cells = cells(plan(only, stop=1), steps, cudnn_benchmark)
    other_cells = cells(plan(only, start=1), steps, cudnn_benchmark)
    reference = ErmReference(main_cells + other_cells)
    concurrent_check, *other_checks = correctness_cases(quick)
    return [
        ("throughput", lambda: throughput(suite, main_cells, reference)),
        ("correctness", lambda: correctness(suite, [concurrent_check])),
        ("trainer", lambda: trainer_overhead(suite, steps)),
        ("correctness", lambda: correctness(suite, other_checks)),
        ("throughput", lambda: throughput(suite, other_cells, reference)),
        ("nccl", lambda: nccl_capture(suite)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_suite_out")))
    parser.add_argument("--budget-s", type=float, default=400.0, help="skip what would start after this many seconds")
    parser.add_argument("--steps", type=int, default=15, help="timed steps at batch 32 (half at batch 128)")
    parser.add_argument("--only", default="", help="comma list of backbone:batch settings to time (default all)")
    parser.add_argument("--quick", action="store_true", help="fewer correctness cases")
    parser.add_argument(
        "--cudnn-benchmark",
        action="store_true",
        help="autotune convolutions (steadier timings, but ~30-40 s per new shape and dtype on EfficientNet-B4)",
    )
    parser.add_argument(
        "--skip", default="", help="comma list of sections to skip: correctness,trainer,throughput,nccl"
    )
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("the GPU suite needs a CUDA device", file=sys.stderr)
        return 2
    env = environment("cuda")
    suite = Suite(args.out, args.budget_s, env)
    (args.out / "env.json").write_text(json.dumps(env, indent=1))
    print(json.dumps(env), flush=True)
    skip = set(filter(None, args.skip.split(",")))
    only = set(filter(None, args.only.split(","))) or None
    for name, run_section in sections(suite, only, args.steps, args.cudnn_benchmark, args.quick):
        if name not in skip:
            run_section()
    summary(args.out)
    print(f"suite done in {suite.elapsed():.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
