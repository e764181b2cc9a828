"""Analytic swing solve: pose a body model so its keypoints reach given 3D targets (HybrIK-style).

Joint positions fix the *swing* of every bone that has an observed keypoint below it, not its
*twist* about the bone axis (nor the rotation of end bones such as feet and wrists). The
:class:`SwingSolver` takes predicted rotations (a network's, or any initialisation), walks the
kinematic tree from the root and, for each joint, applies the smallest rotation that points the
predicted keypoints carried by that joint at their targets. What the targets cannot see (twists,
end bones, the spine's bend distribution) is kept from the prediction. Everything is
differentiable in the predicted rotations (the swing they predict has no effect, and so no
gradient), so a network trained through it learns the twists and the rest, while its output
reproduces the given joints up to noise and bone-length (shape) error.

Convention (checked at construction against the model's own forward, for any model): with
canonical rest joints ``r`` (identity pose), global rotation ``R0`` and local rotations ``L_j``
acting in the model's native axes (F maps native → canonical: the model's ``native_frame`` where it
has one, e.g. Anny's hand, output in its wrist's reference frame; else its ``frame``; identity for
SMPL)::

    W_0 = R0,  W_j = W_parent(j) · F L_j Fᵀ,  p_j = p_parent(j) + W_parent(j) (r_j − r_parent(j)).

Which joint frame carries each keypoint (its *attachment*) is found numerically: the joint whose
frame holds the keypoint's offset fixed over random poses (keypoints mixing several frames, e.g.
a midpoint, are not used as targets; they still count in any loss).
"""

from __future__ import annotations

import roma
import torch
from torch import Tensor

from neuralannot.bodies.base import BodyModel, BodyModelError, as_rotmat

#: Largest offset change (m) over random poses for a keypoint to count as carried by one joint.
RIGID_TOL = 1e-3
#: Targets closer than this to their joint (m) give no direction (e.g. the pelvis keypoint itself).
MIN_LEVER = 0.01
#: Limbs bent less than this (sine of the angle, ~6 degrees) define no bending plane.
HINGE_MIN_SIN = 0.1


def _swing(u: Tensor, v: Tensor) -> Tensor:
    """Unit quaternion (…, 4) (roma's XYZW) of the smallest rotation taking direction ``u`` to ``v``."""
    u = u / u.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    w = 1.0 + (u * v).sum(-1, keepdim=True)
    q = torch.cat([torch.linalg.cross(u, v), w], -1)
    # opposite directions: a half turn about any axis perpendicular to u
    ex, ey = u.new_tensor([1.0, 0.0, 0.0]).expand_as(u), u.new_tensor([0.0, 1.0, 0.0]).expand_as(u)
    perp = torch.where((u[..., :1].abs() < 0.9), torch.linalg.cross(u, ex), torch.linalg.cross(u, ey))
    half = torch.cat([perp / perp.norm(dim=-1, keepdim=True).clamp_min(1e-9), torch.zeros_like(w)], -1)
    q = torch.where(w < 1e-6, half, q)
    return q / q.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def _axis_rotation(axis: Tensor, angle: Tensor) -> Tensor:
    return roma.rotvec_to_rotmat(axis * angle[..., None])


