"""Data a user might bring, made on the spot: a table with mixed column types and missing
values, and a folder of PNG images per class."""

from __future__ import annotations

import numpy as np
import pandas as pd


def mixed_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Numbers, an integer column, text and booleans, with missing values in two columns."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(2.0, 3.0, size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    count = rng.integers(0, 50, size=n)
    flag = rng.random(n) < 0.3
    label = np.where(x1 + 0.3 * x2 + (colour == "red") > 0.8, "yes", "no")
    df = pd.DataFrame(
        {"x1": x1, "x2": x2, "colour": colour, "count": count, "flag": flag, "label": label}
    )
    df.loc[rng.choice(n, 15, replace=False), "x2"] = np.nan
    df.loc[rng.choice(n, 8, replace=False), "colour"] = None
    return df


def write_images(root, n_per_class=12, size=(10, 14), seed=0, gray=False):
    """Class folders of PNGs whose colour says the class (red, green, blue + noise)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    classes = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
    for name, colour in classes.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 25, (*size, 3)), 0, 255)
            img = Image.fromarray(pixels.astype(np.uint8), "RGB")
            (img.convert("L") if gray else img).save(folder / f"{i}.png")
    (root / "red" / "notes.txt").write_text("not an image")  # ignored
    return sorted(classes)
