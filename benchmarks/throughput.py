"""Training-step throughput of every algorithm on random data: img/s, ms/step, peak memory, ratio to ERM.

    python -m benchmarks.throughput --device cuda --backbone efficientnet_b4 --size 256 \
        --batch 32 --domains 4 --steps 20 --precision bf16 --channels-last

``--batch`` is the number of images per update, split evenly over ``--domains`` source domains
(the algorithm interface: one ``(x_k, y_k)`` per domain). Every algorithm is timed through the library's own
``build_algorithm(...).update()``; ``bare`` is a plain timm loop on the pooled batch (forward,
cross-entropy, backward, ``optimizer.step()``, ``zero_grad()``, one ``loss.item()``) with the same
optimizer, precision and layout, the reference for ERM; ``plain-<algorithm>`` are plain PyTorch loops
of every other update (``benchmarks/reference_loops.py``), whose lines give each library algorithm
its ``ratio_to_plain``. ``--warmup`` untimed
steps come first (with ``cuda_graph`` the first two are eager and the third captures). Output: one
JSON line per algorithm (repeated names count once) with ``algorithm``, ``img_s``, ``ms_per_step``,
``peak_mem_gib`` (CUDA: peak allocated memory of that algorithm's run; CPU: the process's peak
resident memory so far), ``ratio_to_erm`` (img/s over ERM's in the same invocation; null without
ERM) and ``ratio_to_plain`` (over its plain reference loop's, where one was measured), plus the
configuration and ``environment`` (device name, library versions, date).
With ``--repeats N`` the algorithms are timed in N alternating rounds and each line is the median
run, with every run's img/s in ``img_s_runs``; ``--threads`` sets PyTorch's CPU thread count.
On a CPU the process keeps freed memory mapped (:mod:`workbench.training.host_memory`), as the trainer
does.
Each line is printed as soon as it is final. An algorithm whose measurement fails (e.g. out of
memory) gets an error line (``error_type``, ``error``) instead, is not run again, and makes the exit
status 1; the others are still measured."""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from benchmarks.reference_loops import REFERENCE_LOOPS, reference_loop
from workbench.algorithms import ALGORITHMS as REGISTRY
from workbench.algorithms import Algorithm, build_algorithm, build_optimizer, default_hparams, hparam_spec
from workbench.models import create_model
from workbench.training.host_memory import keep_freed_memory

PLAIN = "plain-"  # a plain PyTorch reference loop of an algorithm (benchmarks.reference_loops); "bare" is ERM's
ALGORITHMS = ("bare", *REGISTRY, *(PLAIN + name for name in REFERENCE_LOOPS))


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark setting (shared by every algorithm timed in it)."""

    device: str = "cuda"
    backbone: str = "efficientnet_b4"
    size: int = 256
    batch: int = 32
    domains: int = 4
    steps: int = 20
    warmup: int = 3
    precision: str = "auto"
    cuda_graph: bool = True
    channels_last: bool = False
    domain_passes: str = "sequential"
    cudnn_benchmark: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch % self.domains:
            raise ValueError(f"--batch {self.batch} must be divisible by --domains {self.domains}")
        if self.steps < 1 or self.warmup < 0:
            raise ValueError(f"--steps must be >= 1 and --warmup >= 0 (got {self.steps}, {self.warmup})")

    def hparams(self, name: str) -> dict:
        """The execution switches of this setting that algorithm ``name`` accepts (others use its defaults)."""
        switches = {
            "precision": self.precision,
            "cuda_graph": self.cuda_graph,
            "channels_last": self.channels_last,
            "domain_passes": self.domain_passes,
        }
        return {key: value for key, value in switches.items() if key in hparam_spec(name)}


def random_batches(config: BenchConfig) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One random ``(x_k, y_k)`` per domain on the benchmark device (normal images, balanced labels)."""
    gen = torch.Generator().manual_seed(config.seed)
    per_domain = config.batch // config.domains
    batches = []
    for _ in range(config.domains):
        x = torch.randn(per_domain, 3, config.size, config.size, generator=gen)
        y = torch.arange(per_domain) % 2
        batches.append((x.to(config.device), y.to(config.device)))
    return batches


