"""Training throughput: cnnlab's trainer beside an idiomatic PyTorch loop and Keras, interleaved.

    .venv/bin/python benchmarks/speed.py                       # every model, 3 rounds
    .venv/bin/python benchmarks/speed.py --models A2,C --rounds 5 --json speed.json
    .venv/bin/python benchmarks/speed.py --keras-python /path/to/tf-venv/bin/python

Each method trains in its own worker process (so TensorFlow's and PyTorch's thread pools never
meet) on synthetic data of the model's real shape. For each model the workers take turns, in a
rotating order, for ``--rounds`` rounds; a round is ``--epochs`` timed epochs (after one
untimed warm-up epoch in the first round) and scores the median epoch. A method's figure is its
fastest round: this machine's memory bandwidth swings from outside, and only interleaved,
repeated timings compare fairly.

Methods: ``cnnlab`` (the trainer as ``cnnlab run`` uses it, fp32), ``cnnlab-bf16`` (the same with
``precision: bf16``), ``pytorch`` (a DataLoader over a TensorDataset, the same nn.Sequential with
standard modules, NCHW), ``keras`` (``model.fit`` on the same architecture, when an interpreter
with ``tensorflow`` is found: this one, or ``--keras-python``). Every method uses the model's
optimizer from its study, batch 64 and all cores.

Achieved GFLOP/s count a training step as three times the forward pass's multiply-adds x 2 and
are set against float32 and bf16 matmul peaks measured through oneDNN in the same run. Peak
RSS is each worker's high-water mark for that model (the data included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# name: (spec file, architecture, variant or None, images per epoch)
MODELS: dict[str, tuple[str, str, Optional[str], int]] = {
    "A1": ("study_a_regularization_cifar10.yaml", "A1", None, 10_000),
    "A2": ("study_a_regularization_cifar10.yaml", "A2", None, 10_000),
    "A3": ("study_a_regularization_cifar10.yaml", "A3", None, 10_000),
    "A3+BN": ("study_a_regularization_cifar10.yaml", "A3", "batchnorm", 10_000),
    "B2+BN": ("study_b_depth_cifar10.yaml", "B2", "batchnorm", 10_000),
    "C": ("study_c_mnist_sweep.yaml", "mnist_net", None, 10_000),
    "E": ("study_e_deep_cifar10.yaml", "E", None, 2_500),  # 6.2M parameters: fewer images per epoch
}
METHODS = ("cnnlab", "cnnlab-bf16", "cnnlab-runs", "cnnlab-bf16-runs", "pytorch", "keras")
# "-runs": as the study executor trains small CNNs, one single-threaded run per core at once;
# the figure is their summed throughput.
CONCURRENT = {"cnnlab-runs": "cnnlab", "cnnlab-bf16-runs": "cnnlab-bf16"}
BATCH = 64
MARK = "@@ "  # result lines from workers; anything else they print (TensorFlow's logs) is ignored


# ---------------------------------------------------------------- shared by workers


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _synthetic(n: int, shape: list[int], classes: int = 10):
    import numpy as np

    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8), rng.integers(0, classes, size=n)


def _reply(payload: dict[str, Any]) -> None:
    sys.stdout.write(MARK + json.dumps(payload) + "\n")
    sys.stdout.flush()


class _Worker:
    """Trains one model per request; the first request of a model warms up first."""

    def __init__(self, method: str):
        self.method = method
        self.ready: Optional[str] = None

    def serve(self) -> None:
        for line in sys.stdin:
            request = json.loads(line)
            if request.get("quit"):
                _reply({"peak_rss_mb": _peak_rss_mb()})
                return
            if self.ready != request["model"]:
                self.prepare(request)
                self.epochs(1, request["images"] // 5)  # warm-up: allocator, oneDNN kernels, XLA-free graph
                self.ready = request["model"]
            seconds = self.epochs(request["epochs"], request["images"])
            _reply({"epoch_seconds": seconds})

    def prepare(self, request: dict[str, Any]) -> None:
        raise NotImplementedError

    def epochs(self, count: int, images: int) -> list[float]:
        raise NotImplementedError


class _TorchWorker(_Worker):
    def prepare(self, request: dict[str, Any]) -> None:
        import torch

        from cnnlab.models.build import build_resolved
        from cnnlab.models.variants import ResolvedLayer
        from cnnlab.train.device import configure_threads

        configure_threads(int(os.environ.get("SPEED_THREADS", "0")) or None)
        self.request = request
        self.images_u8, labels = _synthetic(request["images"], request["input_shape"])
        self.labels = torch.from_numpy(labels).long()
        resolved = [ResolvedLayer.from_dict(item) for item in request["layers"]]
        self.built = build_resolved(resolved, request["input_shape"], 10, generator_seed=0)

    def _optimizer(self, parameters):
        import torch

        spec = self.request["optimizer"]
        if spec["name"] == "adam":
            return torch.optim.Adam(parameters, lr=spec["lr"])
        return torch.optim.SGD(parameters, lr=spec["lr"], momentum=spec.get("momentum", 0.0))


class PyTorchWorker(_TorchWorker):
    """The loop a PyTorch user writes: DataLoader, standard modules, NCHW, running loss."""

    def prepare(self, request: dict[str, Any]) -> None:
        import torch
        from torch.utils.data import TensorDataset

        super().prepare(request)
        model = self.built.module
        for name, child in list(model.named_children()):
            if type(child).__name__ == "Flatten":
                setattr(model, name, torch.nn.Flatten())
        self.model = model
        self.optimizer = self._optimizer(model.parameters())
        x = torch.from_numpy(self.images_u8).float().div_(255.0)
        self.dataset = TensorDataset(x, self.labels)

    def epochs(self, count: int, images: int) -> list[float]:
        import torch.nn.functional as F
        from torch.utils.data import DataLoader, Subset

        data = self.dataset if images >= len(self.dataset) else Subset(self.dataset, range(images))
        loader = DataLoader(data, batch_size=BATCH, shuffle=True)
        seconds = []
        self.model.train()
        for _ in range(count):
            started = time.perf_counter()
            running, correct = 0.0, 0
            for x, y in loader:
                self.optimizer.zero_grad()
                out = self.model(x)
                loss = F.cross_entropy(out, y)
                loss.backward()
                self.optimizer.step()
                running += loss.item()
                correct += (out.argmax(1) == y).sum().item()
            seconds.append(time.perf_counter() - started)
        return seconds


class CnnlabWorker(_TorchWorker):
    """cnnlab's Trainer, fed uint8 images exactly as ``cnnlab run`` feeds it."""

    def __init__(self, method: str):
        super().__init__(method)
        self.precision = "bf16" if method.endswith("bf16") else "fp32"

    def prepare(self, request: dict[str, Any]) -> None:
        import torch

        from cnnlab.data import ArrayDataset

        super().prepare(request)
        images = torch.from_numpy(self.images_u8)
        self.full = ArrayDataset(images, self.labels)
        self.seed = 0

    def epochs(self, count: int, images: int) -> list[float]:
        import torch

        from cnnlab.data import ArrayDataset
        from cnnlab.spec.training import Train
        from cnnlab.train import Normalizer, TrainData, Trainer

        train = self.full if images >= len(self.full) else ArrayDataset(self.full.images[:images],
                                                                        self.full.labels[:images])
        channels = self.full.images.shape[1]
        normalizer = Normalizer(torch.full((1, channels, 1, 1), 1 / 255.0), torch.zeros((1, channels, 1, 1)))
        spec = Train.model_validate({"optimizer": self.request["optimizer"], "batch_size": BATCH,
                                     "epochs": count, "precision": self.precision})
        self.seed += 1
        trainer = Trainer(self.built, TrainData(train, None, None, normalizer), spec, self.seed, torch.device("cpu"))
        result = trainer.fit()
        return [epoch["seconds"] for epoch in result.history]


