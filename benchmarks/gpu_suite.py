"""The GPU measurement suite behind docs/performance.md: correctness of the fast path, then throughput.

    python -m benchmarks.gpu_suite --out DIR [--budget-s 400] [--only efficientnet_b4:32,...]

1. ``correctness.jsonl``: the fast paths (CUDA graph + channels-last, with sequential or concurrent
   domain passes) against
   the plain eager sequential path from identical models, over several steps with fresh batches:
   relative error and cosine of every step's parameter change, and BN running-statistic error.
   Strict fp32 (TF32 off) on a small timm CNN and on EfficientNet-B4; bf16 on EfficientNet-B4.
   Any error (with its traceback) is recorded and the suite goes on.
2. ``trainer.jsonl``: ``benchmarks.trainer_overhead`` at the paper setting (EfficientNet-B4, 256 px,
   batch 32, bf16, channels-last) on the embedded benchmark: the trainer's ERM loop against a bare
   timm loop on the same batches (the issue's ≥ 0.95× goal).
3. ``throughput.jsonl``: ERM/SAM/SAGM/RoGA (+ the bare timm loop and the eager variants) × bf16/TF32 ×
   EfficientNet-B4/Xception × batch 32/128, paper setting first. Each line is a
   ``benchmarks.throughput.measure`` result plus a ``variant`` label.
4. ``nccl.jsonl``: a one-process NCCL group: the update's all-reduce captured inside the CUDA graph.

Everything is flushed line by line; a run that reaches ``--budget-s`` skips the rest and says so.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import socket
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks.throughput import BenchConfig, measure
from workbench.algorithms import build_algorithm
from workbench.models import create_model

BACKBONES = ("efficientnet_b4", "legacy_xception")
BATCHES = (32, 128)
PRECISIONS = ("bf16", "tf32")

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
LAYOUT_VARIANTS = [
    ("erm-nchw", "erm", {"channels_last": False}),
    ("roga-nchw", "roga", {"channels_last": False}),
    ("bare-nchw", "bare", {"channels_last": False}),
]


class Suite:
    def __init__(self, out: Path, budget_s: float) -> None:
        self.out = out
        self.budget_s = budget_s
        self.start = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def over_budget(self) -> bool:
        return self.elapsed() > self.budget_s

    def write(self, name: str, record: dict) -> None:
        record = {**record, "t_s": round(self.elapsed(), 1)}
        with open(self.out / name, "a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)


def environment() -> dict:
    import timm

    props = torch.cuda.get_device_properties(0)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(0),
        "sm_count": props.multi_processor_count,
        "memory_gib": round(props.total_memory / 2**30, 1),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "python": platform.python_version(),
    }


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


def compare_paths(backbone: str, name: str, precision: str, fast_hp: dict, size: int, k: int, n: int,
                  steps: int, optimizer: str) -> dict:
    """Run the fast and the plain path side by side; report per-step agreement of the parameter changes."""
    torch.manual_seed(0)
    base = create_model(backbone, num_classes=2).cuda()
    hp = {"optimizer": optimizer, "lr": 1e-3 if optimizer == "sgd" else 1e-4, "momentum": 0.9,
          "rho": 0.05, "alpha": 0.001, "precision": precision}
    fast = build_algorithm(name, copy.deepcopy(base), {**hp, **fast_hp})
    slow = build_algorithm(name, copy.deepcopy(base), {**hp, "cuda_graph": False, "domain_passes": "sequential"})
    rows = []
    for step in range(steps):
        batches = _batches(step, k, n, size)
        before_fast, before_slow = _vector(fast.model), _vector(slow.model)
        stats_fast = fast.update(batches)
        stats_slow = slow.update(batches)
        d_fast, d_slow = _vector(fast.model) - before_fast, _vector(slow.model) - before_slow
        rows.append({
            "step": step,
            "rel_err": ((d_fast - d_slow).norm() / d_slow.norm()).item(),
            "cosine": torch.nn.functional.cosine_similarity(d_fast, d_slow, dim=0).item(),
            "loss_fast": stats_fast["loss"], "loss_slow": stats_slow["loss"],
        })
    running_err = ((_running(fast.model) - _running(slow.model)).norm() / _running(slow.model).norm()).item()
    theta_err = ((_vector(fast.model) - _vector(slow.model)).norm() / _vector(slow.model).norm()).item()
    runner = fast.graphed_step if fast._graphed is not None else None
    return {
        "backbone": backbone, "algorithm": name, "precision": precision, "optimizer": optimizer, "fast": fast_hp,
        "size": size, "domains": k, "per_domain": n, "steps": rows,
        "max_rel_err": max(r["rel_err"] for r in rows), "min_cosine": min(r["cosine"] for r in rows),
        "final_param_rel_err": theta_err, "running_stats_rel_err": running_err,
        "graph_replays": None if runner is None else runner.replays,
        "graph_failure": None if runner is None else runner.failure,
    }


def correctness(suite: Suite, quick: bool = False) -> None:
    strict = dict(cudnn=torch.backends.cudnn.allow_tf32, matmul=torch.backends.cuda.matmul.allow_tf32)
    graph = {"cuda_graph": True, "channels_last": True}
    overlap = {**graph, "domain_passes": "concurrent"}
    fp32 = [("resnet18", a, "fp32", graph, 64, 4, 4, 5, "sgd") for a in ("erm", "sam", "sagm", "roga")]
    fp32 += [("resnet18", "roga", "fp32", overlap, 64, 4, 4, 5, "sgd")]
    fp32 += [("efficientnet_b4", "roga", "fp32", fast, 128, 4, 4, 4, "sgd") for fast in (graph, overlap)]
    fp32 += [("resnet18", a, "fp32", graph, 64, 4, 4, 5, "adam") for a in ("erm", "roga")]
    mixed = [("efficientnet_b4", "roga", p, fast, 256, 4, 8, 4, "sgd") for p in ("bf16", "tf32") for fast in (graph, overlap)]
    if quick:
        fp32 = [c for c in fp32 if c[1] in ("erm", "roga") and c[-1] == "sgd"]
        mixed = [c for c in mixed if c[2] == "bf16"]
    for case in fp32 + mixed:
        if suite.over_budget():
            suite.write("correctness.jsonl", {"skipped": list(map(str, case))})
            continue
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = case[2] != "fp32"
        try:
            suite.write("correctness.jsonl", compare_paths(*case))
        except Exception:  # noqa: BLE001 - report and go on
            suite.write("correctness.jsonl", {"case": list(map(str, case)), "error": traceback.format_exc()[-3000:]})
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = strict["cudnn"], strict["matmul"]


# ------------------------------------------------------------------------------------- throughput

def plan(only: set[str] | None) -> list[tuple[str, str, int, str, str, dict]]:
    """(backbone, precision, batch, variant, algorithm, overrides), most important first.

    Order: the paper setting's ERM/RoGA/bare, then ERM/RoGA at every other setting, then the rest,
    so that a run cut short by its budget still answers the main question.
    """
    settings = [(bb, batch) for batch in BATCHES for bb in BACKBONES]
    variants = {label: (name, overrides) for label, name, overrides in VARIANTS + LAYOUT_VARIANTS}
    tiers = [
        [("efficientnet_b4", 32, v) for v in ("erm", "roga", "roga-concurrent", "bare", "erm-eager")],
        [(bb, batch, v) for bb, batch in settings[1:] for v in ("erm", "roga", "roga-concurrent")],
        [("efficientnet_b4", 32, v) for v in ("sam", "sagm", "roga-eager-loop")],
        [(bb, batch, v) for bb, batch in settings[1:] for v in ("sam", "sagm", "bare")],
        [("efficientnet_b4", 32, v) for v in ("erm-nchw", "roga-nchw", "bare-nchw")],
        [(bb, batch, v) for bb, batch in settings[1:] for v in ("erm-eager", "roga-eager-loop")],
    ]
    out = []
    for tier in tiers:
        for backbone, batch, label in tier:
            if only and f"{backbone}:{batch}" not in only:
                continue
            for precision in PRECISIONS:
                name, overrides = variants[label]
                out.append((backbone, precision, batch, label, name, overrides))
    return out


def throughput(suite: Suite, only: set[str] | None, steps: int, cudnn_benchmark: bool) -> None:
    for backbone, precision, batch, label, name, overrides in plan(only):
        if suite.over_budget():
            suite.write("throughput.jsonl", {"skipped": label, "backbone": backbone, "batch": batch,
                                             "precision": precision})
            continue
        base = BenchConfig(device="cuda", backbone=backbone, size=256, batch=batch, domains=4,
                           steps=steps if batch == 32 else max(steps // 2, 5), warmup=3,
                           precision=precision, channels_last=True, cudnn_benchmark=cudnn_benchmark)
        config = replace(base, **overrides)
        try:
            result = measure(config, name)
        except Exception:  # noqa: BLE001 - report and go on
            result = {"algorithm": name, **config.__dict__, "error": traceback.format_exc()[-2000:]}
            torch.cuda.empty_cache()
        suite.write("throughput.jsonl", {"variant": label, **result})


# ------------------------------------------------------------------------------------- trainer overhead

TRAINER_SETTING = ["train.device=cuda", "train.cpu_threads=null", "model.name=efficientnet_b4",
                   "data.image_size=256", "data.batch_size=32", "data.workers=0",
                   "algorithm.hparams.precision=bf16", "algorithm.hparams.channels_last=true"]


def trainer_overhead(suite: Suite, steps: int) -> None:
    from benchmarks.trainer_overhead import erm_config, run

    try:
        config = erm_config("configs/demo.yaml", TRAINER_SETTING, steps)
        run(config, repeats=2, emit=lambda record: suite.write("trainer.jsonl", record))
    except Exception:  # noqa: BLE001 - report and go on
        suite.write("trainer.jsonl", {"error": traceback.format_exc()[-2000:]})


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
        suite.write("nccl.jsonl", {"replays": graphed.graphed_step.replays, "failure": graphed.graphed_step.failure,
                                   "param_rel_err": err})
    except Exception:  # noqa: BLE001
        suite.write("nccl.jsonl", {"error": traceback.format_exc()[-2000:]})
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


# ------------------------------------------------------------------------------------- summary

def summary(out: Path) -> None:
    path = out / "throughput.jsonl"
    if not path.exists():
        return
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows = [r for r in rows if "img_s" in r]
    print("\nbackbone          batch prec  variant            img/s   ms/step  GiB   x best ERM  graph")
    for backbone in BACKBONES:
        for batch in BATCHES:
            group = [r for r in rows if r["backbone"] == backbone and r["batch"] == batch]
            erms = [r["img_s"] for r in group if r["algorithm"] == "erm"]
            best = max(erms) if erms else float("nan")
            for r in group:
                graph = r.get("graph_replays", "-")
                print(f"{backbone:17s} {batch:5d} {r['precision']:5s} {r['variant']:17s} {r['img_s']:7.0f} "
                      f"{r['ms_per_step']:8.1f} {r['peak_mem_gib']:5.1f} {r['img_s'] / best:8.2f}   {graph}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_suite_out")))
    parser.add_argument("--budget-s", type=float, default=400.0, help="skip what would start after this many seconds")
    parser.add_argument("--steps", type=int, default=15, help="timed steps at batch 32 (half at batch 128)")
    parser.add_argument("--only", default="", help="comma list of backbone:batch settings to time (default all)")
    parser.add_argument("--quick", action="store_true", help="fewer correctness cases")
    parser.add_argument("--cudnn-benchmark", action="store_true",
                        help="autotune convolutions (steadier timings, but ~30-40 s per new shape and dtype on EfficientNet-B4)")
    parser.add_argument("--skip", default="",
                        help="comma list of sections to skip: correctness,trainer,throughput,nccl")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("the GPU suite needs a CUDA device", file=sys.stderr)
        return 2
    suite = Suite(args.out, args.budget_s)
    env = environment()
    (args.out / "env.json").write_text(json.dumps(env, indent=1))
    print(json.dumps(env), flush=True)
    skip = set(filter(None, args.skip.split(",")))
    only = set(filter(None, args.only.split(","))) or None
    if "correctness" not in skip:
        correctness(suite, args.quick)
    if "trainer" not in skip and not suite.over_budget():
        trainer_overhead(suite, steps=args.steps)
    if "throughput" not in skip:
        throughput(suite, only, args.steps, args.cudnn_benchmark)
    if "nccl" not in skip and not suite.over_budget():
        nccl_capture(suite)
    summary(args.out)
    print(f"suite done in {suite.elapsed():.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