class SwingSolver:
    """Analytic swing correction of ``root_pose`` + the joint rotations (``body_pose`` for bodies,
    ``hand_pose`` for hands) toward 3D keypoint targets.

    ``regressor`` maps a forward output to the keypoints the targets are given in (any joint set the
    model offers). Raises :class:`BodyModelError` when the model's kinematics do not follow the
    convention in the module docstring (checked numerically).
    """

    def __init__(
        self,
        body: BodyModel,
        regressor,
        passes: int = 2,
        hinges: bool = True,
        seed: int = 0,
        weight: float = 1.0,
    ):
        if not 0.0 < weight <= 1.0:
            raise ValueError(f"swing weight must be in (0, 1], got {weight}")
        self.body, self.regressor, self.passes = body, regressor, passes
        #: below 1 the joints swing toward targets shrunk toward the prediction's own keypoints
        #: (``K + weight (targets − K)``, after the root alignment): noisy joints on short bones
        self.weight = weight
        self.parents = list(body.parents)
        groups = [
            name
            for name, spec in body.param_specs.items()
            if spec.kind == "rotation" and name != "root_pose" and spec.numel // 3 == len(self.parents) - 1
        ]
        if "root_pose" not in body.param_specs or not groups:
            raise BodyModelError(
                f"{body.name} ({body.part}): the swing solver needs root_pose and one rotation per "
                f"non-root joint ({len(self.parents) - 1})"
            )
        #: the parameter holding the local rotations of joints 1.. (body_pose, hand_pose, ...)
        self.group = groups[0]
        frame = getattr(body, "native_frame", getattr(body, "frame", None))
        self.frame = torch.eye(3) if frame is None else frame.detach().cpu().float()
        self.attach = self._find_attachments(seed)
        self.plan = self._plan()
        self.hinges = self._find_hinges() if hinges else []
        #: joints in each joint's subtree, itself included
        self.subtree = [
            [c for c in range(len(self.parents)) if self._is_under(c, j)] for j in range(len(self.parents))
        ]

    def _apply_tensors(self, fn) -> SwingSolver:
        """Convert the solver's own tensors with ``fn`` (called when the module owning it is moved:
        ``NeuralAnnotator._apply``); the body and regressor it was given are their owner's to move."""
        self.frame = fn(self.frame)
        self.hinges = [(p, c, k, fn(a)) for p, c, k, a in self.hinges]
        self.__dict__.pop("_level_cache", None)  # index tensors of the old device
        return self

    def _find_hinges(self) -> list[tuple[int, int, int, Tensor]]:
        """(parent joint, hinge joint, target keypoint of the lower bone, world-oriented hinge axis in
        the parent's frame) for each knee/elbow-like joint the model declares (``hinge_axes``)."""
        axes = getattr(self.body, "hinge_axes", None) or {}
        names = list(self.body.joint_names)
        out = []
        with torch.no_grad():
            rest = self.body.default_params(batch_size=1)
            P, K = self._forward(rest)
        for name, axis in axes.items():
            if name not in names:
                continue
            c = names.index(name)
            own = [k for k, a in enumerate(self.attach) if a == c]
            if not own:
                continue
            k = max(own, key=lambda k: float((K[0, k] - P[0, c]).norm()))
            a = self.frame @ torch.tensor(axis, dtype=torch.float32)  # canonical, parent frame
            p = self.parents[c]
            # orient the axis as the rest pose's bend normal (upper x lower): flexion folds the joint
            n = torch.linalg.cross(P[0, c] - P[0, p], K[0, k] - P[0, c]).cpu()
            out.append((p, c, k, a if float(n @ a) >= 0 else -a))
        return out

    # -- construction -------------------------------------------------------------------------
    def _forward(self, params: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Model joints (B, J, 3) and keypoints (B, K, 3), without translation."""
        reg = self.regressor
        params = {**params, "trans": params["root_pose"].new_zeros(params["root_pose"].shape[0], 3)}
        if reg.needs_vertices:
            out = self.body(params, vertex_ids=reg.vertex_ids)
        else:
            out = self.body(params, return_vertices=False)
        return out.joints, reg(out)

    def global_rotations(self, root: Tensor, pose: Tensor) -> Tensor:
        """(B, J, 3, 3) canonical global rotation of every joint frame from the root rotation (B, 3, 3)
        and the local rotation matrices (B, J - 1, 3, 3)."""
        F = self.frame.to(pose)
        local = F @ pose @ F.T
        W = [root]
        for j in range(1, len(self.parents)):
            W.append(W[self.parents[j]] @ local[:, j - 1])
        return torch.stack(W, 1)

    @torch.no_grad()
    def _find_attachments(self, seed: int) -> list[int]:
        g = torch.Generator().manual_seed(seed)
        B = 6
        params = self.body.default_params(batch_size=B)
        dev = next(iter(params.values())).device
        n = len(self.parents) - 1
        params[self.group] = roma.rotvec_to_rotmat(0.4 * torch.randn(B, n, 3, generator=g)).to(dev)
        params["root_pose"] = roma.rotvec_to_rotmat(torch.randn(B, 3, generator=g)).to(dev)
        P, K = self._forward(params)
        W = self.global_rotations(params["root_pose"], params[self.group])
        # the convention holds iff every joint sits at a fixed offset in its parent's frame
        off = self._offsets(P, W)
        if (off - off.mean(0)).norm(dim=-1).max() > RIGID_TOL:
            raise BodyModelError(
                f"{self.body.name} ({self.body.part}): its kinematics do not follow the swing solver's "
                "convention (parent-frame offsets vary with the pose); use head 'paper'"
            )
        # offset of keypoint k in joint j's frame, over the random poses: (B, J, K, 3)
        off = torch.einsum("bjxy,bjkx->bjky", W, K[:, None] - P[:, :, None])
        spread = (off - off.mean(0)).norm(dim=-1).amax(0)  # (J, K)
        rigid = spread < RIGID_TOL
        # the highest frame that holds the keypoint fixed carries it (a joint's own head is also
        # fixed in its own frame, at offset 0; its parent is the one that moves it)
        first = torch.where(rigid.any(0), rigid.to(torch.int8).argmax(0), -1)
        return [int(a) for a in first.tolist()]

    def _is_under(self, c: int, j: int) -> bool:
        while c > j:
            c = self.parents[c]
        return c == j

    def _offsets(self, P: Tensor, W: Tensor) -> Tensor:
        """(B, J, 3) offset of each joint from its parent in the parent's frame (root: 0)."""
        par = torch.tensor([max(p, 0) for p in self.parents], device=P.device)
        o = torch.einsum("bjxy,bjx->bjy", W[:, par], P - P[:, par])
        return torch.cat([torch.zeros_like(o[:, :1]), o[:, 1:]], 1)

    def _plan(self) -> list[tuple[int, list[int], bool]]:
        """Per joint, in tree order: (joint, target keypoints, twist from extra targets).

        A joint carrying keypoints swings toward them (and twists to fit the others); the first joint
        of a single-child chain above such a joint swings toward them too, keeping the chain's bend
        (the spine toward the thorax, the neck toward the head)."""
        J = len(self.parents)
        own = {j: [k for k, a in enumerate(self.attach) if a == j] for j in range(J)}
        #: per planned joint, how many of its targets it swings toward (the rest only set its twist)
        self.primary: dict[int, int] = {}
        children = {j: [c for c in range(J) if self.parents[c] == j] for j in range(J)}
        plan = []
        self.root_targets = list(own[0])
        for j in range(J):
            if own[j]:
                # a branching joint with a single target (the spine's top, at the thorax) cannot see
                # its twist; the keypoints its children carry (the shoulders) can (HybrIK's spine)
                extra = []
                if len(own[j]) == 1 and len(children[j]) > 1:
                    extra = [k for c in children[j] for k in own[c]]
                plan.append((j, own[j] + extra, True))
                self.primary[j] = len(own[j])
                continue
            n, c = 1, j
            while not own[c] and len(children[c]) == 1:
                c, n = children[c][0], n + 1
            if own[c] and c != j and (j == 0 or len(children[self.parents[j]]) > 1 or own[self.parents[j]]):
                plan.append((j, own[c], False))  # chain start: full swing, the bend is kept
                if self.parents[j] == 0:  # the root also turns toward it (e.g. the pelvis tilt: thorax)
                    self.root_targets += own[c]
        return plan

    # -- solve -------------------------------------------------------------------------------------
    def solve(self, params: dict[str, Tensor], targets: Tensor, valid: Tensor) -> dict[str, Tensor]:
        """Corrected ``root_pose``/joint rotations (matrices) and ``trans`` for targets (B, K, 3) in the
        output frame (e.g. the camera's), ``valid`` (B, K) bool. Rotations may come as axis-angle or
        matrices; other parameters pass through."""
        params = {
            **params,
            "root_pose": as_rotmat(params["root_pose"], (3,)),
            self.group: as_rotmat(params[self.group], self.body.param_specs[self.group].shape),
        }
        with torch.no_grad():  # bone and keypoint offsets; the pose is rebuilt below with gradients
            P0, K0 = self._forward(params)
        W = self.global_rotations(params["root_pose"], params[self.group])
        P, K = self._rebuild(W, P0, K0)
        delta, cu, cv = self._align_root(P, K, targets, valid)
        W, P, K = delta[:, None] @ W, self._moved(P, delta, cu, cv), self._moved(K, delta, cu, cv)
        if self.weight < 1.0:
            targets = K + self.weight * (targets - K)
        for level in self._levels(P.device) * self.passes:
            W, P, K = self._solve_level(level, W, P, K, targets, valid)
            if "hinge" in level:
                W, P, K = self._hinge_twist(level["hinge"], W, P, K, targets, valid)
        F = self.frame.to(W)
        par = [max(p, 0) for p in self.parents]
        local = W[:, par].transpose(-1, -2) @ W
        pose = F.T @ local[:, 1:] @ F
        return {**params, "root_pose": W[:, 0], self.group: pose, "trans": P[:, 0]}

    def _rebuild(self, W: Tensor, P0: Tensor, K0: Tensor) -> tuple[Tensor, Tensor]:
        """Joints and carried keypoints as differentiable functions of the frames ``W``, with the
        offsets read off the forward output (P0, K0) of the same pose."""
        offsets = self._offsets(P0, W.detach())
        pos = [P0[:, 0]]
        for j in range(1, len(self.parents)):
            a = self.parents[j]
            pos.append(pos[a] + (W[:, a] @ offsets[:, j, :, None])[..., 0])
        P = torch.stack(pos, 1)
        att = torch.tensor([max(a, 0) for a in self.attach], device=P.device)
        Wa = W[:, att]
        kp_off = (Wa.detach().transpose(-1, -2) @ (K0 - P0[:, att])[..., None])[..., 0]
        K = P[:, att] + (Wa @ kp_off[..., None])[..., 0]
        carried = torch.tensor([a >= 0 for a in self.attach], device=P.device)
        return P, torch.where(carried[:, None], K, K0)

    @staticmethod
    def _moved(X: Tensor, R: Tensor, src: Tensor, dst: Tensor) -> Tensor:
        """Points (B, N, 3) rotated by R (B, 3, 3) about ``src`` (B, 3), then moved to ``dst``."""
        return dst[:, None] + (X - src[:, None]) @ R.transpose(-1, -2)

    def _levels(self, device) -> list[dict[str, Tensor]]:
        """The plan grouped by tree depth as index tensors: joints of one depth have disjoint subtrees,
        so their corrections commute and are solved together."""
        if getattr(self, "_level_cache", (None,))[0] != device:
            J, depth = len(self.parents), [0] * len(self.parents)
            for j in range(1, J):
                depth[j] = depth[self.parents[j]] + 1
            levels = []
            for d in sorted({depth[j] for j, _, _ in self.plan if j != 0}):
                entries = [e for e in self.plan if e[0] != 0 and depth[e[0]] == d]
                T = max(len(t) for _, t, _ in entries)
                # the entry whose subtree holds each joint
                owner = self._owner([j for j, _, _ in entries], device)
                lv = {
                    "joint": [j for j, _, _ in entries],
                    "targets": [t + [t[0]] * (T - len(t)) for _, t, _ in entries],
                    "real": [[i < len(t) for i in range(T)] for _, t, _ in entries],
                    "primary": [[i < self.primary.get(j, len(t)) for i in range(T)] for j, t, _ in entries],
                    "twist": [tw for _, _, tw in entries],
                }
                level = {k: torch.tensor(v, device=device) for k, v in lv.items()}
                level["joint_owner"], level["kp_owner"] = owner, self._kp_owner(owner)
                hinges = [h for h in self.hinges if h[0] in lv["joint"]]
                if hinges:
                    level["hinge"] = {
                        "parent": torch.tensor([h[0] for h in hinges], device=device),
                        "joint": torch.tensor([h[1] for h in hinges], device=device),
                        "target": torch.tensor([h[2] for h in hinges], device=device),
                        "axis": torch.stack([h[3] for h in hinges]).to(device),  # dtype: at use
                        "joint_owner": self._owner([h[0] for h in hinges], device),
                        "kp_owner": None,
                    }
                    level["hinge"]["kp_owner"] = self._kp_owner(level["hinge"]["joint_owner"])
                levels.append(level)
            self._level_cache = (device, levels)
        return self._level_cache[1]

    def _owner(self, joints: list[int], device) -> Tensor:
        owner = [-1] * len(self.parents)
        for e, j in enumerate(joints):
            for c in self.subtree[j]:
                owner[c] = e
        return torch.tensor(owner, device=device)

    def _kp_owner(self, joint_owner: Tensor) -> Tensor:
        att = torch.tensor([max(a, 0) for a in self.attach], device=joint_owner.device)
        carried = torch.tensor([a >= 0 for a in self.attach], device=joint_owner.device)
        return torch.where(carried, joint_owner[att], -1)

    def _hinge_twist(
        self, h: dict[str, Tensor], W: Tensor, P: Tensor, K: Tensor, targets: Tensor, valid: Tensor
    ):
        """Turn each hinge's upper bone about its own axis so the hinge axis becomes the normal of
        the plane (upper bone, lower bone target): the twist joints alone cannot see, taken from the
        anatomy of knees and elbows. Nearly straight limbs (no plane) keep their twist."""
        B = P.shape[0]
        d = P[:, h["joint"]] - P[:, h["parent"]]  # (B, E, 3) upper bone, already swung
        d = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        lower = targets[:, h["target"]] - P[:, h["joint"]]
        n = torch.linalg.cross(d, lower / lower.norm(dim=-1, keepdim=True).clamp_min(1e-9))
        bend = n.norm(dim=-1)  # sin of the bend angle
        axis = (W[:, h["parent"]] @ h["axis"].to(W)[None, :, :, None])[..., 0]  # current hinge axis, world

        def flat(x: Tensor) -> Tensor:
            return x - (x * d).sum(-1, keepdim=True) * d

        cur, want = flat(axis), flat(n)
        s = (torch.linalg.cross(cur, want) * d).sum(-1)
        c = (cur * want).sum(-1)
        ok = valid[:, h["target"]] & (bend > HINGE_MIN_SIN)
        angle = torch.atan2(torch.where(ok, s, torch.zeros_like(s)), torch.where(ok, c, torch.ones_like(c)))
        delta = _axis_rotation(d, angle)  # (B, E, 3, 3)
        eye = torch.eye(3, dtype=P.dtype, device=P.device).expand(B, 1, 3, 3)
        delta = torch.cat([eye, delta], 1)
        piv = torch.cat([torch.zeros_like(P[:, :1]), P[:, h["parent"]]], 1)
        return self._apply(delta, piv, h["joint_owner"], h["kp_owner"], W, P, K)

    @staticmethod
    def _apply(
        delta: Tensor, piv: Tensor, joint_owner: Tensor, kp_owner: Tensor, W: Tensor, P: Tensor, K: Tensor
    ):
        """Rotate each owner's joints, frames and keypoints by its ``delta`` about its pivot
        (entry 0 of ``delta``/``piv`` = identity, for owner -1)."""
        Dj, pj = delta[:, joint_owner + 1], piv[:, joint_owner + 1]
        Dk, pk = delta[:, kp_owner + 1], piv[:, kp_owner + 1]
        W = Dj @ W
        P = pj + ((P - pj)[..., None, :] @ Dj.transpose(-1, -2))[..., 0, :]
        K = pk + ((K - pk)[..., None, :] @ Dk.transpose(-1, -2))[..., 0, :]
        return W, P, K

    def _solve_level(
        self, lv: dict[str, Tensor], W: Tensor, P: Tensor, K: Tensor, targets: Tensor, valid: Tensor
    ):
        """Correct every joint of one tree level at once (see :meth:`_levels`)."""
        B, E = P.shape[0], lv["targets"].shape[0]
        pivot = P[:, lv["joint"]]  # (B, E, 3)
        u = K[:, lv["targets"]] - pivot[:, :, None]  # (B, E, T, 3)
        v = targets[:, lv["targets"]] - pivot[:, :, None]
        ok = valid[:, lv["targets"]] & lv["real"] & (u.norm(dim=-1) > MIN_LEVER)
        primary = lv["primary"].expand(B, -1, -1).flatten(0, 1)
        u, v, ok = u.flatten(0, 1), v.flatten(0, 1), ok.flatten(0, 1)
        delta = self._rotation(u, v, ok, lv["twist"].repeat(B), primary)
        eye = torch.eye(3, dtype=P.dtype, device=P.device).expand(B, 1, 3, 3)
        delta = torch.cat([eye, delta.view(B, E, 3, 3)], 1)  # entry -1 → identity
        piv = torch.cat([torch.zeros_like(pivot[:, :1]), pivot], 1)
        return self._apply(delta, piv, lv["joint_owner"], lv["kp_owner"], W, P, K)

    def _align_root(
        self, P: Tensor, K: Tensor, targets: Tensor, valid: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Rotation (B, 3, 3) about ``cu`` and move to ``cv`` (B, 3) that bring the whole body's root
        keypoints (and the pelvis tilt's chain target) onto their targets."""
        own = [k for k, a in enumerate(self.attach) if a == 0]
        tgt = own or list(range(K.shape[1]))
        w = valid[:, tgt].to(P.dtype)[..., None]
        has = w.sum(1) > 0
        cu = (K[:, tgt] * w).sum(1) / w.sum(1).clamp_min(1)
        cv = torch.where(has, (targets[:, tgt] * w).sum(1) / w.sum(1).clamp_min(1), cu)
        if own:
            tgt = self.root_targets
            u, v = K[:, tgt] - cu[:, None], targets[:, tgt] - cv[:, None]
            ok = valid[:, tgt] & (u.norm(dim=-1) > MIN_LEVER)
            primary = torch.arange(len(tgt), device=P.device) < len(own)
            delta = self._rotation(u, v, ok, True, primary=primary.expand_as(ok))
        else:  # nothing rigid on the root: translation only
            delta = torch.eye(3, dtype=P.dtype, device=P.device).expand(P.shape[0], 3, 3)
        return delta, cu, cv

    @staticmethod
    def _rotation(
        u: Tensor, v: Tensor, ok: Tensor, twist: Tensor | bool, primary: Tensor | None = None
    ) -> Tensor:
        """(N, 3, 3): swing of the longest valid ``u`` (among the ``primary`` pairs (N, T) bool, when
        some of them are valid) onto its ``v``, then (where ``twist``) the twist about that axis that
        best aligns all pairs (least squares); identity without targets."""
        N = u.shape[0]
        first = ok.clone()
        if primary is not None:
            first = first & primary
            first = torch.where(first.any(1, keepdim=True), first, ok)
        lever = torch.where(first, u.norm(dim=-1), torch.zeros_like(u[..., 0]))
        i = lever.argmax(1)
        pick = torch.arange(N, device=u.device)
        q = _swing(u[pick, i], v[pick, i])
        identity = q.new_tensor([0.0, 0.0, 0.0, 1.0])
        R = roma.unitquat_to_rotmat(torch.where(ok.any(1, keepdim=True), q, identity))
        if u.shape[1] == 1 or twist is False:
            return R
        axis = v[pick, i] / v[pick, i].norm(dim=-1, keepdim=True).clamp_min(1e-9)
        ur = u @ R.transpose(-1, -2)
        up = ur - (ur * axis[:, None]).sum(-1, keepdim=True) * axis[:, None]
        vp = v - (v * axis[:, None]).sum(-1, keepdim=True) * axis[:, None]
        m = ok.to(u.dtype)
        s = ((torch.linalg.cross(up, vp) * axis[:, None]).sum(-1) * m).sum(1)
        c = ((up * vp).sum(-1) * m).sum(1)
        strong = ((s.abs() + c.abs()) > MIN_LEVER**2) & torch.as_tensor(twist, device=u.device)
        angle = torch.atan2(
            torch.where(strong, s, torch.zeros_like(s)), torch.where(strong, c, torch.ones_like(c))
        )
        return _axis_rotation(axis, angle) @ R