class KerasWorker(_Worker):
    """``model.fit`` on the same layers, NHWC float32 arrays, TensorFlow's default threading."""

    def prepare(self, request: dict[str, Any]) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import keras

        self.keras = keras
        images, labels = _synthetic(request["images"], request["input_shape"])
        self.x = (images.transpose(0, 2, 3, 1).astype("float32") / 255.0)
        self.y = labels
        self.model = keras_model(keras, request["layers"], request["input_shape"], request["optimizer"])

    def epochs(self, count: int, images: int) -> list[float]:
        seconds: list[float] = []
        self.model.fit(self.x[:images], self.y[:images], batch_size=BATCH, epochs=count, verbose=0,
                       callbacks=[keras_epoch_timer(self.keras, seconds)])
        return seconds


def keras_epoch_timer(keras, seconds: list[float]):
    """A Keras callback appending each epoch's wall time to ``seconds``."""

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.started)

    return Timer()


def keras_model(keras, resolved: list[dict[str, Any]], input_shape: list[int], optimizer: dict[str, Any]):
    """The compiled Keras model of resolved cnnlab layers (``ResolvedLayer.to_dict()``s)."""
    channels, height, width = input_shape
    layers = [keras.Input((height, width, channels))]
    layers += [_keras_layer(keras, item["layer"], item.get("l1", 0.0), item.get("l2", 0.0)) for item in resolved]
    model = keras.Sequential(layers)
    optimizer = (keras.optimizers.Adam(optimizer["lr"]) if optimizer["name"] == "adam"
                 else keras.optimizers.SGD(optimizer["lr"], momentum=optimizer.get("momentum", 0.0)))
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def _keras_layer(keras, item: Any, l1: float = 0.0, l2: float = 0.0):
    """One resolved cnnlab layer item as the Keras layer it stands for."""
    if isinstance(item, str):
        item = {item: {}}
    (kind, body), = item.items()
    L = keras.layers
    penalty = keras.regularizers.L1L2(l1, l2) if (l1 or l2) else None
    if kind == "conv":
        return L.Conv2D(body["filters"], tuple(body["kernel"]), strides=tuple(body["stride"]), padding=body["padding"],
                        dilation_rate=tuple(body["dilation"]), activation=body["activation"], use_bias=body["bias"],
                        kernel_regularizer=penalty)
    if kind in ("maxpool", "avgpool"):
        cls = L.MaxPooling2D if kind == "maxpool" else L.AveragePooling2D
        return cls(tuple(body["size"]), strides=tuple(body["stride"]) if body["stride"] else None,
                   padding=body["padding"])
    if kind == "globalavgpool":
        return L.GlobalAveragePooling2D()
    if kind == "flatten":
        return L.Flatten()
    if kind == "dense":
        return L.Dense(body["units"], activation=body["activation"], use_bias=body["bias"], kernel_regularizer=penalty)
    if kind == "dropout":
        return L.Dropout(body["rate"])
    if kind == "batchnorm":
        return L.BatchNormalization(momentum=body["momentum"], epsilon=body["epsilon"])
    if kind == "activation":
        return L.Activation(body["activation"])
    raise ValueError(f"no Keras layer for {kind}")


