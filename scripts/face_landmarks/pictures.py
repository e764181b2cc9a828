"""The check pictures ``docs/anny_face68.png`` and ``docs/anny_joint_sets.png``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .mesh import Rest


def draw_joint_sets(rest: Rest, path: Path) -> None:
    """Front and side views of the rest body (vertices as points) with coco23 and h36m17 keypoints."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuralannot.bodies.joint_names import get_joint_names
    from neuralannot.bodies.joints import get_regressor

    body = rest.body
    with torch.no_grad():
        out = body(body.default_params(1))
    sets = {s: get_regressor(body, s)(out)[0].double().numpy() for s in ("coco23", "h36m17")}
    V = rest.V[rest.skin]
    fig, axes = plt.subplots(1, 2, figsize=(14, 12), gridspec_kw={"width_ratios": [1.6, 1]})
    for ax, (a, label) in zip(axes, ((0, "x (m, model's left)"), (2, "z (m, forward)")), strict=True):
        order = np.argsort(V[:, 2] if a == 0 else -V[:, 0])
        ax.scatter(V[order, a], V[order, 1], s=0.3, c="0.75", rasterized=True)
        for (name, kp), color, marker in zip(sets.items(), ("tab:red", "tab:blue"), ("o", "s"), strict=True):
            ax.scatter(kp[:, a], kp[:, 1], s=22 if marker == "o" else 16, c=color, marker=marker, zorder=3,
                       edgecolors="k", linewidths=0.3, label=name)
            if a == 0:
                names = get_joint_names(name)
                for k, p in enumerate(kp):
                    dx = -4 if name == "h36m17" else 3
                    ax.annotate(f"{k}", p[[0, 1]], xytext=(dx, 2), textcoords="offset points", fontsize=6,
                                color=color, ha="right" if dx < 0 else "left")
                del names
        ax.set_aspect("equal")
        ax.set_xlabel(label)
        ax.set_ylabel("y (m, up)")
    axes[0].legend(loc="lower right")
    axes[0].set_title("Anny rest body, front: coco23 (red, Anny's COCO regressor + feet) and h36m17 (blue)",
                      fontsize=9)
    axes[1].set_title("side view (face toward +z)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _face_panel(ax, rest: Rest, V: np.ndarray, ids: list[int], box, title: str, jaw_curve=None) -> None:
    from matplotlib.collections import PolyCollection

    F = rest.F
    x0, x1, y0, y1 = box
    P = V[F]
    n = np.cross(P[:, 1] - P[:, 0], P[:, 2] - P[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    c = P.mean(1)
    keep = ((n[:, 2] > 0) & (c[:, 0] > x0 - 0.02) & (c[:, 0] < x1 + 0.02)
            & (c[:, 1] > y0 - 0.02) & (c[:, 1] < y1 + 0.02))
    order = np.where(keep)[0]
    order = order[np.argsort(c[order, 2])]
    shade = 0.35 + 0.65 * n[order, 2]
    base = np.where(rest.comp[F[order, 0]] == rest.skin_comp, 0.85, 0.5)
    col = np.stack([base * shade, base * shade * 0.92, base * shade * 0.85], -1)
    ax.add_collection(PolyCollection(P[order][:, :, :2], facecolors=col, edgecolors=(0, 0, 0, 0.07),
                                     linewidths=0.3))
    if jaw_curve is not None:
        ax.plot(jaw_curve[:, 0], jaw_curve[:, 1], "c-", lw=0.8)
    groups = [(range(0, 17), "tab:blue"), (range(17, 27), "tab:orange"), (range(27, 36), "tab:green"),
              (range(36, 48), "tab:red"), (range(48, 60), "tab:purple"), (range(60, 68), "magenta")]
    for rng, color in groups:
        p = V[[ids[k] for k in rng]]
        ax.scatter(p[:, 0], p[:, 1], s=16, c=color, zorder=3, edgecolors="k", linewidths=0.3)
        for k in rng:
            inner = 60 <= k < 68
            lower = k in (65, 66, 67) or 55 <= k <= 59 or k in (40, 41, 46, 47)
            dy = -8 if lower else 3
            ax.annotate(str(k), V[ids[k], :2], xytext=(-2 if inner else 2, dy),
                        textcoords="offset points", fontsize=7, color=color, zorder=4,
                        ha="right" if inner else "left")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("x (m, model's left = +x)")


def draw_face(rest: Rest, ids: list[int], path: Path, debug: dict | None = None) -> None:
    """Front views of the default face with the 68 landmark vertices: rest, and an expression
    (jawOpen 0.5, eyeBlinkRight 0.6, mouthSmileLeft 0.8) to check that the landmarks follow it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    body = rest.body
    p = body.default_params(1)
    labels = body.anny.facial_action_labels
    e = torch.zeros(1, len(labels))
    for name, v in (("jawOpen", 0.5), ("eyeBlinkRight", 0.6), ("mouthSmileLeft", 0.8)):
        e[0, labels.index(name)] = v
    p["expression"] = e
    with torch.no_grad():
        V_expr = body(p).vertices[0].double().numpy()
    eye_y = rest.bone("eye.R")[1]
    box = (-0.088, 0.088, eye_y - 0.12, eye_y + 0.045)
    fig, axes = plt.subplots(1, 2, figsize=(18, 9))
    _face_panel(axes[0], rest, rest.V, ids, box, "rest (numbers = 0-based iBUG-68 indices; subject's right = "
                "image left)", None if debug is None else debug.get("jaw_curve"))
    _face_panel(axes[1], rest, V_expr, ids, box, "same vertices with jawOpen 0.5, eyeBlinkRight 0.6, "
                "mouthSmileLeft 0.8")
    axes[0].set_ylabel("y (m, up)")
    fig.suptitle("Anny face68 landmark vertices (default body, front view), "
                 "from scripts/build_face_landmarks.py", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)

