"""Pseudo-GT files: per-sample body-model parameters in the NeuralAnnot release layout (JSON) or compact npz.

One :class:`PseudoGT` per sample holds its parameters in OUR body-model names (axis-angle, float32),
the camera in the ORIGINAL image's pixels, a quality block and, for hands, the side.

**JSON** (``*.json``) is exactly ``{sample_id: entry}`` (no top-level extras) so existing NeuralAnnot
loaders read it unchanged; rotations are flattened lists. Entries per model:

- smpl:  ``{"smpl_param": {"pose": [72] = root_pose + body_pose, "shape": [n], "trans": [3]}, ...}``
- smplx: ``{"smplx_param": {"root_pose": [3], "body_pose": [63], "lhand_pose": [45], "rhand_pose": [45],
  "jaw_pose": [3], "shape": [n], "expr": [m], "trans": [3], "lhand_valid", "rhand_valid", "face_valid"
  (+ "leye_pose", "reye_pose" [3] if present)}, ...}``. A group is *valid* iff it is in ``params``;
  missing groups are written as zeros with ``*_valid: false`` and dropped again on read (the face
  group is ``jaw_pose`` + ``expr`` (+ eyes); if one of them is present the others are written as zeros).
- flame: ``{"flame_param": {"root_pose", "jaw_pose", "expr", "shape", "trans" (+ "neck_pose" [3],
  "eye_pose" [6] = left, right)}, ...}``
- anny:  ``{"anny_param": {"root_pose": [3], "trans": [3], "phenotype": {name: v}, ...}, ...}`` with, for
  the body, ``"pose": {slot: [3]}`` (:data:`~neuralannot.bodies.anny.BODY_SLOTS` names) and optional
  ``"lhand_pose"``/``"rhand_pose": {finger: [3]}``, ``"expression": {facial action: v}``,
  ``"local_changes": [k]``; for the hand ``"pose": {finger: [3]}`` (``thumb1`` … ``pinky3``); for the
  head ``"head_pose": [3]``, ``"eye_pose": {"left_eye": [3], "right_eye": [3]}``, ``"expression"``.
- every non-MANO entry also has ``"cam_param": {"focal": [fx, fy], "princpt": [cx, cy]}`` (when known),
  ``"quality": {...}`` (ours), ``"part"`` and, for hands, ``"side"``.
- mano:  ``{key: {"right": side | null, "left": side | null}}`` with
  ``side = {"pose": [48] = root_pose + hand_pose, "shape": [n], "trans": [3], "cam_param", "quality",
  "part", "id"}``. **Id mapping:** a sample ``<base>_r`` with side right (``<base>_l``, left) goes under
  key ``<base>``, so the two hands of one image share an entry; any other id is its own key. ``"id"``
  keeps the sample id, so reading splits entries back exactly; files without it (the original release)
  read as ``<key>_r`` / ``<key>_l``.

Metadata (model, part, method, version, created, config hash, ...) goes to the sidecar
``<file>.meta.json`` (e.g. ``train.json.meta.json``), for npz files too; it records the file's SHA-256
and is ignored on reading when that does not match (:mod:`neuralannot.io.sidecar`).

**npz** (``*.npz``): ``ids`` (N,) str; ``models``, ``parts``, ``sides`` (N,) str (``""`` = no side);
``param.<name>`` (N, *shape) float32 and ``valid.<name>`` (N,) bool when some samples lack the group
(their rows are zeros); ``cam_focal``, ``cam_princpt`` (N, 2) float64 and ``cam_valid`` (N,) bool;
``quality.<key>`` (N,) float64 for numeric quality values (NaN = absent) and ``quality_json`` (N,) str
with the other quality values as JSON. Written atomically, read without pickle.

**Streaming:** :class:`PartWriter` writes complete ``part-00000.jsonl`` chunks atomically (one
:meth:`PseudoGT.to_dict` per line), :func:`done_ids` lists finished samples for resuming and
:func:`merge_parts` writes the final file with each sample once.

The package splits along those seams: :mod:`.record` (the record and its schema tables),
:mod:`.release_json`, :mod:`.npz`, :mod:`.files` (write/read, records → model params) and
:mod:`.parts` (streaming chunks).
"""

from neuralannot.io.pseudo_gt.files import (
    check_pseudo_gt_suffix,
    config_hash,
    meta_path,
    read_pseudo_gt,
    to_body_params,
    write_pseudo_gt,
)
from neuralannot.io.pseudo_gt.parts import PartWriter, done_ids, merge_parts, read_parts
from neuralannot.io.pseudo_gt.record import (
    FORMAT,
    FORMAT_VERSION,
    MODELS,
    PARAM_SHAPES,
    SIDES,
    PseudoGT,
    PseudoGTError,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MODELS",
    "PARAM_SHAPES",
    "SIDES",
    "PseudoGT",
    "PseudoGTError",
    "PartWriter",
    "check_pseudo_gt_suffix",
    "config_hash",
    "done_ids",
    "merge_parts",
    "read_parts",
    "meta_path",
    "read_pseudo_gt",
    "to_body_params",
    "write_pseudo_gt",
]
