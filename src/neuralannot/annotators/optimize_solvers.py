"""Batched minimisers for per-sample objectives, with per-sample NaN / divergence isolation.

An objective ``fn(x, rows) -> (R,)`` maps the parameters ``x`` (R, D) of the batch rows ``rows``
(R,) to one loss per row; rows must not interact (each row's loss depends on its own ``x`` only).

- ``"lbfgs"`` (default): L-BFGS run independently per row, vectorised: per-row curvature history
  (two-loop recursion), per-row strong-Wolfe line search (bracketing by bisection / doubling;
  c1 = 1e-4, c2 = 0.9; first step ``lr · min(1, 1/|g|₁)`` as torch's LBFGS, then ``lr``), per-row
  convergence (relative loss change ≤ ftol, max |g| ≤ gtol, or no acceptable step). A batch of B
  rows gives the same result as B runs of one row; only rows still searching are evaluated.
- ``"lbfgs-torch"``: ``torch.optim.LBFGS(line_search_fn="strong_wolfe")`` on the sum of the row
  losses, i.e. SMPLify-X's optimiser (exactly it at batch size 1; larger batches couple the rows
  through the shared curvature estimate and step length).
- ``"adam"``: ``torch.optim.Adam`` on the summed loss (element-wise, so rows stay independent).

Divergence: a row whose loss (or gradient) is non-finite at the start is frozen there; an L-BFGS
trial point with a non-finite loss is rejected by the line search; an Adam row that turns
non-finite is put back to its last finite iterate and frozen; with ``lbfgs-torch`` (one shared
line search) rows that turn non-finite are dropped, reset to their start, and the run is repeated
without them. Such rows come back with ``diverged`` set; the others are not affected (non-finite
row losses never enter the summed losses or gradients).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["OPTIMIZERS", "SolveResult", "minimize"]

OPTIMIZERS = ("lbfgs", "lbfgs-torch", "adam")
Objective = Callable[[Tensor, Tensor], Tensor]


@dataclass
class SolveResult:
    """``x`` (B, D) final parameters (finite wherever the start was), ``loss`` (B,) at ``x`` (NaN
    for frozen rows), ``diverged`` (B,) bool, ``evals`` objective calls."""

    x: Tensor
    loss: Tensor
    diverged: Tensor
    evals: int


def _eval(fn: Objective, x: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        f = fn(x, rows)
        (g,) = torch.autograd.grad(f.sum(), x)
    return f.detach(), g


def minimize(
    fn: Objective,
    x0: Tensor,
    method: str = "lbfgs",
    iterations: int = 30,
    active: Tensor | None = None,
    lr: float | None = None,
    history: int = 20,
    max_ls: int = 12,
    ftol: float = 1e-9,
    gtol: float = 1e-9,
) -> SolveResult:
    """Minimise every row of ``fn`` from ``x0`` (B, D); rows outside ``active`` (B,) bool are left
    as they are. ``iterations``: L-BFGS iterations (each with its line search) or Adam steps;
    ``lr``: L-BFGS initial step (default 1) or Adam learning rate (default 0.01)."""
    if method not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {method!r}; expected one of {OPTIMIZERS}")
    B = x0.shape[0]
    active = torch.ones(B, dtype=torch.bool, device=x0.device) if active is None else active.clone()
    if method == "lbfgs":
        return _lbfgs(fn, x0, active, iterations, 1.0 if lr is None else lr, history, max_ls, ftol, gtol)
    if method == "adam":
        return _adam(fn, x0, active, iterations, 0.01 if lr is None else lr)
    return _torch_lbfgs(fn, x0, active, iterations, 1.0 if lr is None else lr, history, ftol, gtol)


# ------------------------------------------------------------------------------------------------
# per-row L-BFGS
# ------------------------------------------------------------------------------------------------
def _two_loop(g: Tensor, S: Tensor, Y: Tensor, rho: Tensor, n: Tensor) -> Tensor:
    """``H g`` per row from histories S, Y (R, m, D) (oldest first, unused slots zero)."""
    q, m = g.clone(), S.shape[1]
    alpha = g.new_zeros(g.shape[0], m)
    for j in reversed(range(m)):
        alpha[:, j] = rho[:, j] * (S[:, j] * q).sum(1)
        q = q - alpha[:, j, None] * Y[:, j]
    sy, yy = (S[:, -1] * Y[:, -1]).sum(1), Y[:, -1].square().sum(1)
    r = q * torch.where(n > 0, sy / yy.clamp(min=1e-30), 1.0)[:, None]
    for j in range(m):
        beta = rho[:, j] * (Y[:, j] * r).sum(1)
        r = r + S[:, j] * (alpha[:, j] - beta)[:, None]
    return r


def _line_search(fn, x, f0, g0, d, gtd0, t, rows, max_ls, c1=1e-4, c2=0.9):
    """Per-row strong-Wolfe search along ``d``; returns the accepted (or best Armijo) point and
    whether a decreasing step was found, plus the number of objective calls."""
    R = x.shape[0]
    lo, hi = torch.zeros_like(t), torch.full_like(t, float("inf"))
    done = torch.zeros(R, dtype=torch.bool, device=x.device)
    found = done.clone()
    x_acc, f_acc, g_acc = x.clone(), f0.clone(), g0.clone()
    calls = 0
    for _ in range(max_ls):
        sel = (~done).nonzero().flatten()
        if sel.numel() == 0:
            break
        ts = t[sel]
        xt = x[sel] + ts[:, None] * d[sel]
        ft, gt = _eval(fn, xt, rows[sel])
        calls += 1
        finite = torch.isfinite(ft) & torch.isfinite(gt).all(1) & torch.isfinite(xt).all(1)
        gtdt = (gt * d[sel]).sum(1)
        armijo = finite & (ft <= f0[sel] + c1 * ts * gtd0[sel])
        accept = armijo & (gtdt.abs() <= -c2 * gtd0[sel])
        keep = accept | (armijo & (ft < f_acc[sel]))
        idx = sel[keep]
        x_acc[idx], f_acc[idx], g_acc[idx] = xt[keep], ft[keep], gt[keep]
        found[idx] = True
        done[sel[accept]] = True
        shrink = ~armijo | (gtdt > 0)
        hi[sel] = torch.where(shrink, ts, hi[sel])
        lo[sel] = torch.where(shrink, lo[sel], ts)
        t[sel] = torch.where(torch.isinf(hi[sel]), 2 * ts, 0.5 * (lo[sel] + hi[sel]))
    return x_acc, f_acc, g_acc, found, calls


def _push(H: Tensor, v: Tensor, where: Tensor) -> Tensor:
    """Append ``v`` (R, ...) as the newest history entry of the rows ``where`` (dropping the oldest)."""
    mask = where.reshape(-1, *([1] * (H.ndim - 1)))
    return torch.where(mask, torch.cat([H[:, 1:], v[:, None]], 1), H)


def _lbfgs(fn, x0, active, iterations, lr, m, max_ls, ftol, gtol) -> SolveResult:
    B, D = x0.shape
    x = x0.detach().clone()
    f = x.new_full((B,), float("nan"))
    g = torch.zeros_like(x)
    rows = active.nonzero().flatten()
    evals = 0
    if rows.numel():
        f[rows], g[rows] = _eval(fn, x[rows], rows)
        evals += 1
    ok = torch.isfinite(f) & torch.isfinite(g).all(1)
    diverged = active & ~ok
    live = active & ok
    S, Y = x.new_zeros(B, m, D), x.new_zeros(B, m, D)
    rho, n = x.new_zeros(B, m), torch.zeros(B, dtype=torch.long, device=x.device)
    for it in range(iterations):
        idx = live.nonzero().flatten()
        if idx.numel() == 0:
            break
        gi = g[idx]
        d = -_two_loop(gi, S[idx], Y[idx], rho[idx], n[idx])
        gtd = (gi * d).sum(1)
        steep = ~(gtd < 0) | ~torch.isfinite(gtd)  # not a descent direction: steepest descent
        d = torch.where(steep[:, None], -gi, d)
        gtd = torch.where(steep, -gi.square().sum(1), gtd)
        t = torch.full_like(gtd, lr)
        if it == 0:
            t = t * (1.0 / gi.abs().sum(1).clamp(min=1e-30)).clamp(max=1.0)
        x_new, f_new, g_new, moved, calls = _line_search(fn, x[idx], f[idx], gi, d, gtd, t, idx, max_ls)
        evals += calls
        s, y = x_new - x[idx], g_new - gi
        sy = (s * y).sum(1)
        upd = moved & (sy > 1e-10)
        S[idx], Y[idx] = _push(S[idx], s, upd), _push(Y[idx], y, upd)
        rho[idx] = _push(rho[idx], 1 / sy.clamp(min=1e-10), upd)
        n[idx] = torch.where(upd, (n[idx] + 1).clamp(max=m), n[idx])
        change = (f[idx] - f_new).abs() <= ftol * torch.maximum(f[idx].abs(), f_new.abs()).clamp(min=1.0)
        converged = ~moved | change | (g_new.abs().amax(1) <= gtol)
        x[idx], f[idx], g[idx] = x_new, f_new, g_new
        live[idx[converged]] = False
    f[~active | diverged] = float("nan")
    return SolveResult(x, f, diverged, evals)


# ------------------------------------------------------------------------------------------------
# Adam and torch's L-BFGS on the summed loss
# ------------------------------------------------------------------------------------------------
def _adam(fn, x0, active, iterations, lr) -> SolveResult:
    B = x0.shape[0]
    rows = torch.arange(B, device=x0.device)
    xp = x0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([xp], lr=lr)
    x_good, f_good = x0.detach().clone(), x0.new_full((B,), float("nan"))
    live, diverged = active.clone(), torch.zeros_like(active)
    for it in range(iterations + 1):
        opt.zero_grad(set_to_none=False)
        with torch.enable_grad():
            f = fn(xp, rows)
        bad = live & ~(torch.isfinite(f) & torch.isfinite(xp.detach()).all(1))
        diverged |= bad
        live &= ~bad
        x_good[live], f_good[live] = xp.detach()[live], f.detach()[live]
        if it == iterations or not bool(live.any()):
            break
        with torch.enable_grad():
            torch.where(live, f, 0.0).sum().backward()
        xp.grad[~live] = 0.0
        opt.step()
        with torch.no_grad():
            xp[~live] = x_good[~live]
    f_good[~active | diverged] = float("nan")
    return SolveResult(x_good, f_good, diverged, it + 1)


def _summed_closure(fn, xp, opt, rows, live, hit, calls: list[int]):
    """torch-LBFGS closure: sum of the finite live rows; rows turning non-finite are noted in ``hit``."""

    def closure():
        calls[0] += 1
        opt.zero_grad()
        f = fn(xp, rows)
        fin = live & torch.isfinite(f)
        hit.logical_or_(live & ~fin)
        total = torch.where(fin, f, 0.0).sum()
        total.backward()
        with torch.no_grad():
            xp.grad[~fin] = 0.0
            xp.grad.nan_to_num_(0.0, 0.0, 0.0)
        return total.detach()

    return closure


def _torch_lbfgs(fn, x0, active, iterations, lr, history, ftol, gtol) -> SolveResult:
    B = x0.shape[0]
    rows = torch.arange(B, device=x0.device)
    with torch.no_grad():
        f0 = fn(x0, rows)
    live = active & torch.isfinite(f0)
    diverged = active & ~live
    calls = [1]
    while True:  # rows that turn non-finite are dropped and the others re-run from the start
        xp = x0.detach().clone().requires_grad_(True)
        opt = torch.optim.LBFGS(
            [xp], lr=lr, max_iter=iterations, history_size=history,
            tolerance_grad=gtol, tolerance_change=ftol, line_search_fn="strong_wolfe",
        )  # fmt: skip
        hit = torch.zeros_like(live)
        if bool(live.any()):
            opt.step(_summed_closure(fn, xp, opt, rows, live, hit, calls))
        if not bool(hit.any()):
            break
        diverged |= hit
        live &= ~hit
    with torch.no_grad():
        f = fn(xp, rows)
    x = xp.detach().clone()
    bad = live & ~(torch.isfinite(f) & torch.isfinite(x).all(1))
    x[bad | ~live] = x0[bad | ~live]
    f[~live | bad] = float("nan")
    return SolveResult(x, f, diverged | bad, calls[0])
