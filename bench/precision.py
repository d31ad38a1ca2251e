"""float32 against bfloat16 side by side: fashion_mnist_best's steady epoch in `dltrain fit`.

configs/fashion_mnist_best.yaml on the real Fashion-MNIST (Debian's dataset-fashion-mnist),
TensorFlow, training.mixed_precision none and bf16 in separate processes, alternating round by
round; the steady state is the epochs after the first. What `auto` resolves to on this machine
is printed with the table: bf16 pays only on a CPU that computes it natively (avx512_bf16,
amx_bf16; see dltrain/backend/precision.py).

Usage: python bench/precision.py [--repeats N] [--epochs N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from backends import epochs_of
from overhead import DEBIAN, keras_home

SETTINGS = ("none", "bf16")


def run(repeats: int = 2, epochs: int = 3) -> list[tuple[str, float, float]]:
    """(setting and which epochs, median seconds, float32's seconds / these)."""
    if not DEBIAN.is_dir():
        raise SystemExit(f"needs {DEBIAN}: apt-get install dataset-fashion-mnist")
    samples: dict[str, list[list[float]]] = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = keras_home(folder)
        for index in range(repeats):
            for setting in SETTINGS:
                samples[setting].append(epochs_of(
                    env, folder, "fashion_mnist_best", "tensorflow", epochs,
                    ["--set", f"training.mixed_precision={setting}"], f"{setting}-{index}"))
    rows = []
    for label, pick in (("first epoch", lambda r: r[:1]), ("steady state", lambda r: r[1:])):
        medians = {name: statistics.median(s for r in runs for s in pick(r))
                   for name, runs in samples.items()}
        rows += [(f"fashion_mnist_best, mixed_precision {name}, {label}", seconds,
                  medians["none"] / seconds) for name, seconds in medians.items()]
    return rows


def auto_here() -> str:
    from dltrain.backend.precision import NATIVE_BF16, cpu_flags, precision_policy

    flags = sorted(NATIVE_BF16 & cpu_flags()) or ["none of avx512_bf16, amx_bf16"]
    return (f"auto on this machine (TensorFlow, CPU): {precision_policy('auto', 'tensorflow', False)}"
            f" (flags: {', '.join(flags)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    for name, seconds, ratio in run(args.repeats, args.epochs):
        print(f"| {name} | {seconds:.3f} | {ratio:.2f}x |")
    print(auto_here())


if __name__ == "__main__":
    main()
