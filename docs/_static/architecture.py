"""Draws architecture.png, the road from the command line to a kernel (python docs/_static/architecture.py)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

BOXES = {  # name: (x, y, width, height, title, text)
    "entry": (0.5, 9.0, 9.0, 0.9, "fmsim simulate | fmsim.simulate | fmsim.run_to_file",
              "cli.py, commandline.py: flags -> arguments; one line and exit 2 on bad input"),
    "config": (0.5, 7.7, 9.0, 0.9, "config.py: RunConfig",
               "FullyConnected | Residual | Conv, Init, method, precision, seed: validated, frozen"),
    "driver": (0.5, 6.4, 4.3, 0.9, "running/simulate.py", "checks, then chunk k = 0, 1, ..."),
    "store": (5.2, 6.4, 4.3, 0.9, "files/store.py", "resumable HDF5 writer, same chunks"),
    "execution": (0.5, 5.1, 9.0, 0.9, "running/execution.py: ordered_map",
                  "chunks in this process, or on a Dask cluster; results come back in order"),
    "launch": (0.5, 3.8, 9.0, 0.9, "running/launch.py: plan(config, start) -> KernelCall",
               "ROADS: (architecture, weights, method) -> planner; each KernelCall: run_cpu, cuda_kernel, threads, scratch"),
    "cpu": (0.5, 2.5, 4.3, 0.9, "kernels/cpu.py, cpu_orthogonal.py", "prange over nets: M_j, log M_j"),
    "cuda": (5.2, 2.5, 4.3, 0.9, "running/cuda_backend.py -> kernels/cuda.py", "one block (or thread) per net"),
    "epilogue": (0.5, 1.2, 9.0, 0.9, "kernels/epilogue.py + running/statistics.py, then running/summary.py",
                 "per-net statistics (fm2, ...) from each trace; block moments -> LayerSummary, or the file"),
    "sampling": (0.5, -0.1, 9.0, 0.9, "sampling/: rng.py (Philox4x32-10), laws.py, first_layer.py, haar.py",
                 "the kernels draw every weight here: a pure function of (seed, net, layer, row, column)"),
}
ARROWS = [("entry", "config"), ("config", "driver"), ("config", "store"), ("driver", "execution"),
          ("store", "execution"), ("execution", "launch"), ("launch", "cpu"), ("launch", "cuda"),
          ("cpu", "epilogue"), ("cuda", "epilogue")]


def draw(path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 8.2))
    for x, y, w, h, title, text in BOXES.values():
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.04", fc="#eef3fa", ec="#35618f"))
        ax.text(x + 0.12, y + h - 0.3, title, fontsize=9.5, weight="bold", family="monospace")
        ax.text(x + 0.12, y + 0.2, text, fontsize=8.5)
    for a, b in ARROWS:
        xa, ya, wa, _ = BOXES[a][:4]
        xb, yb, wb, hb = BOXES[b][:4]
        ax.add_patch(FancyArrowPatch((xa + wa / 2, ya), (xb + wb / 2, yb + hb), arrowstyle="-|>",
                                     mutation_scale=12, color="#35618f", shrinkA=2, shrinkB=2))
    for x in (2.65, 7.35):  # the kernels draw from sampling/ (dashed: a call, not the next step)
        ax.add_patch(FancyArrowPatch((x, 2.5), (x, 0.8), arrowstyle="-|>", mutation_scale=12, color="#9aa9b8",
                                     linestyle="--", shrinkA=2, shrinkB=2, zorder=0))
    ax.text(0.5, -0.55, "beside the road: theory/ (closed forms, exact laws), training/ (MLP, SGD, Hessian), "
            "experiments/ and the report, presenting/", fontsize=8.5, style="italic")
    ax.set_xlim(0.3, 9.7)
    ax.set_ylim(-0.8, 10.1)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    draw(Path(__file__).with_name("architecture.png"))
