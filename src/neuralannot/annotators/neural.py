"""The neural annotator network (paper Sec. 3, Fig. 1): backbone + heads + body model + losses.

MoCap mode (Eq. 1): image feature ‖ encoded GT 3D joints → 6D rotations (root + body bones) and
shape; loss = L1 between the model's regressed joints and the GT 3D joints (visibility-masked,
after the least-squares translation) + L2 regularisers. The translation of the output is that
least-squares fit to the GT joints.

Wild mode (Eq. 2): image → pose-embedding latent + root rotation + shape + camera translation of a
perspective camera with a fixed virtual focal on the crop; loss = L1 between projected model
joints and GT 2D joints (masked, in units of the crop size) + L2 regularisers.

Input/output ablations (paper Tables 2–3) are config switches: ``inputs`` image | joints |
image+joints (wild: joints as Gaussian heatmaps stacked with the image channels), ``outputs``
rotations | embedding.
"""

from __future__ import annotations

import logging
import math

import roma
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.bodies.base import BodyModel, BodyModelError
from neuralannot.bodies.joint_names import root_indices
from neuralannot.bodies.joints import get_regressor, posed_vertices, untranslated_keypoints
from neuralannot.bodies.parts import (
    MODEL_PART,
    PART_EXTENT,  # sets the initial camera distance and translation scale
)
from neuralannot.bodies.shape_solve import ShapeSolver, solve_groups
from neuralannot.bodies.swing_ik import SwingSolver
from neuralannot.data.silhouette import EndPartWeights, silhouette_vertex_ids
from neuralannot.geometry import project, rot6d_to_rotmat, rotmat_to_rotvec
from neuralannot.geometry.alignment import translation_fit
from neuralannot.geometry.rotations import twist_angle
from neuralannot.models.end_crops import EndCropBranch
from neuralannot.models.heads import (
    HeadEntry,
    HeadLayout,
    HeatmapEncoder,
    JointEncoder,
    JointFeatureSampler,
    ParamHead,
)
from neuralannot.utils.modules import apply_to_members

#: Parameter group replaced by the pose embedding, and the shipped embedding, per body-model part.
EMBEDDED_GROUP = {
    "body": ("body_pose", "anny-body-vae"),
    "wholebody": ("body_pose", "anny-body-vae"),
    "hand": ("hand_pose", "anny-hand-pca"),
}
#: ``_aux`` entries that are data caches, not parts of the network: moving the model leaves them on
#: the CPU (frozen backbone features, indexed per item by the data loader; stores shared by models).
AUX_DATA = frozenset({"features", "feature_store"})
IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
#: Canonical Y-up body seen by an OpenCV (y-down) camera: 180° about X; a good initial root rotation.
UPRIGHT_6D = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0)


#: Initial raw output of a folded parameter: off the fold's kink, so its slope is 1 from the start.
FOLD_START = 1e-2


def fold_to_bounds(v: Tensor, bounds: tuple[float, float], default: float) -> Tensor:
    """Raw head output → a value in ``bounds`` that equals ``default`` (one of the bounds) at ``v = 0``
    and moves away from it with slope ``hi − lo``: ``bound ± (hi − lo)·tanh(|v|)``."""
    lo, hi = bounds
    span = (hi - lo) * torch.tanh(v.abs())
    return lo + span if default == lo else hi - span


def output_embedding(cfg: AnnotatorConfig, body: BodyModel, embedding=None) -> tuple[str, object]:
    """(group, frozen embedding) the network's pose-embedding outputs decode through: ``embedding`` if
    given, else ``cfg.embedding``, else the model's own (Anny: its shipped one; MANO: its PCA, not
    Anny's, whose ``hand_pose`` axes differ). Raises where the part has none (SMPL-X: pass a VPoser)."""
    group, _ = EMBEDDED_GROUP.get(body.part, (None, None))
    if group is None or group not in body.param_specs:
        raise ValueError(f"no pose embedding for {body.name} part {body.part!r}; use outputs=rotations")
    if embedding is None:
        from neuralannot.annotators.optimize_problem import resolve_embedding

        embedding = resolve_embedding(body, cfg.embedding or "default")
    if embedding is None:
        raise ValueError(f"no default pose embedding for {body.name}: set embedding (a VPoser .ckpt or an "
                         "embedding file) or outputs: rotations")  # fmt: skip
    return group, embedding.eval().requires_grad_(False)


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


