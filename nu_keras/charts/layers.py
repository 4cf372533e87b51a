"""The cross-layer overview's figure (nu_keras.multilayer): one distribution per layer."""

from __future__ import annotations

import matplotlib.pyplot as plt

from nu_keras.charts.style import BASE, save


def selectivity_by_layer(path, names: list[str], values: list[list[float]]):
    """Box plots of the class selectivity index of every live unit, one per layer in the model's order; a layer
    without values (negative activations, or no live unit) keeps its place, marked "n/a"."""
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(names) + 1.5), 3.2))
    drawn = [i for i, v in enumerate(values) if v]
    if drawn:
        ax.boxplot(
            [values[i] for i in drawn],
            positions=drawn,
            widths=0.5,
            patch_artist=True,
            boxprops={"facecolor": BASE, "alpha": 0.35},
            medianprops={"color": BASE},
        )
    for i, v in enumerate(values):
        if not v:
            ax.text(i, 0.5, "n/a", ha="center", va="center", color="#555555")
    ax.set_xticks(
        range(len(names)), names, rotation=30 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center"
    )
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("selectivity index")
    ax.set_title("Class selectivity of the live units, per layer")
    return save(fig, path)