WORKERS = {"cnnlab": CnnlabWorker, "cnnlab-bf16": CnnlabWorker, "pytorch": PyTorchWorker, "keras": KerasWorker}


# ---------------------------------------------------------------- the coordinator


def model_request(name: str, models: Optional[dict[str, tuple[str, str, Optional[str], int]]] = None) -> dict[str, Any]:
    """The resolved layers, input shape, study optimizer and batch size of one benchmark model
    (of ``models``, default ``MODELS``: name -> spec file, architecture, variant, images)."""
    from cnnlab.api import load_spec
    from cnnlab.data.registry import known_shape
    from cnnlab.models import build_model
    from cnnlab.models.cost import training_flops
    from cnnlab.spec.layers import item_layer

    spec_file, architecture, variant, images = (models or MODELS)[name]
    study = load_spec(str(EXAMPLES / spec_file))[0]
    shape = list(known_shape(study.dataset)[0])
    built = build_model([item_layer(item) for item in study.architectures[architecture]], shape, 10,
                        study.variants[variant] if variant else None)
    optimizer = study.train.optimizer.model_dump(mode="json")
    return {"model": name, "layers": [item.to_dict() for item in built.resolved], "input_shape": shape,
            "optimizer": {"name": optimizer["name"], "lr": optimizer["lr"], "momentum": optimizer.get("momentum", 0.0)},
            "images": images, "flops_per_image": training_flops(built.layers), "batch_size": study.train.batch_size}


