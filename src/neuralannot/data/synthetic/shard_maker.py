"""One worker's shard writer: parameter samplers, the Anny forward, rendering and the sample lines
(:class:`ShardMaker`); :mod:`neuralannot.data.synthetic.generator` schedules the shards."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuralannot.data.synthetic.scene import (
    KINDS,
    KindSpec,
    annotate,
    camera_rotation,
    frame_subject,
    sample_camera,
    sample_framing,
)
from neuralannot.geometry import flip_rotvec
from neuralannot.utils.atomic import atomic_write, atomic_write_json

__all__ = ["KIND_IDS", "ShardMaker", "sample_params"]

#: Seed-stream id of each kind: fixed, never derived from the order of ``KINDS`` (a kind inserted
#: there once changed every later kind's sets for the same seed). New kinds take the next free id.
KIND_IDS = {"mocap": 0, "wild": 1, "hand": 2, "face": 3, "wholebody": 4, "face3d": 5, "wild3d": 6}
if set(KIND_IDS) != set(KINDS) or len(set(KIND_IDS.values())) != len(KIND_IDS):
    raise RuntimeError(f"KIND_IDS {KIND_IDS} must give each kind of KINDS {list(KINDS)} its own id")


# --- samplers ----------------------------------------------------------------------------------------
def _r6(x: Any) -> np.ndarray:
    """float64 array rounded to 1e-6 (the stored precision)."""
    x = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)
    return np.round(x, 6)


def _rotvec(R: np.ndarray) -> np.ndarray:
    import roma

    return roma.rotmat_to_rotvec(torch.as_tensor(R, dtype=torch.float64)).numpy()


def _rotmat(rv: np.ndarray) -> np.ndarray:
    import roma

    return roma.rotvec_to_rotmat(torch.as_tensor(rv, dtype=torch.float64)).numpy()


class _Samplers:
    """The pose / shape / expression samplers of :mod:`neuralannot.data.synthetic.poses`."""

    def __init__(self, seed: int):
        from neuralannot.data.synthetic import poses

        self.poses = poses
        self.body = poses.BodyPoseSampler(seed=seed)
        self.hand = poses.HandPoseSampler()
        self.face = poses.FaceSampler()

    def body_and_orientation(self, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Body poses (n, 21, 3) and matching canonical global orientations (n, 3) (the library
        pose's own root tilt, then a random yaw; some lying / bending)."""
        pose, info = self.body.sample(n, g, return_info=True)
        return pose, self.poses.sample_global_orientation(n, g, tilt=info["root_tilt"])


def sample_params(
    spec: KindSpec, samplers: _Samplers, n: int, g: torch.Generator, cams: list[dict]
) -> dict[str, np.ndarray]:
    """Model parameters (float64, rounded to 1e-6) of ``n`` subjects, root rotation in the camera frame
    (``trans`` is filled in later by the framing). Hand kinds return right-hand poses."""
    sm = samplers
    p: dict[str, np.ndarray] = {"phenotype": _r6(sm.poses.sample_phenotypes(n, g))}
    R_cam = np.stack([camera_rotation(c["elevation"], c["roll"]) for c in cams])
    if spec.model_part in ("body", "wholebody"):
        pose, orient = sm.body_and_orientation(n, g)
        p["body_pose"] = _r6(pose)
        p["root_pose"] = _r6(_rotvec(R_cam @ _rotmat(orient.double().numpy())))
        if spec.model_part == "wholebody":
            p["lhand_pose"] = _r6(sm.hand.sample(n, g, side="left"))
            p["rhand_pose"] = _r6(sm.hand.sample(n, g))
            p["expression"] = _r6(sm.face.sample(n, g))
    elif spec.model_part == "hand":
        import roma

        p["hand_pose"] = _r6(sm.hand.sample(n, g))
        q = torch.randn(n, 4, generator=g, dtype=torch.float64)  # uniform rotation (random unit quaternion)
        p["root_pose"] = _r6(roma.unitquat_to_rotvec(q / q.norm(dim=1, keepdim=True)))
    else:  # face: head turned ±60° yaw, ±15° pitch about the neck; small head and eye rotations
        u = torch.rand(n, 2, generator=g, dtype=torch.float64) * 2 - 1
        yaw, pitch = u[:, 0].numpy() * np.deg2rad(60), u[:, 1].numpy() * np.deg2rad(15)
        zero = np.zeros_like(yaw)
        R_head = _rotmat(np.stack([zero, yaw, zero], 1)) @ _rotmat(np.stack([pitch, zero, zero], 1))
        p["root_pose"] = _r6(_rotvec(R_cam @ R_head))
        p["head_pose"] = _r6(torch.randn(n, 3, generator=g, dtype=torch.float64) * 0.1)
        p["eye_pose"] = _r6(torch.randn(n, 2, 3, generator=g, dtype=torch.float64) * 0.08)
        p["expression"] = _r6(sm.face.sample(n, g))
    return p


