"""Attention grids as pictures: which query trigrams match which title trigrams."""

from __future__ import annotations

from pathlib import Path

__all__ = ["save_attention_grid"]


def save_attention_grid(model, query: str, title: str, path: str | Path) -> Path:
    """Write the query-token × title-token score grid of ``model`` as a PNG heatmap.

    Each cell is the score (negative distance to region) of one title token's point to
    one query token's region; brighter is a better match.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid, q_tokens, t_tokens = model.attention_grid(query, title)
    path = Path(path)
    width = max(4.0, 0.32 * len(t_tokens) + 2)
    height = max(2.5, 0.32 * len(q_tokens) + 1.5)
    fig, ax = plt.subplots(figsize=(width, height), dpi=120)
    image = ax.imshow(grid.cpu().numpy(), cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(t_tokens)), t_tokens, rotation=90, fontsize=7)
    ax.set_yticks(range(len(q_tokens)), q_tokens, fontsize=7)
    ax.set_xlabel(f"title: {title[:80]}")
    ax.set_ylabel(f"query: {query}")
    geometry = getattr(model, "geometry", None)
    ax.set_title(f"ANTHEM token scores ({geometry.name if geometry is not None else 'model'})", fontsize=9)
    fig.colorbar(image, ax=ax, label="score (−distance to region)")
    fig.tight_layout()
    tmp = path.with_suffix(path.suffix + ".tmp")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    tmp.replace(path)
    return path