PEAK_SIZE = 2048
# Where bf16 is emulated (an AVX2-only CPU) a 2048-square bf16 matmul has no fast kernel: the probe
# alone took minutes a round there. A small one still gives the (low) emulated rate.
EMULATED_BF16_PEAK_SIZE = 256


def matmul_peaks(threads: int, bf16_native: bool = True) -> dict[str, float]:
    """float32 and bf16 GFLOP/s of a square matmul through oneDNN (fastest of a few); where bf16
    is emulated its matmul is ``EMULATED_BF16_PEAK_SIZE`` square rather than ``PEAK_SIZE``."""
    import torch

    torch.set_num_threads(threads)
    sizes = {"fp32": PEAK_SIZE, "bf16": PEAK_SIZE if bf16_native else EMULATED_BF16_PEAK_SIZE}
    a, b = torch.randn(PEAK_SIZE, PEAK_SIZE), torch.randn(PEAK_SIZE, PEAK_SIZE)
    fp32_a, fp32_b = a.to_mkldnn(), b.to_mkldnn()
    n16 = sizes["bf16"]
    bf16_a, bf16_b = a[:n16, :n16].bfloat16(), b[:n16, :n16].bfloat16()
    calls = {"fp32": lambda: torch._C._nn.mkldnn_linear(fp32_a, fp32_b, None),
             "bf16": lambda: torch.mm(bf16_a, bf16_b)}  # bf16 matmul goes through oneDNN
    peaks = {}
    for name, call in calls.items():
        call()
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(3):
                call()
            best = min(best, (time.perf_counter() - started) / 3)
        peaks[name] = 2 * sizes[name] ** 3 / best / 1e9
    return peaks


def instruction_set() -> dict[str, Any]:
    """The CPU's vector instruction set as PyTorch sees it, oneDNN's cap on it, and whether bf16 is native."""
    import torch

    from cnnlab.train.device import bf16_is_native

    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", lambda: "unknown")()
    return {"isa": capability, "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL"),
            "bf16": "native" if bf16_is_native(torch.device("cpu")) else "emulated"}


def keras_python(explicit: Optional[str]) -> Optional[str]:
    """An interpreter that can import tensorflow: ``--keras-python``, else this one, else none."""
    for candidate in ([explicit] if explicit else [sys.executable]):
        probe = subprocess.run([candidate, "-c", "import tensorflow, keras"], capture_output=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        if probe.returncode == 0:
            return candidate
        if explicit:
            sys.exit(f"error: {explicit} cannot import tensorflow and keras:\n{probe.stderr.decode()[-800:]}")
    return None


class WorkerProcess:
    def __init__(self, method: str, python: str, threads: int = 0):
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
               "SPEED_THREADS": str(threads)}
        self.method = method
        self.process = subprocess.Popen([python, __file__, "--worker", method], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        self.send(request)
        return self.receive()

    def send(self, request: dict[str, Any]) -> None:
        assert self.process.stdin
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.process.stdout
        for line in self.process.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK):])
        raise RuntimeError(f"the {self.method} worker exited (code {self.process.wait()})")

    def close(self) -> float:
        try:
            return self.ask({"quit": True})["peak_rss_mb"]
        finally:
            self.process.wait(timeout=60)