# --- one worker --------------------------------------------------------------------------------------
def _sample_line(raw: dict) -> str:
    """One JSON line of a shard file."""
    return json.dumps(raw, separators=(",", ":"), allow_nan=False) + "\n"


def _tolist(x: np.ndarray | None) -> Any:
    return None if x is None else np.asarray(x).tolist()


class ShardMaker:
    """Per-process state (models, paints, background pool, renderer) that writes whole shards."""

    def __init__(self, kind: str, seed: int, image_size: int = 256, masks: bool = True, batch_size: int = 64):
        from neuralannot.bodies import get_body_model
        from neuralannot.data.synthetic.appearance import BackgroundPool, BodyPaint
        from neuralannot.render import MeshRenderer

        self.spec, self.seed, self.size, self.masks = KINDS[kind], int(seed), int(image_size), bool(masks)
        self.batch_size = int(batch_size)
        parts = ["hand", "lhand"] if self.spec.model_part == "hand" else [self.spec.model_part]
        self.models = {p: get_body_model("anny", p) for p in parts}  # shared, read-only
        self.paints = {p: BodyPaint(m) for p, m in self.models.items()}
        self.faces = {p: m.faces.numpy().astype(np.int32) for p, m in self.models.items()}
        self.pool = BackgroundPool(self.seed, style=self.spec.style, size=max(320, self.size + 32))
        self.samplers = _Samplers(self.seed)
        self.renderer = MeshRenderer(self.size, self.size, smooth=self.spec.smooth)

    def _rngs(self, shard: int) -> tuple[np.random.Generator, torch.Generator]:
        ss = np.random.SeedSequence([self.seed, KIND_IDS[self.spec.name], shard])
        rng = np.random.default_rng(ss)
        g = torch.Generator().manual_seed(int(rng.integers(2**62)))
        return rng, g

    def make_shard(
        self, out: Path, shard: int, count: int, start: int, progress: Callable[[int], None] | None = None
    ) -> int:
        """Generate shard ``shard`` (samples ``start .. start+count-1``) into ``out``; returns ``count``.

        Images are written first, then the shard file (atomically), then the done marker (atomically)."""
        rng, g = self._rngs(shard)
        sub = f"{shard:05d}"
        for folder in ("images", "masks") if self.masks else ("images",):
            (out / folder / sub).mkdir(parents=True, exist_ok=True)
        records = []
        for b0 in range(0, count, self.batch_size):
            b = min(self.batch_size, count - b0)
            records += self._batch(out, sub, rng, g, start + b0, b)
            if progress is not None:
                progress(b)
        name = f"shard-{shard:05d}"
        with atomic_write(out / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for raw in records:
                f.write(_sample_line(raw))
        atomic_write_json(out / f"{name}.done", {"shard": shard, "count": count, "lines": len(records)})
        return count

    def _batch(
        self, out: Path, sub: str, rng: np.random.Generator, g: torch.Generator, start: int, n: int
    ) -> list[dict]:
        """Sample, pose, frame and write ``n`` samples (indices ``start ...``); return their records."""
        spec, S = self.spec, self.size
        cams = [sample_camera(spec, rng, S) for _ in range(n)]
        params = sample_params(spec, self.samplers, n, g, cams)
        parts = np.full(n, spec.model_part, dtype=object)
        if spec.model_part == "hand":  # left hands: the left model with the mirrored pose
            left = rng.random(n) < spec.left_hands
            parts[left] = "lhand"
            params["hand_pose"][left] = _r6(flip_rotvec(torch.as_tensor(params["hand_pose"][left])))
        params["trans"] = np.zeros((n, 3))
        verts, kps = np.empty(n, object), np.empty(n, object)
        for part in np.unique(parts):
            idx = np.flatnonzero(parts == part)
            verts[idx], kps[idx] = self._forward(str(part), params, idx)
        focal = np.stack([c["focal"] for c in cams])
        princpt = np.stack([c["princpt"] for c in cams])
        framing = [sample_framing(spec, rng, S) for _ in range(n)]
        sizes, centres = np.array([f[0] for f in framing]), np.stack([f[1] for f in framing])
        t = frame_subject(np.stack([v[::16] for v in verts]), focal, princpt, sizes, centres)
        params["trans"] = np.round(t, 6)
        records = []
        for i in range(n):
            p, t_i = {k: v[i] for k, v in params.items()}, params["trans"][i]
            posed = (verts[i] + t_i, kps[i] + t_i)
            records.append(
                self._sample(out, sub, rng, start + i, str(parts[i]), p, *posed, cams[i], framing[i][2])
            )
        return records

    def _forward(self, part: str, params: dict[str, np.ndarray], idx: np.ndarray) -> tuple[list, list]:
        """Per-row lists of vertices (V, 3) and keypoints (J, 3), float64, for the rows ``idx``."""
        model = self.models[part]
        tp = {
            k: torch.as_tensor(v[idx], dtype=torch.float32)
            for k, v in params.items()
            if k in model.param_specs
        }
        with torch.no_grad():
            out = model(tp)
            kp = model.keypoints(out, self.spec.joint_set)
        return list(out.vertices.double().numpy()), list(kp.double().numpy())

    def _sample(
        self,
        out: Path,
        sub: str,
        rng: np.random.Generator,
        index: int,
        part: str,
        params: dict,
        verts: np.ndarray,
        j3: np.ndarray,
        cam: dict,
        truncated: bool,
    ) -> dict:
        """Render, annotate and write the files of one sample; return its folder-format record."""
        from neuralannot.data.synthetic.appearance import sample_light, sample_occluders

        spec, S = self.spec, self.size
        f, c = cam["focal"], cam["princpt"]
        K = np.array([[f[0], 0, c[0]], [0, f[1], c[1]], [0, 0, 1.0]])
        background = self.pool.sample(rng, S, S)
        colors = self.paints[part].colors(rng, spec.style)
        light, ambient = sample_light(rng, spec.style)
        meshes = [(verts, self.faces[part], colors)]
        if rng.random() < spec.occluders:
            uv = verts[::16, :2] / verts[::16, 2:] * f + c
            box, nearest = np.concatenate([uv.min(0), uv.max(0)]), float(verts[:, 2].min())
            meshes += sample_occluders(rng, K, box, float(params["trans"][2]), nearest)
        res = self.renderer.render_meshes(meshes, K, light_dir=light, ambient=ambient, background=background)
        mask = res.mask
        if len(meshes) > 1:  # the subject's visible pixels: occluders lie entirely in front of it
            mask = mask & (res.depth > max(float(m[0][:, 2].max()) for m in meshes[1:]))
        ann = annotate(spec, rng, j3, f, c, res.depth, mask)
        stem = f"{index:07d}"
        image = f"images/{sub}/{stem}.jpg"
        _write_image(out / image, res.image, "JPEG")
        extra: dict[str, Any] = {"truncated": truncated, "occluders": len(meshes) - 1, **ann["info"]}
        if self.masks:
            extra["mask"] = f"masks/{sub}/{stem}.png"
            _write_image(out / extra["mask"], mask, "PNG")
        if spec.model_part == "hand":
            extra["hand_type"] = "left" if part == "lhand" else "right"
        j3d = ann["joints_3d"]
        camera = {"focal": _tolist(f), "princpt": _tolist(c)}
        return {
            "id": f"synth_{spec.name}/{stem}", "image": image, "dataset": f"synth_{spec.name}",
            "image_size": [S, S], "bbox": _tolist(ann["bbox"]), "part": {"hand": "rhand"}.get(part, part),
            "joints_2d": _tolist(ann["joints_2d"]),
            "joints_3d": None if j3d is None else _tolist(j3d[:, :3]),
            "joints_3d_valid": None if j3d is None else _tolist(j3d[:, 3]),
            "joints_3d_frame": None if j3d is None else "camera", "camera": camera,
            "gt": {"model": "anny", "part": part, "params": {k: _tolist(v) for k, v in params.items()},
                   "camera": camera, "joint_set": spec.joint_set, "joints_3d": _tolist(np.round(j3, 5))},
            "extra": extra,
        }  # fmt: skip


def _write_image(path: Path, array: np.ndarray, fmt: str) -> None:
    """JPEG (quality 90) or PNG (fast compression); a crash leaves at most a stale image behind, which
    no shard file references until its shard is rewritten."""
    from PIL import Image

    buf = io.BytesIO()
    if fmt == "JPEG":
        Image.fromarray(array).save(buf, "JPEG", quality=90)
    else:
        Image.fromarray(array).save(buf, "PNG", compress_level=1)
    with open(path, "wb") as fh:
        fh.write(buf.getvalue())


# --- orchestration -------------------------------------------------------------------------------------