class NeuralAnnotator(nn.Module):
    """Backbone + heads; ``forward(batch)`` → decoded body parameters and camera."""

    def __init__(self, cfg: AnnotatorConfig, body: BodyModel, joint_set: str, embedding=None):
        super().__init__()
        torch.manual_seed(cfg.seed)  # the initial weights depend on the config only
        self.cfg = cfg
        self.joint_set = joint_set
        self._aux = {"body": body, "regressor": get_regressor(body, joint_set), "embedding": None}
        self.num_joints = self.regressor.num_keypoints
        self._aux["swing"] = self._swing_solver(cfg, body) if cfg.swing_head else None
        self._aux["shape"] = None
        if cfg.shape_steps:
            self._aux["shape"] = ShapeSolver(body, self.regressor, solve_groups(body))
        self._aux["silhouettes"] = ids = silhouette_vertex_ids(body) if cfg.silhouette_weight > 0 else None
        end_w, radius = cfg.silhouette_end_weight, cfg.end_crop_extent * cfg.input_size / 2
        stress = ids is not None and end_w != 1  # the silhouette term weighs the hands, feet and head more
        self._aux["sil_ends"] = EndPartWeights(body, ids, joint_set, end_w, radius) if stress else None
        self.root_index = root_indices(joint_set)
        self.extent = PART_EXTENT.get(body.part, 1.0)
        self.embedded_group = None
        if cfg.outputs == "embedding":
            group, embedding = output_embedding(cfg, body, embedding)
            self._aux["embedding"] = embedding
            self.embedded_group = group
        self._aux["pose_prior"] = self._load_pose_prior(body, embedding)
        layout, bias = self._layout(body)
        wild_hm = cfg.wild_heatmaps
        self.backbone = self.hm_encoder = self.joint_encoder = None
        if cfg.freeze_backbone:  # CPU path: frozen ImageNet features (cached), heatmaps via a small CNN
            if cfg.uses_image:
                self.backbone = self._build_backbone(cfg, in_channels=3).requires_grad_(False).eval()
            if wild_hm:
                self.hm_encoder = HeatmapEncoder(self.num_joints)
        elif wild_hm and cfg.inputs == "joints":  # heatmaps only, through the backbone
            self.backbone = self._build_backbone(cfg, in_channels=self.num_joints, rgb_input=False)
        elif cfg.uses_image:
            self.backbone = self._build_backbone(cfg, in_channels=3 + (self.num_joints if wild_hm else 0))
        feat_dim = self.backbone.feature_dim if self.backbone is not None else 0
        self.joint_sampler = None
        if cfg.image_features == "joints" and self.backbone is not None and cfg.uses_image:
            self.joint_sampler = JointFeatureSampler(feat_dim, self.num_joints, cfg.joint_feature_dim)
            feat_dim += self.joint_sampler.out_dim
        ends = cfg.end_crop_options  # None, or close-ups of the hands, feet and head (models/end_crops.py)
        self.end_crops = ends and EndCropBranch(self.backbone if cfg.uses_image else None, joint_set, **ends)
        feat_dim += self.end_crops.out_dim if self.end_crops is not None else 0
        feat_dim += self.hm_encoder.dim if self.hm_encoder is not None else 0
        joint_dim = 0
        if cfg.uses_joints and not wild_hm:  # MoCap 3D joints, or wild 2D coordinates
            coords = 3 if cfg.mode == "mocap" else 2
            dim = cfg.joint_encoder_dim
            self.joint_encoder = JointEncoder(self.num_joints, dim, cfg.joint_distances, coords)
            joint_dim = cfg.joint_encoder_dim
        if feat_dim + joint_dim == 0:
            raise ValueError(f"inputs={cfg.inputs!r} gives the network no input in {cfg.mode} mode")
        self.head = ParamHead(feat_dim, joint_dim, layout, bias, cfg.head_hidden)
        self.feature_dropout = nn.Dropout(cfg.feature_dropout) if cfg.feature_dropout > 0 else None

    # -- construction --------------------------------------------------------------------------
    def _swing_solver(self, cfg: AnnotatorConfig, body: BodyModel) -> SwingSolver | None:
        """The swing head's solver; with the default head (``head`` unset) a model the solver does not
        support falls back to the paper's plain head, with a note; an explicit ``head: swing`` fails."""
        try:
            return SwingSolver(body, self.regressor, weight=cfg.swing_weight_resolved)
        except BodyModelError as e:
            if cfg.head == "swing":
                raise
            logging.getLogger(__name__).info("head: paper (%s)", e)
            return None

    def _load_pose_prior(self, body: BodyModel, embedding) -> tuple[str, object] | None:
        """(group, embedding) scoring regressed rotations for ``reg.pose_prior`` with
        :meth:`~neuralannot.bodies.embedding.PoseEmbedding.pose_prior` (latent norm + reconstruction
        error under the part's shipped VPoser-like VAE). None when the weight is 0, the network
        outputs the embedding anyway, or the model has no shipped embedding (SMPL family)."""
        if not self.cfg.reg.get("pose_prior") or self.cfg.outputs == "embedding":
            return None
        group, default_name = EMBEDDED_GROUP.get(body.part, (None, None))
        if group is None or group not in body.param_specs or body.name != "anny":
            return None
        if embedding is None:
            from neuralannot.bodies.embedding import load_embedding

            embedding = load_embedding(self.cfg.embedding or default_name)
        return group, embedding.eval().requires_grad_(False)

    @staticmethod
    def _build_backbone(cfg: AnnotatorConfig, in_channels: int, rgb_input: bool = True):
        from neuralannot.models.backbone import build_backbone

        return build_backbone(
            cfg.backbone, weights=cfg.backbone_weights, in_channels=in_channels, rgb_input=rgb_input
        )

    def _layout(self, body: BodyModel) -> tuple[HeadLayout, Tensor]:
        entries, bias = [], []
        whole = body.part == "wholebody"
        for name, spec in body.param_specs.items():
            if name == "trans" or (spec.optional and not whole):
                continue
            if spec.kind == "rotation" and name == self.embedded_group:
                dim = self.embedding.latent_dim
                entries.append(HeadEntry("latent", "latent", dim, (dim,)))
                bias += [0.0] * dim
            elif spec.kind == "rotation":
                n = spec.numel // 3
                entries.append(HeadEntry(name, "rot6d", 6 * n, (*spec.shape[:-1], 6)))
                root_up = name == "root_pose" and body.part in ("body", "wholebody")
                bias += list(UPRIGHT_6D if root_up else IDENTITY_6D) * n
            elif spec.bounds is not None and spec.default in spec.bounds:
                # a default at a bound (Anny's facial actions: 0 in [0, 1]): a sigmoid would start
                # saturated (gradient ~1e-4, the head cannot learn); a fold starts there with slope 1
                entries.append(HeadEntry(name, "folded", spec.numel, spec.shape))
                bias += [FOLD_START] * spec.numel
            elif spec.bounds is not None:
                lo, hi = spec.bounds
                entries.append(HeadEntry(name, "bounded", spec.numel, spec.shape))
                bias += [_logit((spec.default - lo) / (hi - lo))] * spec.numel
            else:
                entries.append(HeadEntry(name, "linear", spec.numel, spec.shape))
                bias += [spec.default] * spec.numel
        if self.cfg.mode == "wild":
            entries.append(HeadEntry("camera", "camera", 3, (3,)))
            bias += [0.0, 0.0, 0.0]
        return HeadLayout(entries), torch.tensor(bias)

    # -- non-trained members (kept out of the state dict) ------------------------------------------
    def _apply(self, fn, recurse: bool = True):
        """``.to()``, ``.cuda()``, ``.double()``, ... also convert the auxiliary members in ``_aux``
        (body model, keypoint regressor, pose embedding, swing solver, silhouette ids and any later
        entry): every nn.Module, Tensor and object with an ``_apply_tensors(fn)`` hook, also inside tuples,
        lists and dicts. Data caches (:data:`AUX_DATA`) stay where they are (on the CPU, indexed by
        the data loader)."""
        super()._apply(fn, recurse)
        seen: set[int] = set()
        for key, value in list(self._aux.items()):
            if key not in AUX_DATA:
                self._aux[key] = apply_to_members(value, fn, recurse, seen)
        return self

    @property
    def body(self) -> BodyModel:
        return self._aux["body"]

    @property
    def regressor(self):
        return self._aux["regressor"]

    @property
    def rigid_shape_solve(self) -> bool:
        """The shape solve also turns the global rotation: no swing solve aligns it (faces)."""
        return self._aux["swing"] is None

    @property
    def silhouettes(self) -> Tensor | None:
        """Vertex ids whose projections the silhouette term compares with the mask (or None)."""
        return self._aux["silhouettes"]

    @property
    def embedding(self):
        return self._aux["embedding"]

    # -- forward -----------------------------------------------------------------------------------
    def network_input(self, batch: dict[str, Tensor]) -> Tensor | None:
        """Backbone input: the normalised crop, plus upsampled heatmaps when they share the backbone."""
        parts = []
        if self.cfg.uses_image:
            parts.append(self.backbone.normalize(batch["image"]))
        if self.cfg.wild_heatmaps and self.hm_encoder is None:
            size = (self.cfg.input_size,) * 2
            parts.append(F.interpolate(batch["heatmaps"], size=size, mode="bilinear", align_corners=False))
        return torch.cat(parts, 1) if len(parts) > 1 else parts[0]

    def image_features(self, batch: dict[str, Tensor]) -> Tensor | None:
        """Backbone feature (B, F), with ``image_features: joints`` followed by the spatial map read at
        the GT 2D joints; taken from ``batch["feature"]`` when precomputed (frozen backbone: (B, F) or
        the spatial map (B, C, h, w))."""
        if self.backbone is None:
            return None
        if "feature" in batch:
            feat = batch["feature"]
        elif self.joint_sampler is not None:
            feat = self.backbone.forward_features(self.network_input(batch))
        else:
            return self.backbone(self.network_input(batch))
        if feat.ndim == 2:
            if self.joint_sampler is not None:
                raise ValueError("image_features 'joints' needs spatial backbone features (B, C, h, w)")
            return feat
        fmap = feat.float()
        joints = self.joint_sampler(fmap, batch["joints_2d"], self.cfg.input_size)
        return torch.cat([fmap.mean(dim=(2, 3)), joints], -1)

    def end_part_features(self, batch: dict[str, Tensor]) -> Tensor:
        """Backbone features of the end-part crops: ``batch["end_feature"]`` if precomputed, else cut."""
        if "end_feature" in batch:
            return batch["end_feature"].float()
        return self.end_crops.features(self.backbone, batch["image"], batch["joints_2d"])

    def train(self, mode: bool = True) -> NeuralAnnotator:
        super().train(mode)
        if self.cfg.freeze_backbone and self.backbone is not None:
            self.backbone.eval()  # frozen: BatchNorm statistics stay the pretrained ones
        return self

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Predict; returns body params (rotations as matrices), ``latent`` (if any), ``camera``."""
        feats = [f for f in (self.image_features(batch),) if f is not None]
        if self.end_crops is not None:
            feats.append(self.end_crops(self.end_part_features(batch), batch["joints_2d"]))
        if self.hm_encoder is not None:
            feats.append(self.hm_encoder(batch["heatmaps"]))
        jfeat = None
        if self.joint_encoder is not None and self.cfg.mode == "mocap":
            j = batch["joints_3d"].clone()
            valid = j[..., 3:4] > 0
            root = _masked_root(j[..., :3], valid[..., 0], self.root_index)
            j[..., :3] = (j[..., :3] - root[:, None]) * valid
            jfeat = self.joint_encoder(j)
        elif self.joint_encoder is not None:  # wild: crop pixels → [-1, 1] about the crop centre
            j = batch["joints_2d"]
            half = self.cfg.input_size / 2
            jfeat = self.joint_encoder(torch.cat([(j[..., :2] - half) / half, (j[..., 2:3] > 0).to(j)], -1))
        feat = torch.cat(feats, -1) if feats else None
        if feat is not None and self.feature_dropout is not None:
            feat = self.feature_dropout(feat)
        raw = self.head(feat, jfeat)
        pred = self.decode(raw, batch["K"])
        swing = self._aux["swing"]
        # the shape solve at annotation, MoCap mode only: it reads the given 3D joints
        shape = self._aux["shape"] if not self.training and self.cfg.mode == "mocap" else None
        if swing is not None or shape is not None:
            gt = batch["joints_3d"]
            target, valid = gt[..., :3], gt[..., 3] > 0
        if swing is not None:  # analytic swing toward the given joints (bodies/swing_ik.py)
            pred = swing.solve(pred, target, valid)
        if shape is not None:  # annotation: the shape toward the joints (bodies/shape_solve.py), swing again
            solved = shape.solve(
                pred, target, valid, self.cfg.shape_lambda, self.cfg.shape_steps, rigid=self.rigid_shape_solve
            )
            if swing is not None:
                solved = swing.solve(solved, target, valid)
            pred = shape.keep_better(pred, solved, target, valid)
        return pred

    def decode(self, raw: dict[str, Tensor], K: Tensor) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        specs = self.body.param_specs
        for e in self.head.layout.entries:
            v = raw[e.name]
            if e.kind == "rot6d":
                out[e.name] = rot6d_to_rotmat(v)
            elif e.kind == "latent":
                out["latent"] = v
                out[self.embedded_group] = self.embedding.decode(v)
            elif e.kind == "bounded":
                lo, hi = specs[e.name].bounds
                out[e.name] = lo + (hi - lo) * torch.sigmoid(v)
            elif e.kind == "folded":
                out[e.name] = fold_to_bounds(v, specs[e.name].bounds, specs[e.name].default)
            elif e.kind == "linear":
                out[e.name] = v
            elif e.kind == "camera":
                focal = K[:, 0, 0]
                tz0 = focal * self.extent / (0.8 * self.cfg.input_size)
                tz = tz0 * torch.exp(v[:, 0].clamp(-5, 5))
                out["trans"] = torch.stack([v[:, 1] * self.extent, v[:, 2] * self.extent, tz], -1)
        return out

    def keypoints(self, pred: dict[str, Tensor]) -> Tensor:
        """Model keypoints of the dataset's joint set, (B, J, 3), WITHOUT the translation (callers add
        ``pred["trans"]``: fitted in MoCap mode, predicted camera translation in wild mode)."""
        return untranslated_keypoints(self.body, self.regressor, pred)

    def _silhouette_term(self, batch: dict[str, Tensor], pred: dict[str, Tensor]) -> Tensor:
        """Mean silhouette loss (data/silhouette.py) over the samples with a mask: the model's spread
        vertices projected into the crop (MoCap: the sample's camera through the crop; wild: the
        crop's virtual camera and the predicted translation)."""
        from neuralannot.data.silhouette import silhouette_loss

        params = {k: v for k, v in pred.items() if k in self.body.param_specs}
        verts = posed_vertices(self.body, params, self.silhouettes.to(batch["sil_dt"].device))
        K = batch["K_image"] if self.cfg.mode == "mocap" else batch["K"]
        uv = project(verts, K)
        ends = self._aux["sil_ends"]
        weights = ends(batch["joints_2d"], batch["sil_edge"]) if ends is not None else {}
        loss = silhouette_loss(uv, batch["sil_dt"], batch["sil_edge"], self.cfg.input_size, **weights)
        return _masked_mean(loss, batch["sil_valid"])

    def root_hypotheses(self, root: Tensor) -> Tensor:
        """(H, B, 3, 3): the predicted global rotation turned about the model's canonical +Y by 0,
        360/H, ... degrees: the body's up axis (facing is the ambiguity 2D joints leave to local
        minima) or the hand's wrist → fingers axis (palm or back toward the camera). Faces: 1."""
        H = self.cfg.root_hypotheses if self.body.part in ("body", "wholebody", "hand") else 1
        angles = torch.arange(H, dtype=root.dtype, device=root.device) * (2 * math.pi / H)
        axis = root.new_tensor([0.0, 1.0, 0.0])
        turns = roma.rotvec_to_rotmat(angles[:, None] * axis)  # (H, 3, 3)
        return root[None] @ turns[:, None]

    def pick_root_hypothesis(
        self, batch: dict[str, Tensor], pred: dict[str, Tensor], kp: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Wild mode: keep, per sample, the root hypothesis whose projected keypoints fit the GT 2D
        joints best (a min-of-H loss in training, the selection at annotation). Updates
        ``pred["root_pose"]``; returns the keypoints (B, J, 3, without translation) and the per-joint
        L1 error in crop units (B, J)."""
        gt = batch["joints_2d"]
        valid = (gt[..., 2] > 0).to(kp.dtype)
        R = pred["root_pose"]
        hyp = self.root_hypotheses(R)  # (H, B, 3, 3)
        rel = hyp @ R.transpose(-1, -2)[None]  # turns applied to the already-rotated keypoints
        kps = kp[None] @ rel.transpose(-1, -2)  # (H, B, J, 3)
        uv = project(kps + pred["trans"][None, :, None], batch["K"][None].expand(len(hyp), -1, -1, -1))
        err = (uv - gt[None, ..., :2]).abs().sum(-1) / self.cfg.input_size  # (H, B, J)
        per_sample = (err * valid).sum(-1) / valid.sum(-1).clamp_min(1.0)
        best = per_sample.detach().argmin(0)
        pick = torch.arange(kp.shape[0], device=kp.device)
        pred["root_pose"] = hyp[best, pick]
        return kps[best, pick], err[best, pick]

    # -- losses (Eq. 1 and 2) --------------------------------------------------------------------------
    def losses(self, batch: dict[str, Tensor], pred: dict[str, Tensor]) -> dict[str, Tensor]:
        """Data term + L2 regularisers; also returns the translation fitted (mocap) in ``pred``."""
        cfg = self.cfg
        kp = self.keypoints(pred)
        terms: dict[str, Tensor] = {}
        if cfg.mode == "mocap":
            gt = batch["joints_3d"]
            valid = gt[..., 3] > 0
            t = translation_fit(kp.detach(), gt[..., :3], valid)
            pred["trans"] = t
            err = (kp + t[:, None] - gt[..., :3]).abs().sum(-1)
            terms["joints3d"] = cfg.w_joints3d * _masked_mean(err, valid)
        else:
            gt = batch["joints_2d"]
            valid = gt[..., 2] > 0
            kp, err = self.pick_root_hypothesis(batch, pred, kp)
            terms["joints2d"] = cfg.w_joints2d * _masked_mean(err, valid)
        if "sil_dt" in batch and self.silhouettes is not None:
            terms["silhouette"] = cfg.silhouette_weight * self._silhouette_term(batch, pred)
        targets = [k.removeprefix("target_") for k in batch if k.startswith("target_")]
        if targets:  # two-stage (Table 7): full supervision by the first stage's pseudo-GTs
            err = [(pred[k] - batch[f"target_{k}"]).abs().flatten(1).mean(1) for k in targets if k in pred]
            terms["params"] = cfg.w_params_resolved * torch.stack(err, 1).sum(1).mean()
        for name, weight in cfg.reg.items():
            # fingers: MoCap mode only (wild hands, PCA-decoded, fit their 2D joints worse with it:
            # tuning seed 301, MPVPE 27.4 → 35.0 mm; MoCap: 3.87 → 3.57)
            twisted = "body_pose" if "body_pose" in pred else "hand_pose" if cfg.mode == "mocap" else None
            if name == "twist" and weight and twisted in pred and hasattr(self.body, "twist_axes"):
                # rotations about the limb / finger bone axes: unobservable from joint positions
                axes = self.body.twist_axes().to(pred[twisted])
                terms["reg_twist"] = weight * twist_angle(pred[twisted], axes).square().mean()
            elif name == "pose_prior" and weight and self._aux["pose_prior"] is not None:
                group, prior = self._aux["pose_prior"]
                terms["reg_pose_prior"] = weight * prior.pose_prior(pred[group]).mean()
            elif name == "latent" and "latent" in pred:
                terms["reg_latent"] = weight * pred["latent"].square().mean()
            elif name in pred and name in self.body.param_specs and name != self.embedded_group:
                spec = self.body.param_specs[name]
                v = pred[name]
                if spec.kind == "rotation":
                    v = rotmat_to_rotvec(v)
                else:
                    v = v - spec.default
                terms[f"reg_{name}"] = weight * v.square().mean()
        terms["loss"] = sum(terms.values())
        return terms


def _masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp_min(1.0)


def _masked_root(joints: Tensor, valid: Tensor, root: list[int]) -> Tensor:
    """Root position (B, 3): mean of the valid root joints, else of all valid joints, else 0."""
    w = valid.to(joints.dtype)
    wr = torch.zeros_like(w)
    wr[:, root] = w[:, root]
    use = torch.where(wr.sum(1, keepdim=True) > 0, wr, w)
    return (joints * use[..., None]).sum(1) / use.sum(1, keepdim=True).clamp_min(1.0)


def build_annotator(cfg: AnnotatorConfig, joint_set: str) -> NeuralAnnotator:
    """The annotator of ``cfg`` (body model and part from the config) for samples of ``joint_set``."""
    from neuralannot.bodies import load_body_model

    body = load_body_model(cfg.body_model, part=MODEL_PART.get(cfg.part, cfg.part))
    return NeuralAnnotator(cfg, body, joint_set)
