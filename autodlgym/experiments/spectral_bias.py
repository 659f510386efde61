"""Spectral bias: a ReLU MLP fits the low frequencies of a target first.

Rahaman et al. (2019) fit f(x) = sum_k A_k sin(2 pi k x + phi_k) on [0, 1] with a ReLU MLP
and watch the network's Fourier spectrum during training: each frequency's amplitude is
learned in order of frequency, low first. Here an MLP spec of ``deep_mlp.yaml`` (4 blocks of
256 units, He init) is built with :func:`~autodlgym.nn.build.build_model` for a
1-input, 1-output regression and trained full-batch with Adam; every few steps the spectrum
of its predictions on a grid is compared with the target's.
"""

from __future__ import annotations

import numpy as np

from autodlgym.experiments.base import Outcome, figure, load_space, make_spec

NAME = "spectral-bias"
CLAIM = "a ReLU MLP learns the low frequencies of a 1-D target first"
SOURCE = "Rahaman et al. 2019"

FREQUENCIES = (2, 4, 8, 12, 16, 20)


def run(quick: bool = False, seed: int = 0) -> Outcome:
    import pandas as pd
    import torch

    from autodlgym.nn.build import build_model
    from autodlgym.nn.init import apply_init
    from autodlgym.searchspace.io import IOSpec

    steps, every, width = (300, 30, 128) if quick else (4000, 50, 256)
    space = load_space("deep_mlp")
    spec = make_spec(
        space, n_stages=1, **{"stage1.block": "mlp", "stage1.depth": 4, "stage1.width": width}
    )
    n = 256
    x = torch.arange(n, dtype=torch.float32).div(n).unsqueeze(1)
    rng = np.random.default_rng(seed)
    phases = rng.uniform(0, 2 * np.pi, len(FREQUENCIES))
    y = sum(np.sin(2 * np.pi * k * x.numpy()[:, 0] + p) for k, p in zip(FREQUENCIES, phases))
    target = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
    torch.manual_seed(seed)
    model = apply_init(build_model(spec, IOSpec("vector", (1,), 1)), "he_normal", "relu")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    want = np.abs(np.fft.rfft(y))[list(FREQUENCIES)]
    history = []
    for step in range(steps + 1):
        if step % every == 0:
            with torch.no_grad():
                pred = model(x).numpy()[:, 0]
            history.append((step, np.abs(np.fft.rfft(pred))[list(FREQUENCIES)] / want))
        loss = torch.nn.functional.mse_loss(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    ratio = np.array([h[1] for h in history])  # (checkpoints, frequencies)
    at = [h[0] for h in history]
    rows = []
    for j, k in enumerate(FREQUENCIES):
        reached = np.nonzero(ratio[:, j] >= 0.5)[0]
        rows.append(
            {
                "frequency": k,
                "measured": at[reached[0]] if len(reached) else None,
                "final_amplitude": round(float(ratio[-1, j]), 3),
                "published": "learned in order of frequency",
            }
        )
    table = pd.DataFrame(rows).rename(columns={"measured": "measured"})
    fig, (ax,) = figure(width=6.0)
    im = ax.imshow(ratio.T, aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=1,
                   extent=(0, steps, -0.5, len(FREQUENCIES) - 0.5))  # fmt: skip
    ax.set_yticks(range(len(FREQUENCIES)), [str(k) for k in FREQUENCIES])
    ax.set_xlabel("training step")
    ax.set_ylabel("frequency k")
    ax.set_title("|fitted| / |target| Fourier amplitude")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    learned = [r["measured"] for r in rows]
    order = [
        r["frequency"]
        for r in sorted(rows, key=lambda r: (r["measured"] is None, r["measured"] or 0))
    ]
    lines = [
        f"steps to reach half the target amplitude, by frequency {list(FREQUENCIES)}: {learned} "
        f"(learned in the order {order}; the paper: low frequencies first)."
    ]
    return Outcome(table, fig, lines)
