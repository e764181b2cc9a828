"""SMPL, SMPL-X, MANO (right/left) and FLAME from user-supplied model files, as :class:`BodyModel`.

The models are license-gated and never shipped with neuralannot: register on the model's website,
accept its license and download the files yourself (see :data:`MODEL_URLS`). Posing goes through
the ``*Layer`` classes of the ``smplx`` package (rotation-matrix inputs); axis-angle parameters are
converted with :func:`~neuralannot.bodies.base.as_rotmat`, matrices pass straight through.

Parameters follow the NeuralAnnot release schema (axis-angle, per-sample shapes):

- ``smpl``  (part ``body``): ``root_pose`` (3), ``body_pose`` (23, 3), ``shape`` (num_betas), ``trans`` (3).
- ``smplx`` (part ``wholebody``, also serves ``body``): ``root_pose``, ``body_pose`` (21, 3),
  ``shape`` (num_betas), ``trans``; optional (default 0): ``lhand_pose``/``rhand_pose`` (15, 3),
  ``jaw_pose``, ``leye_pose``, ``reye_pose`` (3), ``expr`` (num_expression_coeffs).
- ``mano``  (part ``hand``, ``side`` right/left): ``root_pose``, ``hand_pose`` (15, 3), ``shape`` (10),
  ``trans``.
- ``flame`` (part ``face``): ``root_pose``, ``jaw_pose``, ``shape``, ``expr``, ``trans``; optional
  ``neck_pose`` (3) and ``eye_pose`` (2, 3) = (left eye, right eye).

**Hand mean.** Like NeuralAnnot (and ``smplx.create``'s default), SMPL-X and MANO hand poses are
*offsets from the model's mean hand pose* (``flat_hand_mean=False``, the default): the joint
rotations used are ``hand_pose + hands_mean`` in axis-angle, so an all-zero ``hand_pose`` is the
relaxed mean hand, not a flat hand. Pass ``flat_hand_mean=True`` to use the hand pose as is.
(smplx's ``*Layer`` classes silently ignore the mean; this module adds it.) Rotation-matrix hand
poses are converted to axis-angle, offset and converted back, so both input forms agree.
MANO's PCA basis is exposed as ``hand_components`` (rows = components, full 45) with the raw mean
``hand_mean``: ``hand_pose`` (non-flat) ``= pca_coeffs @ hand_components``.

**Outputs.** ``BodyOutput.joints`` are the kinematic joints (24 SMPL, 55 SMPL-X, 16 MANO, 5 FLAME)
in ``joint_names`` order; ``extras["smplx_joints"]`` is smplx's full joint output (kinematic joints,
then vertex-picked extra joints — nose/eyes/ears/feet/finger tips, official topologies only — then
face landmarks for SMPL-X/FLAME; names in ``model.smplx_joint_names``); ``extras["landmarks"]`` is
the face-landmark part alone (SMPL-X and FLAME with a landmark embedding). Units: meters, in the
model's own frame (SMPL family: Y up, facing +Z).

**File search order** (:func:`resolve_model_file`): a ``path`` naming a file is used as is. A
``path`` naming a folder ``D`` is searched as ``D/<name>`` then ``D/<type>/<name>`` (``<type>`` =
``smpl | smplx | mano | flame``, smplx's folder convention) for each accepted file name, in order:

- smpl:  ``SMPL_<GENDER>.pkl``, ``SMPL_<GENDER>.npz``, ``basic[mM]odel_<neutral|f|m>_lbs_*.pkl``
  (the names inside the official download)
- smplx: ``SMPLX_<GENDER>.npz``, ``SMPLX_<GENDER>.pkl``
- mano:  ``MANO_<RIGHT|LEFT>.pkl``, ``MANO_<RIGHT|LEFT>.npz``
- flame: ``FLAME_<GENDER>.pkl``, ``FLAME_<GENDER>.npz``, then FLAME 2020/2023 release names
  (``generic_model.pkl``/``flame2023.pkl`` neutral, ``female_model.pkl``, ``male_model.pkl``)

(names match case-insensitively). With ``path=None`` the folder is ``$NEURALANNOT_MODELS``
(see :mod:`neuralannot.paths`); without it a :class:`ModelFileError` explains what to do.
FLAME's landmark embedding is looked up next to the model file: ``flame_static_embedding.pkl``
(smplx / FLAME_PyTorch format) or DECA's ``landmark_embedding.npy``; the 17 contour landmarks
(``use_face_contour``) need ``flame_dynamic_embedding.npy`` (or DECA's file). By default the contour
is on whenever its embedding exists (FLAME: that file; SMPL-X: the model file's ``dynamic_lmk_*``
arrays), so 51 static + 17 contour landmarks give ``face68``; otherwise a warning names the missing
file (also in the error when ``face68`` is asked for). Without an embedding FLAME still works,
without landmarks (a warning says so; ``landmarks=True`` makes it an error).

**File formats.** Model files never run code: ``.pkl`` files (latin1) are read with a restricted
unpickler that only builds numpy arrays, scipy sparse matrices and chumpy arrays (shims, so
neither chumpy nor scipy is needed), ``.npz`` files with ``allow_pickle=False`` (object members
through the same reader); see :mod:`neuralannot.bodies.model_files`. smplx's layers get the cleaned
arrays (``data_struct``, or a plain ``.npz`` staged in a temporary folder), never the original file,
and the same holds for FLAME's landmark embeddings.

Official ``MANO_LEFT.pkl`` has the x-component of ``shapedirs`` un-mirrored
(https://github.com/vchoutas/smplx/issues/48); like NeuralAnnot we flip it when the right model next
to it shows the bug (``fix_left_shapedirs=True``).

File lookup, type inference and the checks of the file contents live in
:mod:`neuralannot.bodies.smplx_files`; this module builds the models.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from neuralannot.bodies.base import (
    BodyModel,
    BodyModelError,
    BodyOutput,
    as_rotmat,
    as_rotvec,
)
from neuralannot.bodies.model_files import write_clean_npz
from neuralannot.bodies.smplx_files import (
    _DISPLAY,
    MODEL_TYPES,
    MODEL_URLS,
    SMPLX_CONTOUR_KEYS,
    _build_layer,
    _check_layer,
    _check_model_data,
    _extra_joint_names,
    _flame_embeddings,
    _kinematic_joint_names,
    _landmark_names,
    _maybe_fix_left_mano,
    _norm_gender,
    _norm_side,
    _norm_type,
    _read_model_data,
    candidate_file_names,
    flame_contour_note,
    infer_model_type,
    resolve_model_file,
    smplx_contour_note,
)
from neuralannot.bodies.specs import flame_specs, mano_specs, smpl_specs, smplx_specs

__all__ = [
    "FLAMEHead",
    "MANOHand",
    "MODEL_TYPES",
    "MODEL_URLS",
    "SMPLBody",
    "SMPLXBody",
    "SmplxFamilyModel",
    "candidate_file_names",
    "infer_model_type",
    "load_smplx_family",
    "resolve_model_file",
]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# BodyModel wrappers
# ---------------------------------------------------------------------------------------------
class SmplxFamilyModel(BodyModel):
    """Shared wrapper around an ``smplx`` ``*Layer``: file bookkeeping, joints, extras, hand means.

    Attributes: ``smplx_layer`` (the smplx module), ``model_type``, ``model_file``, ``gender``,
    ``num_betas``, ``num_expression_coeffs``, ``parts`` (parts it can serve), ``smplx_joint_names``.
    """

    model_type: str = ""
    parts: tuple[str, ...] = ()

    def __init__(self, layer: torch.nn.Module, model_file: Path, gender: str = "neutral",
                 has_landmarks: bool = False):
        super().__init__()
        t = self.model_type
        self.smplx_layer = layer
        self.model_file = Path(model_file)
        self.gender = gender
        self.num_betas = int(layer.num_betas)
        self.num_expression_coeffs = int(getattr(layer, "num_expression_coeffs", 0))
        self.register_buffer("faces", layer.faces_tensor.detach().clone().long(), persistent=False)
        self.parents = [int(p) for p in layer.parents.tolist()]
        self.parents[0] = -1
        self.joint_names = _kinematic_joint_names(t)
        self.num_joints = len(self.parents)
        # vertex-picked extra joints exist only for the official topology
        V = int(layer.v_template.shape[0])
        sel = getattr(layer, "vertex_joint_selector", None)
        n_extra = 0
        if sel is not None and t in ("smpl", "smplx"):
            idx = sel.extra_joints_idxs
            if idx.numel() and int(idx.max()) >= V:
                log.warning("%s: %d-vertex mesh is not the official topology; no vertex-picked extra joints",
                            _DISPLAY[t], V)
                sel.extra_joints_idxs = idx.new_zeros(0)
            n_extra = int(sel.extra_joints_idxs.numel())
        self._n_extra = n_extra
        self.has_landmarks = has_landmarks
        #: keypoint set -> why it is unavailable (e.g. a missing contour embedding), for error messages
        self.keypoint_notes: dict[str, str] = {}
        n_static = int(layer.lmk_faces_idx.shape[0]) if hasattr(layer, "lmk_faces_idx") else 0
        n_dyn = 0
        if getattr(layer, "use_face_contour", False) and hasattr(layer, "dynamic_lmk_faces_idx"):
            n_dyn = int(layer.dynamic_lmk_faces_idx.shape[-1])
        self._n_landmarks = n_static + n_dyn if has_landmarks else 0
        self._n_dummy = n_static + n_dyn if (hasattr(layer, "lmk_faces_idx") and not has_landmarks) else 0
        extra_names = _extra_joint_names(t) if n_extra else []
        if len(extra_names) != n_extra:
            extra_names = [f"vertex_joint_{i}" for i in range(n_extra)]
        self.smplx_joint_names = (self.joint_names + extra_names
                                  + (_landmark_names(n_static, n_dyn) if has_landmarks else []))
        self._contour = bool(n_dyn)
        if n_dyn:
            layer.use_face_contour = False  # the contour is picked here (see _contour_landmarks)

    # -- helpers for subclasses ------------------------------------------------------------------
    def _contour_landmarks(self, vertices: Tensor, head: Tensor) -> Tensor:
        """The 17 contour landmarks of ``head`` (B, 3, 3), the rotation of the neck's kinematic chain:
        the look-up-table row of the head's yaw (degrees in -39..39) towards the camera, as smplx does,
        except that the camera is on the side the face looks to: +Z (the model's own frame, as smplx)
        or -Z (a camera frame with Z forward, where the root holds a half turn and smplx's yaw would
        pick the mirrored row)."""
        from smplx.lbs import vertices2landmarks

        layer = self.smplx_layer
        toward = torch.where(head[:, 2, 2] < 0, -1.0, 1.0).to(head)  # camera side, seen from the face
        sy = torch.sqrt(head[:, 0, 0] ** 2 + head[:, 1, 0] ** 2)
        yaw = torch.rad2deg(torch.atan2(-toward * head[:, 2, 0], sy))  # = smplx's for a face towards +Z
        t = torch.round(torch.clamp(-yaw, max=39)).long()
        row = torch.where(t < 0, torch.where(t < -39, torch.full_like(t, 78), 39 - t), t)
        return vertices2landmarks(vertices, layer.faces_tensor, layer.dynamic_lmk_faces_idx[row],
                                  layer.dynamic_lmk_bary_coords[row])

    def _rotmats(self, p: dict[str, Tensor], name: str, batch: int) -> Tensor:
        """Rotation group ``name`` → (B, n, 3, 3) matrices (n = 1 for a single rotation)."""
        spec = self.param_specs[name].shape
        return as_rotmat(p[name], spec).reshape(batch, -1, 3, 3)

    def _hand_rotmats(self, p: dict[str, Tensor], name: str, mean: Tensor, batch: int) -> Tensor:
        """Hand pose (offset from ``mean`` in axis-angle unless flat_hand_mean) → (B, 15, 3, 3)."""
        pose = p[name]
        if not self.flat_hand_mean:
            pose = as_rotvec(pose, (15, 3)) + mean.reshape(15, 3)
        return as_rotmat(pose, (15, 3))

    def _call_layer(self, p: dict[str, Tensor], batch: int):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- forward ------------------------------------------------------------------------------
    def forward(self, params: dict[str, Tensor], return_vertices: bool = True) -> BodyOutput:
        """Pose the model. Parameters are cast to the model's dtype and device."""
        full, batch = self.complete_params(params)
        dtype, device = self.dtype, self.device
        if batch == 0:
            V = int(self.smplx_layer.v_template.shape[0])
            return BodyOutput(
                joints=torch.zeros(0, self.num_joints, 3, dtype=dtype, device=device),
                vertices=torch.zeros(0, V, 3, dtype=dtype, device=device) if return_vertices else None,
                extras={"smplx_joints": torch.zeros(0, len(self.smplx_joint_names), 3, dtype=dtype,
                                                    device=device)})
        full = {k: v.to(dtype=dtype, device=device) for k, v in full.items()}
        out = self._call_layer(full, batch)
        all_joints = out.joints
        if self._n_dummy:
            all_joints = all_joints[:, : all_joints.shape[1] - self._n_dummy]
        extras = {"smplx_joints": all_joints}
        if self._n_landmarks:
            extras["landmarks"] = all_joints[:, all_joints.shape[1] - self._n_landmarks:]
        return BodyOutput(joints=all_joints[:, : self.num_joints],
                          vertices=out.vertices if return_vertices else None, extras=extras)

    @property
    def num_vertices(self) -> int:
        return int(self.smplx_layer.v_template.shape[0])

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, file={self.model_file.name}, gender={self.gender}"


class SMPLBody(SmplxFamilyModel):
    """SMPL: ``root_pose`` (3), ``body_pose`` (23, 3), ``shape`` (num_betas), ``trans`` (3)."""

    name = "smpl"
    model_type = "smpl"
    part = "body"
    parts = ("body",)

    def __init__(self, layer, model_file, gender="neutral"):
        super().__init__(layer, model_file, gender)
        self.param_specs = {s.name: s for s in smpl_specs(self.num_betas)}

    def _call_layer(self, p, batch):
        return self.smplx_layer(
            betas=p["shape"], global_orient=self._rotmats(p, "root_pose", batch),
            body_pose=self._rotmats(p, "body_pose", batch), transl=p["trans"], return_verts=True)


class SMPLXBody(SmplxFamilyModel):
    """SMPL-X: body as SMPL (21 body joints) plus optional hands, jaw, eyes and expression."""

    name = "smplx"
    model_type = "smplx"
    part = "wholebody"
    parts = ("body", "wholebody")

    def __init__(self, layer, model_file, gender="neutral", flat_hand_mean=False):
        super().__init__(layer, model_file, gender, has_landmarks=True)
        self.flat_hand_mean = bool(flat_hand_mean)
        # raw (official) PCA bases and means of both hands; the means apply unless flat_hand_mean
        for name, value in (("lhand_components", _as_buffer(layer.np_left_hand_components, self)),
                            ("rhand_components", _as_buffer(layer.np_right_hand_components, self)),
                            ("lhand_mean", layer.left_hand_mean.detach().clone().reshape(-1)),
                            ("rhand_mean", layer.right_hand_mean.detach().clone().reshape(-1))):
            self.register_buffer(name, value, persistent=False)
        specs = smplx_specs(self.num_betas, self.num_expression_coeffs, self.flat_hand_mean)
        self.param_specs = {s.name: s for s in specs}

    def _call_layer(self, p, batch):
        root, body = self._rotmats(p, "root_pose", batch), self._rotmats(p, "body_pose", batch)
        out = self.smplx_layer(
            betas=p["shape"], expression=p["expr"], global_orient=root, body_pose=body,
            left_hand_pose=self._hand_rotmats(p, "lhand_pose", self.lhand_mean, batch),
            right_hand_pose=self._hand_rotmats(p, "rhand_pose", self.rhand_mean, batch),
            jaw_pose=self._rotmats(p, "jaw_pose", batch),
            leye_pose=self._rotmats(p, "leye_pose", batch),
            reye_pose=self._rotmats(p, "reye_pose", batch),
            transl=p["trans"], return_verts=True)
        if self._contour:  # head = the neck's chain (neck, spines, pelvis), as smplx
            rots = torch.cat([root, body], 1)
            head = rots[:, 0]
            for j in reversed(self.smplx_layer.neck_kin_chain.tolist()[:-1]):
                head = head @ rots[:, j]
            out.joints = torch.cat([out.joints, self._contour_landmarks(out.vertices, head)], 1)
        return out


class MANOHand(SmplxFamilyModel):
    """MANO (one side): ``root_pose`` (3), ``hand_pose`` (15, 3), ``shape`` (10), ``trans`` (3)."""

    name = "mano"
    model_type = "mano"
    part = "hand"
    parts = ("hand",)

    def __init__(self, layer, model_file, side="right", flat_hand_mean=False):
        super().__init__(layer, model_file, "neutral")
        self.side = side
        self.flat_hand_mean = bool(flat_hand_mean)
        self.parts = ("hand", "rhand" if side == "right" else "lhand")
        #: MANO's own PCA basis (rows = components over the 45 finger axis-angles) and raw mean.
        self.register_buffer("hand_components", _as_buffer(layer.np_hand_components, self), persistent=False)
        self.register_buffer("hand_mean", layer.hand_mean.detach().clone().reshape(-1), persistent=False)
        self.param_specs = {s.name: s for s in mano_specs(self.num_betas, self.flat_hand_mean)}

    def _call_layer(self, p, batch):
        return self.smplx_layer(
            betas=p["shape"], global_orient=self._rotmats(p, "root_pose", batch),
            hand_pose=self._hand_rotmats(p, "hand_pose", self.hand_mean, batch),
            transl=p["trans"], return_verts=True)  # MANOLayer drops joints when return_verts=False


class FLAMEHead(SmplxFamilyModel):
    """FLAME: ``root_pose``, ``jaw_pose`` (3), ``shape``, ``expr``, ``trans``; optional ``neck_pose`` (3),
    ``eye_pose`` (2, 3) = (left eye, right eye)."""

    name = "flame"
    model_type = "flame"
    part = "face"
    parts = ("face",)

    def __init__(self, layer, model_file, gender="neutral", has_landmarks=True):
        super().__init__(layer, model_file, gender, has_landmarks=has_landmarks)
        self.param_specs = {s.name: s for s in flame_specs(self.num_betas, self.num_expression_coeffs)}

    def _call_layer(self, p, batch):
        eyes = self._rotmats(p, "eye_pose", batch)
        root, neck = self._rotmats(p, "root_pose", batch), self._rotmats(p, "neck_pose", batch)
        out = self.smplx_layer(
            betas=p["shape"], expression=p["expr"], global_orient=root, neck_pose=neck,
            jaw_pose=self._rotmats(p, "jaw_pose", batch),
            leye_pose=eyes[:, :1], reye_pose=eyes[:, 1:], transl=p["trans"], return_verts=True)
        if self._contour:  # head = root then neck, as FLAME_PyTorch and DECA (smplx: the root alone,
            # so a turned neck kept a frontal contour)
            contour = self._contour_landmarks(out.vertices, root[:, 0] @ neck[:, 0])
            out.joints = torch.cat([out.joints, contour], 1)
        return out

def _as_buffer(array: Any, model: SmplxFamilyModel) -> Tensor:
    from smplx.utils import to_np

    ref = model.smplx_layer.shapedirs
    return torch.as_tensor(to_np(array), dtype=ref.dtype, device=ref.device).clone()


# ---------------------------------------------------------------------------------------------
# loader
# ---------------------------------------------------------------------------------------------
def load_smplx_family(
    model_type: str,
    path: str | os.PathLike | None = None,
    gender: str = "neutral",
    side: str | None = None,
    num_betas: int = 10,
    num_expression_coeffs: int = 10,
    flat_hand_mean: bool = False,
    use_face_contour: bool | None = None,
    landmarks: bool | None = None,
    fix_left_shapedirs: bool = True,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
) -> SmplxFamilyModel:
    """Load an SMPL-family model from official files as a :class:`BodyModel`.

    Args:
        model_type: ``smpl | smplx | mano | flame`` (``smpl-x`` etc. accepted).
        path: model file, or folder searched as in the module docstring; ``None`` = ``$NEURALANNOT_MODELS``.
        gender: ``neutral | male | female`` (ignored by MANO; with a file ``path`` only recorded).
        side: MANO hand ``right | left``; ``None`` = from the file name (``MANO_LEFT.pkl``), else right.
        num_betas: shape coefficients (smplx caps it at 10 for 10-component files, at 300 otherwise).
        num_expression_coeffs: SMPL-X/FLAME expression coefficients (same capping: 10 or 100).
        flat_hand_mean: SMPL-X/MANO: ``False`` (NeuralAnnot) = hand poses are offsets from the mean hand.
        use_face_contour: SMPL-X/FLAME: add the 17 pose-dependent contour landmarks (needed by
            ``face68``); ``None`` = whenever the contour embedding exists (SMPL-X: in the model file;
            FLAME: ``flame_dynamic_embedding.npy`` or DECA's file next to it), else off with a warning.
        landmarks: FLAME only: ``None`` = use the embedding if present (warn if not), ``True`` = require
            it, ``False`` = no landmarks.
        fix_left_shapedirs: MANO left: flip x of ``shapedirs`` if they show smplx issue #48.
        dtype, device: of the model buffers (float32 default).

    Raises:
        ModelFileError: a file is missing (message names the file, folders searched and the download
            site) or unreadable / corrupt / of the wrong model type (message names the file and problem).
        BodyModelError: bad arguments.
    """
    import smplx

    t = _norm_type(model_type)
    gender = _norm_gender(gender)
    display = _DISPLAY[t]
    if t == "mano":
        if side is not None:
            side = _norm_side(side)
        if path is not None and Path(path).is_file():
            stem = Path(path).name.upper()
            file_side = "left" if "LEFT" in stem else "right" if "RIGHT" in stem else None
            if side is not None and file_side is not None and side != file_side:
                raise BodyModelError(f"side={side!r} but {Path(path).name} is a {file_side} MANO hand "
                                     f"(use side={file_side!r}, or part='{file_side[0]}hand')")
            side = side or file_side
        side = side or "right"
    file = resolve_model_file(t, path, gender, side or "right")

    data = _read_model_data(file, display)
    staging = tempfile.TemporaryDirectory(prefix="neuralannot_model_")
    note = None
    if t == "smplx" and use_face_contour is None:
        keys = set(data.files) if hasattr(data, "files") else set(data.keys())
        use_face_contour = all(k in keys for k in SMPLX_CONTOUR_KEYS)
        if not use_face_contour:
            note = smplx_contour_note(file)
            warnings.warn(f"SMPL-X: {note}", stacklevel=2)
    try:
        _check_model_data(t, data, file, bool(use_face_contour))
        common = dict(num_betas=num_betas, dtype=dtype)
        if t == "smpl":
            from smplx.utils import Struct

            layer = _build_layer(smplx.SMPLLayer, file, display, model_path=str(file), gender=gender,
                                 data_struct=Struct(**dict(data)), **common)
            _check_layer(t, layer, file)
            model: SmplxFamilyModel = SMPLBody(layer, file, gender)
        elif t == "mano":
            from smplx.utils import Struct

            layer = _build_layer(smplx.MANOLayer, file, display, model_path=str(file),
                                 data_struct=Struct(**dict(data)), is_rhand=side == "right", use_pca=False,
                                 num_pca_comps=45, flat_hand_mean=False, **common)
            layer.is_rhand = side == "right"
            _check_layer(t, layer, file)
            if side == "left" and fix_left_shapedirs:
                _maybe_fix_left_mano(layer, file)
            model = MANOHand(layer, file, side, flat_hand_mean)
        elif t == "smplx":  # smplx reads the file itself: hand it the cleaned arrays
            clean = write_clean_npz(data, Path(staging.name) / f"SMPLX_{gender.upper()}.npz")
            layer = _build_layer(smplx.SMPLXLayer, file, display, model_path=str(clean), gender=gender,
                                 ext="npz", num_expression_coeffs=num_expression_coeffs,
                                 use_pca=False, num_pca_comps=45, flat_hand_mean=False,
                                 use_face_contour=use_face_contour, **common)
            _check_layer(t, layer, file)
            model = SMPLXBody(layer, file, gender, flat_hand_mean)
        else:
            # smplx's FLAME only reads <folder>/FLAME_<GENDER>.<ext> + flame_static_embedding.pkl:
            # stage clean copies under those names in a temporary folder.
            if landmarks is False and use_face_contour:
                raise BodyModelError("use_face_contour=True needs landmarks; do not pass landmarks=False")
            tmp = Path(staging.name)
            write_clean_npz(data, tmp / f"FLAME_{gender.upper()}.npz")
            real, use_face_contour = _flame_embeddings(file, tmp, use_face_contour, landmarks)
            if real and not use_face_contour:
                note = flame_contour_note(file)
            layer = _build_layer(smplx.FLAMELayer, file, display, model_path=str(tmp), gender=gender,
                                 ext="npz", num_expression_coeffs=num_expression_coeffs,
                                 use_face_contour=use_face_contour, **common)
            _check_layer(t, layer, file)
            model = FLAMEHead(layer, file, gender, has_landmarks=real)
    finally:
        staging.cleanup()
    if note is not None:
        model.keypoint_notes.update({"face68": note, "coco_wholebody133": note} if t == "smplx"
                                    else {"face68": note})
    if model.num_betas != num_betas:
        warnings.warn(f"{display} file {file.name} provides {model.num_betas} shape coefficients, "
                      f"not the {num_betas} asked for", stacklevel=2)
    if t in ("smplx", "flame") and model.num_expression_coeffs != num_expression_coeffs:
        warnings.warn(f"{display} file {file.name} provides {model.num_expression_coeffs} expression "
                      f"coefficients, not the {num_expression_coeffs} asked for", stacklevel=2)
    if device is not None:
        model = model.to(device)
    return model.eval()