class Method:
    """One method's worker process, or for ``-runs`` methods one single-threaded worker per core."""

    def __init__(self, method: str, python: str, cores: int):
        if method in CONCURRENT:
            self.workers = [WorkerProcess(CONCURRENT[method], python, threads=1) for _ in range(cores)]
        else:
            self.workers = [WorkerProcess(method, python)]

    def images_per_second(self, request: dict[str, Any]) -> float:
        """Trained images per second (summed over concurrent workers), median epoch of each."""
        for worker in self.workers:
            worker.send(request)
        return sum(request["images"] / statistics.median(worker.receive()["epoch_seconds"]) for worker in self.workers)

    def close(self) -> Optional[float]:
        """The summed peak RSS of the method's workers (MB), or None if one died."""
        total = 0.0
        for worker in self.workers:
            try:
                total += worker.close()
            except Exception:  # noqa: BLE001 - a dead worker has no figure; the others still do
                worker.process.kill()
                return None
        return total


def run(models: list[str], methods: list[str], rounds: int, epochs: int, scale: float,
        keras: Optional[str], log=print) -> dict[str, Any]:
    import torch

    threads = len(os.sched_getaffinity(0))
    isa = instruction_set()
    bf16_native = isa["bf16"] == "native"
    log(f"instruction set: {isa['isa']} (ONEDNN_MAX_CPU_ISA={isa['onednn_max_cpu_isa']}); bf16 is {isa['bf16']}")
    if not bf16_native:
        log(f"bf16 is emulated here: the bf16 peak probe multiplies {EMULATED_BF16_PEAK_SIZE}-square matrices "
            f"instead of {PEAK_SIZE}-square ones")
    peaks = {"fp32": 0.0, "bf16": 0.0}
    results: dict[str, Any] = {}
    for name in models:
        request = model_request(name)
        request["images"] = max(BATCH, int(request["images"] * scale))
        request["epochs"] = epochs
        pythons = {method: (keras if method == "keras" else sys.executable) for method in methods}
        workers = {method: Method(method, pythons[method], threads) for method in methods}
        timings: dict[str, list[float]] = {method: [] for method in methods}
        try:
            for number in range(rounds):
                for key, value in matmul_peaks(threads, bf16_native).items():
                    peaks[key] = max(peaks[key], value)
                order = methods[number % len(methods):] + methods[:number % len(methods)]
                for method in order:
                    timings[method].append(workers[method].images_per_second(request))
                    log(f"  {name:6s} round {number + 1}/{rounds} {method:12s} {timings[method][-1]:9,.0f} img/s")
        finally:
            rss = {method: worker.close() for method, worker in workers.items()}
        results[name] = {method: {"images_per_second": max(timings[method]), "rounds": timings[method],
                                  "peak_rss_mb": rss.get(method)} for method in methods}
        results[name]["flops_per_image"] = request["flops_per_image"]
        results[name]["images"] = request["images"]
    torch.set_num_threads(threads)
    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": {**machine(threads, keras), **isa},
            "settings": {"batch_size": BATCH, "rounds": rounds, "epochs_per_round": epochs, "scale": scale},
            "peaks_gflops": peaks, "models": results}