def bare_training_step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, precision: str, channels_last: bool
) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """A plain timm training step on one pooled batch: forward, cross-entropy, backward, ``step()``,
    ``zero_grad()`` and one ``loss.item()`` (the trainer's one synchronisation), with the
    algorithms' precision rules (``auto`` = bf16 autocast on CUDA) and memory layout."""
    from workbench.algorithms.execution import full_precision, tf32_math

    device_type = next(model.parameters()).device.type
    bf16 = precision == "bf16" or (precision == "auto" and device_type == "cuda")
    if channels_last:
        model.to(memory_format=torch.channels_last)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with tf32_math(precision == "tf32"):
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(x)
            loss = F.cross_entropy(full_precision(logits), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        loss.item()

    return step


def bare_step(config: BenchConfig) -> Callable[[], None]:
    """:func:`bare_training_step` on the pooled random batch, with the algorithms' default optimizer."""
    model = create_model(config.backbone, num_classes=2).to(config.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4, weight_decay=5e-4)
    x, y = Algorithm.pooled(random_batches(config))
    train_step = bare_training_step(model, optimizer, config.precision, config.channels_last)

    def step() -> None:
        train_step(x, y)

    step.model = model
    return step


def plain_step(config: BenchConfig, name: str) -> Callable[[], None]:
    """A reference loop of :mod:`benchmarks.reference_loops` with the algorithm's default hyper-parameters."""
    algorithm = name[len(PLAIN) :]
    hparams = default_hparams(algorithm)
    model = create_model(config.backbone, num_classes=2).to(config.device)
    train_step = reference_loop(algorithm, model, build_optimizer(list(model.parameters()), hparams), hparams)
    batches = random_batches(config)

    def step() -> None:
        train_step(batches)

    step.model = model
    return step


def reference_of(name: str) -> str | None:
    """The plain loop an algorithm's throughput is compared with (``bare`` for ERM), if there is one."""
    if name == "erm":
        return "bare"
    return PLAIN + name if name in REFERENCE_LOOPS else None


def algorithm_step(config: BenchConfig, name: str) -> Callable[[], None]:
    """``update()`` of a library algorithm on fixed random per-domain batches."""
    model = create_model(config.backbone, num_classes=2).to(config.device)
    algorithm = build_algorithm(name, model, config.hparams(name), num_domains=config.domains)
    batches = random_batches(config)

    def step() -> None:
        algorithm.update(batches)

    step.algorithm = algorithm
    return step


def synchronize(device: str | torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU), so that timings cover it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def measure(config: BenchConfig, name: str) -> dict:
    """Time ``config.steps`` steps of one algorithm after ``config.warmup`` untimed ones."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; choose from {list(ALGORITHMS)}")
    cuda = torch.device(config.device).type == "cuda"
    torch.manual_seed(config.seed)
    if cuda:
        torch.backends.cudnn.benchmark = config.cudnn_benchmark
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(config.device)
    if name == "bare":
        step = bare_step(config)
    elif name.startswith(PLAIN):
        step = plain_step(config, name)
    else:
        step = algorithm_step(config, name)
    for _ in range(config.warmup):
        step()
    synchronize(config.device)
    start = time.perf_counter()
    for _ in range(config.steps):
        step()
    synchronize(config.device)
    elapsed = time.perf_counter() - start
    if cuda:
        peak = torch.cuda.max_memory_allocated(config.device) / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    result = {
        "algorithm": name,
        "img_s": config.batch * config.steps / elapsed,
        "ms_per_step": 1000.0 * elapsed / config.steps,
        "peak_mem_gib": peak,
        "ratio_to_erm": None,
        "ratio_to_plain": None,
        **asdict(config),
    }
    algorithm = getattr(step, "algorithm", None)
    if algorithm is not None and cuda and config.cuda_graph:
        runner = algorithm.graphed_step
        result["graph_replays"] = runner.replays
        result["graph_failure"] = runner.failure
    del step, algorithm
    if cuda:
        gc.collect()
        torch.cuda.empty_cache()
    return result


def run(
    config: BenchConfig, algorithms: Sequence[str], emit: Callable[[dict], None] | None = None, repeats: int = 1
) -> list[dict]:
    """Measure ``algorithms`` (repeated names count once) ``repeats`` times in alternation, ERM first in each round,
    then the plain reference loops, then the rest.

    Each algorithm's line is its median run (by img/s) plus ``img_s_runs``, every run's img/s;
    ``ratio_to_erm`` and ``ratio_to_plain`` compare medians. Alternating rounds spread slow drifts of a
    shared machine (frequency, other jobs) over all algorithms instead of penalising whichever runs
    first. A line is emitted as soon as it is final: in the last round, once its own run and those of
    ERM and of its reference loop (where measured) are done; or at once as an error line (see
    :func:`failure_line`) when a run raises; a failed algorithm is not run again.
    """
    if repeats < 1:
        raise ValueError(f"--repeats must be >= 1 (got {repeats})")
    emit = emit or (lambda result: None)
    order = sorted(dict.fromkeys(algorithms), key=_measuring_rank)
    runs: dict[str, list[dict]] = {name: [] for name in order}
    results: list[dict] = []
    finished: set[str] = set()
    pending: list[str] = []

    def median(name: str | None) -> float | None:
        return median_run(runs[name])["img_s"] if name in finished else None

    def emit_ready() -> None:
        for name in list(pending):
            needs = [n for n in ("erm", reference_of(name)) if n is not None and n != name and n in runs]
            if all(n in finished for n in needs):
                pending.remove(name)
                results.append(median_line(runs[name], repeats, median("erm"), median(reference_of(name))))
                emit(results[-1])

    for round_index in range(repeats):
        for name in order:
            if name not in runs:
                continue
            try:
                runs[name].append(measure(config, name))
            except Exception as error:  # noqa: BLE001 - one failed algorithm must not lose the others' lines
                del runs[name]
                results.append(failure_line(config, name, error, repeats))
                emit(results[-1])
            else:
                if round_index == repeats - 1:
                    finished.add(name)
                    pending.append(name)
            if round_index == repeats - 1:
                emit_ready()
    return results


def _measuring_rank(name: str) -> int:
    """ERM first (every ratio's reference), then the plain loops (each algorithm's reference), then the rest."""
    return 0 if name == "erm" else 1 if name == "bare" or name.startswith(PLAIN) else 2


def median_line(runs: Sequence[dict], repeats: int, erm_img_s: float | None, plain_img_s: float | None = None) -> dict:
    """An algorithm's line: its median run, every run's img/s and the ratios to ERM's median and to its plain
    reference loop's median (:func:`reference_of`), where those were measured."""
    line = {**median_run(runs), "img_s_runs": [r["img_s"] for r in runs], "repeats": repeats}
    line["ratio_to_erm"] = None if erm_img_s is None else line["img_s"] / erm_img_s
    line["ratio_to_plain"] = None if plain_img_s is None else line["img_s"] / plain_img_s
    return line


def failure_line(config: BenchConfig, name: str, error: Exception, repeats: int) -> dict:
    """The line of an algorithm whose measurement raised: the error's type and message, and the configuration."""
    return {
        "algorithm": name,
        "error_type": type(error).__name__,
        "error": str(error),
        "repeats": repeats,
        **asdict(config),
    }


def median_run(runs: Sequence[dict]) -> dict:
    """The run with the median img/s (the lower middle one for an even count)."""
    ranked = sorted(runs, key=lambda r: r["img_s"])
    return ranked[(len(ranked) - 1) // 2]


def environment(device: str | torch.device = "cuda") -> dict:
    """Where a measurement ran: UTC date, device name (GPU or CPU model), library versions."""
    import timm

    device = torch.device(device)
    record = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "python": platform.python_version(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        record.update(sm_count=props.multi_processor_count, memory_gib=round(props.total_memory / 2**30, 1))
    return record


def cpu_model() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` on Linux), or the architecture where that is unknown."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def parse_args(argv: Sequence[str] | None = None) -> tuple[BenchConfig, list[str], int, int | None]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.throughput",
        description="Time the update() of every registered algorithm (and a bare timm loop) on random data; "
        "print one JSON line per algorithm.",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backbone", default="efficientnet_b4", help="any timm model name")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--batch", type=int, default=32, help="images per update, split evenly over the domains")
    parser.add_argument("--domains", type=int, default=4, help="number of source domains K")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (>= 3 to time CUDA-graph replays)")
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32", "tf32"))
    parser.add_argument(
        "--algorithms", default=",".join(ALGORITHMS), help=f"comma-separated subset of {','.join(ALGORITHMS)}"
    )
    parser.add_argument(
        "--no-cuda-graph", dest="cuda_graph", action="store_false", help="run every update eagerly (no CUDA graph)"
    )
    parser.add_argument("--channels-last", action="store_true", help="NHWC weights and inputs")
    parser.add_argument(
        "--domain-passes",
        default="sequential",
        choices=("sequential", "concurrent"),
        help="RoGA's per-domain passes: one after the other, or overlapped on CUDA streams",
    )
    parser.add_argument(
        "--no-cudnn-benchmark",
        dest="cudnn_benchmark",
        action="store_false",
        help="use cuDNN's heuristics instead of autotuning each convolution shape",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="alternating rounds over the algorithms; each line reports the median run",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads before timing (CPU runs: 1 avoids oversubscription)",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1 (got {args.repeats})")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1 (got {args.threads})")
    algorithms = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    unknown = sorted(set(algorithms) - set(ALGORITHMS))
    if unknown or not algorithms:
        parser.error(f"--algorithms: unknown {unknown}; choose from {','.join(ALGORITHMS)}")
    try:
        config = BenchConfig(
            device=args.device,
            backbone=args.backbone,
            size=args.size,
            batch=args.batch,
            domains=args.domains,
            steps=args.steps,
            warmup=args.warmup,
            precision=args.precision,
            cuda_graph=args.cuda_graph,
            channels_last=args.channels_last,
            domain_passes=args.domain_passes,
            cudnn_benchmark=args.cudnn_benchmark,
            seed=args.seed,
        )
    except ValueError as error:
        parser.error(str(error))
    return config, algorithms, args.repeats, args.threads


def main(argv: Sequence[str] | None = None) -> int:
    config, algorithms, repeats, threads = parse_args(argv)
    if threads is not None:
        torch.set_num_threads(threads)
    if torch.device(config.device).type == "cpu":
        keep_freed_memory()  # as the trainer does; the plain loops share the process, hence the setting
    env = environment(config.device)
    results = run(
        config,
        algorithms,
        repeats=repeats,
        emit=lambda r: print(json.dumps({**r, "threads": torch.get_num_threads(), "environment": env}), flush=True),
    )
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