def machine(threads: int, keras: Optional[str]) -> dict[str, Any]:
    import torch

    from cnnlab.train.device import _cpu_name

    info = {"cpu": _cpu_name(), "cores": threads, "python": platform.python_version(), "torch": torch.__version__}
    if keras:
        probe = subprocess.run([keras, "-c", "import tensorflow as tf, keras; print(tf.__version__, keras.__version__)"],
                               capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        versions = probe.stdout.split()
        if len(versions) == 2:
            info["tensorflow"], info["keras"] = versions
    return info


def table(report: dict[str, Any]) -> str:
    """The Markdown table the README shows."""
    peaks = report["peaks_gflops"]
    columns = [("Keras", "keras"), ("PyTorch", "pytorch"), ("cnnlab fp32", "cnnlab"), ("cnnlab bf16", "cnnlab-bf16"),
               ("cnnlab fp32, runs", "cnnlab-runs"), ("cnnlab bf16, runs", "cnnlab-bf16-runs")]
    ratios = [("fp32 ÷ Keras", "cnnlab", "keras"), ("fp32 ÷ PyTorch", "cnnlab", "pytorch"),
              ("bf16 ÷ Keras", "cnnlab-bf16", "keras"), ("fp32 runs ÷ Keras", "cnnlab-runs", "keras"),
              ("bf16 runs ÷ Keras", "cnnlab-bf16-runs", "keras")]
    header = (["model"] + [title for title, _ in columns] + [title for title, _, _ in ratios]
              + ["fp32 GFLOP/s (% of peak)", "bf16 GFLOP/s (% of peak)", "peak RSS cnnlab / Keras"])
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def speed(entry: dict[str, Any], method: str) -> Optional[float]:
        return (entry.get(method) or {}).get("images_per_second")

    for name, entry in report["models"].items():
        flops = entry["flops_per_image"]

        def achieved(method: str, peak: str, entry: dict[str, Any] = entry, flops: float = flops) -> str:
            value = speed(entry, method)
            if not value:
                return "–"
            gflops = value * flops / 1e9
            return f"{gflops:,.0f} ({100 * gflops / peaks[peak]:.0f} %)"

        cells = [name] + [f"{speed(entry, m):,.0f}" if speed(entry, m) else "–" for _, m in columns]
        cells += [f"{speed(entry, a) / speed(entry, b):.2f}×" if speed(entry, a) and speed(entry, b) else "–"
                  for _, a, b in ratios]
        rss = "/".join(f"{(entry.get(m) or {}).get('peak_rss_mb') or 0:,.0f}" for m in ("cnnlab", "keras"))
        cells += [achieved("cnnlab", "fp32"), achieved("cnnlab-bf16", "bf16"), f"{rss} MB"]
        rows.append("| " + " | ".join(cells) + " |")
    m = report["machine"]
    settings = report["settings"]
    rows.append("")
    rows.append(f"Images per second, measured {report['date']} on {m['cpu']} ({m['cores']} cores), torch {m['torch']}"
                + (f", TensorFlow {m['tensorflow']} / Keras {m['keras']}" if "tensorflow" in m else ", no TensorFlow")
                + f"; batch {settings['batch_size']}, fastest of {settings['rounds']} interleaved rounds of "
                f"{settings['epochs_per_round']} epochs (median), synthetic data; \"runs\": one single-threaded run "
                f"per core at once (what `cnnlab run` does for studies), summed; oneDNN matmul peaks "
                f"{peaks['fp32']:,.0f} GFLOP/s fp32 and {peaks['bf16']:,.0f} bf16"
                + (f" (emulated: {EMULATED_BF16_PEAK_SIZE}-square)" if m.get("bf16") == "emulated" else "") + ".")
    return "\n".join(rows)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="See the module docstring (and README, Speed) for the method.")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated; default all: {','.join(MODELS)}")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated; keras is skipped without tensorflow")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per model (default 3)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per round; the median counts (default 3)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply each model's images per epoch (10,000; E 2,500) by this (default 1)")
    parser.add_argument("--keras-python", help="a Python interpreter with tensorflow installed (default: this one)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        WORKERS[args.worker](args.worker).serve()
        return 0
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown += [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown model or method: {', '.join(unknown)}; models: {', '.join(MODELS)}; "
                     f"methods: {', '.join(METHODS)}")
    keras = keras_python(args.keras_python) if "keras" in methods else None
    if "keras" in methods and not keras:
        print("tensorflow is not importable here (pass --keras-python): Keras is left out", file=sys.stderr)
        methods.remove("keras")
    report = run(models, methods, args.rounds, args.epochs, args.scale, keras)
    print()
    print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
