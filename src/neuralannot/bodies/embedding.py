"""Low-dimensional pose embeddings: the in-the-wild pose output of NeuralAnnot and SMPLify-X's pose prior.

A :class:`PoseEmbedding` maps a latent code ``z`` (B, latent_dim) to joint rotations and back:

- :class:`BodyVAE` — VPoser-like VAE (Pavlakos et al. 2019, "Expressive Body Capture") over Anny's
  ``body_pose`` (21, 3): MLP encoder → Normal(mu, softplus(·)), MLP decoder → one 6D rotation per
  joint (column convention of :mod:`neuralannot.geometry.rotations`) → Gram-Schmidt matrices.
  Trained by :func:`neuralannot.training.embedding_vae.train_body_vae`; the shipped
  ``"anny-body-vae"`` is fitted on CMU mocap poses retargeted to Anny
  (``assets/anny_pose_library.safetensors``, Anny native axes as ``body_pose``).
- :class:`HandPCA` — linear PCA of the 45-D hand axis-angle, ``pose = mean + z @ components``. The
  shipped ``"anny-hand-pca"`` is fitted on *procedural* hand poses
  (:class:`~neuralannot.data.synthetic.poses.HandPoseSampler`): no real hand mocap is available
  here, so it spans the sampler's hand families, not the full range of real hands. Right hand, in
  the frame of :class:`~neuralannot.bodies.anny.AnnyHand`'s ``hand_pose`` (left hands are flipped
  to right first; :func:`~neuralannot.data.synthetic.poses.hand_pose_to_body` maps a decoded pose
  to the whole body's ``rhand_pose``).
- :class:`MANOPCA` — MANO's own PCA basis (``hands_components``/``hands_mean``) as a HandPCA.
- :class:`VPoserEmbedding` — a user-supplied VPoser v2 checkpoint for SMPL-X body poses
  (:func:`load_vposer_checkpoint`).

The prior is SMPLify-X's: an L2 penalty on the latent (:meth:`PoseEmbedding.prior_loss`). Loaded
embeddings are frozen (no parameter gradients, eval mode kept even under ``.train()``); gradients
still flow to ``z``. Ours are stored as safetensors with their config in the metadata
(:func:`save_embedding`, :func:`load_embedding`); ``scripts/build_pose_embeddings.py`` rebuilds them.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuralannot.geometry.rotations import (
    rot6d_to_rotmat,
    rotmat_to_rotvec,
    rotvec_to_rot6d,
    rotvec_to_rotmat,
)

__all__ = [
    "EMBEDDING_ASSETS",
    "BodyVAE",
    "EmbeddingError",
    "HandPCA",
    "MANOPCA",
    "PoseEmbedding",
    "VPoserEmbedding",
    "geodesic_angle",
    "load_embedding",
    "load_vposer_checkpoint",
    "save_embedding",
]

#: Shipped embeddings: name → file in ``neuralannot/assets``.
EMBEDDING_ASSETS = {
    "anny-body-vae": "anny_body_vae.safetensors",
    "anny-hand-pca": "anny_hand_pca.safetensors",
}
_FORMAT = "neuralannot.pose_embedding/1"


class EmbeddingError(ValueError):
    """An embedding file or checkpoint that cannot be used (the message names the file)."""


def geodesic_angle(Ra: Tensor, Rb: Tensor, eps: float = 1e-12) -> Tensor:
    """Rotation angle (radians) of ``Ra^T Rb`` for (..., 3, 3) rotations → (...).

    Computed from the chord ``|Ra - Rb|_F = 2√2 sin(θ/2)``, which has finite gradients at θ = 0.
    """
    chord = ((Ra - Rb).pow(2).sum((-1, -2)) + eps).sqrt()
    return 2 * torch.asin((chord / (2 * math.sqrt(2))).clamp(max=1 - 1e-7))


#: Weight of the reconstruction error in :meth:`PoseEmbedding.pose_prior` (relative to the latent norm).
POSE_PRIOR_RECONSTRUCTION = 10.0


class PoseEmbedding(nn.Module):
    """Latent code ``z`` (..., latent_dim) ↔ rotations of shape ``pose_shape`` (axis-angle, e.g. (21, 3)).

    Subclasses implement :meth:`encode`, :meth:`decode` and :meth:`config`.
    """

    def __init__(self, latent_dim: int, pose_shape: tuple[int, ...]):
        super().__init__()
        self.latent_dim = int(latent_dim)
        self.pose_shape = tuple(int(s) for s in pose_shape)
        self.frozen = False
        self.info: dict = {}  # provenance (training data, errors), filled by load_embedding

    # -- interface ---------------------------------------------------------------------------
    def encode(self, pose: Tensor) -> Tensor:
        """Poses (..., *pose_shape) axis-angle, or matrices (..., *pose_shape[:-1], 3, 3)
        → z (..., latent_dim) (the posterior mean for VAEs)."""
        raise NotImplementedError

    def decode(self, z: Tensor) -> Tensor:
        """z (..., latent_dim) → rotation matrices (..., *pose_shape[:-1], 3, 3)."""
        raise NotImplementedError

    def config(self) -> dict:
        """Constructor keyword arguments (JSON-serialisable), stored in saved files."""
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------
    def decode_aa(self, z: Tensor) -> Tensor:
        """z (..., latent_dim) → axis-angle (..., *pose_shape)."""
        return rotmat_to_rotvec(self.decode(z))

    def prior_loss(self, z: Tensor) -> Tensor:
        """SMPLify-X's pose prior: squared L2 norm of the latent, (..., latent_dim) → (...)."""
        return z.pow(2).sum(-1)

    def pose_prior(self, pose: Tensor, reconstruction: float = POSE_PRIOR_RECONSTRUCTION) -> Tensor:
        """Implausibility (...) of poses (..., *pose_shape) axis-angle or matrices: the latent norm of
        the encoded pose plus ``reconstruction`` × how far the decoded pose lies from it (Frobenius²
        of the matrices, summed over joints). A prior on poses that are not parametrised by the latent
        (the neural annotator's ``reg.pose_prior``, 3D SMPLify-X's ``prior_3d="vae"``). The latent norm
        alone can be lowered by moving joints the encoder barely reads (measured: it turned the
        unobserved ankles by ~12° on average); the reconstruction term keeps the pose on the manifold."""
        n = len(self.pose_shape)
        R = pose if pose.shape[-n - 1 :] == (*self.pose_shape[:-1], 3, 3) else rotvec_to_rotmat(pose)
        z = self.encode(R)
        rec = (self.decode(z) - R).square().sum((-1, -2)).sum(-1)
        return self.prior_loss(z) + reconstruction * rec

    def forward(self, z: Tensor) -> Tensor:
        return self.decode(z)

    def freeze(self) -> PoseEmbedding:
        """No parameter gradients and eval mode (kept under a parent's ``.train()``); returns self.
        To fine-tune: ``emb.frozen = False; emb.requires_grad_(True).train()``."""
        self.requires_grad_(False)
        self.frozen = True
        return self.eval()

    def train(self, mode: bool = True) -> PoseEmbedding:
        return super().train(mode and not getattr(self, "frozen", False))

    def _as_rotvec(self, pose: Tensor) -> Tensor:
        """Either rotation form → axis-angle (..., *pose_shape), shape-checked."""
        n = len(self.pose_shape)
        if pose.shape[-n - 1 :] == (*self.pose_shape[:-1], 3, 3):
            pose = rotmat_to_rotvec(pose)
        if pose.shape[-n:] != self.pose_shape:
            raise ValueError(
                f"{type(self).__name__}: expected poses (..., {self.pose_shape}), got {tuple(pose.shape)}"
            )
        return pose

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, pose_shape={self.pose_shape}, frozen={self.frozen}"


# ---------------------------------------------------------------------------------------------
# Body VAE
# ---------------------------------------------------------------------------------------------
class BodyVAE(PoseEmbedding):
    """VPoser-like VAE of body poses (J, 3) (default Anny's 21 body slots), latent 32.

    Encoder: 6D rotations (J·6, minus identity) → Linear(h) → LeakyReLU → Dropout → Linear(h) →
    LeakyReLU → (mu, softplus(raw) = std). Decoder: z → Linear(h) → LeakyReLU → Dropout → Linear(h) →
    LeakyReLU → Linear(J·6) + identity 6D → Gram-Schmidt. (VPoser v2 feeds axis-angle through
    BatchNorm; 6D input avoids the axis-angle wrap at π and batch statistics.)
    """

    def __init__(self, num_joints: int = 21, latent_dim: int = 32, hidden: int = 512, dropout: float = 0.1):
        super().__init__(latent_dim, (num_joints, 3))
        self.hidden, self.dropout = int(hidden), float(dropout)
        n6 = num_joints * 6
        self.encoder = nn.Sequential(
            nn.Linear(n6, hidden),
            nn.LeakyReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(),
        )
        self.enc_mu = nn.Linear(hidden, latent_dim)
        self.enc_std = nn.Linear(hidden, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.LeakyReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.LeakyReLU(), nn.Linear(hidden, n6),
        )  # fmt: skip
        self.register_buffer("eye6", torch.tensor([1.0, 0, 0, 0, 1, 0]).repeat(num_joints), persistent=False)

    def config(self) -> dict:
        return {"num_joints": self.pose_shape[0], "latent_dim": self.latent_dim, "hidden": self.hidden,
                "dropout": self.dropout}  # fmt: skip

    def posterior(self, pose: Tensor) -> tuple[Tensor, Tensor]:
        """Poses (..., J, 3) (or matrices) → posterior mean and std, each (..., latent_dim)."""
        x = rotvec_to_rot6d(self._as_rotvec(pose)).flatten(-2) - self.eye6
        h = self.encoder(x)
        return self.enc_mu(h), F.softplus(self.enc_std(h)) + 1e-6

    def encode(self, pose: Tensor) -> Tensor:
        return self.posterior(pose)[0]

    def decode(self, z: Tensor) -> Tensor:
        x = self.decoder(z) + self.eye6
        return rot6d_to_rotmat(x.unflatten(-1, (self.pose_shape[0], 6)))


# ---------------------------------------------------------------------------------------------
# Hand PCA
# ---------------------------------------------------------------------------------------------
class HandPCA(PoseEmbedding):
    """Linear embedding of axis-angle poses: ``pose = mean + z @ components`` (flattened, D = 45).

    Buffers: ``mean`` (D,), ``components`` (K, D), ``projection`` (D, K) = pinv(components) so that
    :meth:`encode` is the least-squares projection (exact for poses in the span), and
    ``explained_variance_ratio`` (K,) (zeros when unknown). Components fitted with ``whiten=True``
    are scaled by the square root of their variance, so z ~ N(0, I) on the training data and the
    L2 prior is the Gaussian log-density.
    """

    def __init__(self, mean: Tensor, components: Tensor, explained_variance_ratio: Tensor | None = None,
                 pose_shape: tuple[int, ...] = (15, 3), whitened: bool = False):  # fmt: skip
        components = torch.as_tensor(components, dtype=torch.float32)
        super().__init__(components.shape[0], pose_shape)
        if components.shape[1] != math.prod(self.pose_shape):
            raise ValueError(
                f"HandPCA: components {tuple(components.shape)} do not match pose {self.pose_shape}"
            )
        self.whitened = bool(whitened)
        evr = torch.zeros(len(components)) if explained_variance_ratio is None else explained_variance_ratio
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(-1).clone())
        self.register_buffer("components", components.clone())
        self.register_buffer("projection", torch.linalg.pinv(components.double()).float())
        self.register_buffer("explained_variance_ratio", torch.as_tensor(evr, dtype=torch.float32).clone())

    @classmethod
    def fit(cls, poses: Tensor, n_components: int = 12, whiten: bool = True) -> HandPCA:
        """PCA of axis-angle poses (N, *pose_shape) (SVD in float64); frozen result."""
        poses = torch.as_tensor(poses)
        X = poses.reshape(len(poses), -1).double()
        mean = X.mean(0)
        _, S, Vh = torch.linalg.svd(X - mean, full_matrices=False)
        var = S.pow(2) / max(len(X) - 1, 1)
        comps = Vh[:n_components] * (var[:n_components, None].sqrt() if whiten else 1.0)
        return cls(mean, comps.float(), (var / var.sum())[:n_components].float(), tuple(poses.shape[1:]),
                   whitened=whiten).freeze()  # fmt: skip

    def config(self) -> dict:
        return {
            "n_components": self.latent_dim,
            "pose_shape": list(self.pose_shape),
            "whitened": self.whitened,
        }

    @classmethod
    def _empty(cls, cfg: dict) -> HandPCA:
        D, K = math.prod(cfg["pose_shape"]), cfg["n_components"]
        return cls(
            torch.zeros(D), torch.eye(K, D), None, tuple(cfg["pose_shape"]), cfg.get("whitened", False)
        )

    def encode(self, pose: Tensor) -> Tensor:
        x = self._as_rotvec(pose).flatten(-len(self.pose_shape))
        return (x - self.mean) @ self.projection

    def decode_aa(self, z: Tensor) -> Tensor:
        """Linear decode in axis-angle (exact; no round trip through matrices)."""
        return (self.mean + z @ self.components).unflatten(-1, self.pose_shape)

    def decode(self, z: Tensor) -> Tensor:
        return rotvec_to_rotmat(self.decode_aa(z))


class MANOPCA(HandPCA):
    """MANO's own PCA as a :class:`HandPCA`, in the space of the body model's ``hand_pose`` parameter.

    MANO (and SMPL-X) hand poses are offsets from ``hands_mean`` unless ``flat_hand_mean``: the
    parameter is ``z @ hands_components[:K]`` (mean 0); with ``flat_hand_mean=True`` it is
    ``hands_mean + z @ hands_components[:K]``. Components are MANO's raw (unwhitened) rows, so the L2
    prior equals SMPLify-X's hand prior. K = 12 by default (SMPLify-X's ``num_pca_comps``).
    """

    def __init__(self, hand_components: Tensor, hand_mean: Tensor, n_components: int = 12,
                 flat_hand_mean: bool = False):  # fmt: skip
        hand_components = torch.as_tensor(hand_components, dtype=torch.float32)
        if not 1 <= n_components <= hand_components.shape[0]:
            raise ValueError(
                f"MANOPCA: n_components must be in 1..{hand_components.shape[0]}, got {n_components}"
            )
        mean = torch.as_tensor(hand_mean, dtype=torch.float32).reshape(-1)
        super().__init__(mean if flat_hand_mean else torch.zeros_like(mean), hand_components[:n_components])
        self.flat_hand_mean = bool(flat_hand_mean)

    @classmethod
    def from_model(cls, model: nn.Module, n_components: int = 12, side: str = "right") -> MANOPCA:
        """From a loaded ``mano`` (``hand_components``/``hand_mean`` buffers) or ``smplx`` model
        (``{l,r}hand_components``/``{l,r}hand_mean``, picked by ``side``); frozen."""
        prefix = "" if hasattr(model, "hand_components") else {"right": "r", "left": "l"}[side]
        comps, mean = (
            getattr(model, f"{prefix}hand_components", None),
            getattr(model, f"{prefix}hand_mean", None),
        )
        if comps is None or mean is None:
            raise EmbeddingError(
                f"MANOPCA: {type(model).__name__} has no MANO hand PCA (hand_components, hand_mean)"
            )
        flat = bool(getattr(model, "flat_hand_mean", False))
        return cls(comps.detach().cpu(), mean.detach().cpu(), n_components, flat).freeze()

    def config(self) -> dict:
        return {"n_components": self.latent_dim, "flat_hand_mean": self.flat_hand_mean}

    @classmethod
    def _empty(cls, cfg: dict) -> MANOPCA:
        return cls(torch.eye(45), torch.zeros(45), cfg["n_components"], cfg.get("flat_hand_mean", False))


# ---------------------------------------------------------------------------------------------
# VPoser v2 checkpoints (SMPL-X body pose)
# ---------------------------------------------------------------------------------------------
class _NormalHead(nn.Module):
    """VPoser's ``NormalDistDecoder``: features → (mu, softplus(logvar) as std)."""

    def __init__(self, n_in: int, latent_dim: int):
        super().__init__()
        self.mu = nn.Linear(n_in, latent_dim)
        self.logvar = nn.Linear(n_in, latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.mu(x), F.softplus(self.logvar(x))


class VPoserEmbedding(PoseEmbedding):
    """VPoser v2 (human_body_prior ``VPoser``, e.g. V02_05) over SMPL-X body poses (21, 3).

    Same module layout as the original so its ``state_dict`` loads unchanged: ``encoder_net`` =
    [Flatten, BatchNorm1d(63), Linear, LeakyReLU, BatchNorm1d, Dropout, Linear, Linear, NormalHead]
    on axis-angle; ``decoder_net`` = [Linear, LeakyReLU, Dropout, Linear, LeakyReLU, Linear(J·6)].
    VPoser reads each 6-vector as a row-major 3×2 matrix (interleaved columns); it is reordered
    to our column convention before Gram-Schmidt (same orthonormalisation as VPoser's).
    """

    def __init__(self, latent_dim: int = 32, hidden: int = 512, num_joints: int = 21):
        super().__init__(latent_dim, (num_joints, 3))
        self.hidden, n3 = int(hidden), num_joints * 3
        self.encoder_net = nn.Sequential(
            nn.Flatten(), nn.BatchNorm1d(n3), nn.Linear(n3, hidden), nn.LeakyReLU(),
            nn.BatchNorm1d(hidden), nn.Dropout(0.1), nn.Linear(hidden, hidden), nn.Linear(hidden, hidden),
            _NormalHead(hidden, latent_dim),
        )  # fmt: skip
        self.decoder_net = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.LeakyReLU(), nn.Dropout(0.1),
            nn.Linear(hidden, hidden), nn.LeakyReLU(), nn.Linear(hidden, num_joints * 6),
        )  # fmt: skip

    def config(self) -> dict:
        return {"latent_dim": self.latent_dim, "hidden": self.hidden, "num_joints": self.pose_shape[0]}

    def encode(self, pose: Tensor) -> Tensor:
        x = self._as_rotvec(pose)
        lead = x.shape[:-2]
        return self.encoder_net(x.reshape(-1, math.prod(self.pose_shape)))[0].reshape(*lead, self.latent_dim)

    def decode(self, z: Tensor) -> Tensor:
        x = self.decoder_net(z).unflatten(-1, (self.pose_shape[0], 3, 2))
        return rot6d_to_rotmat(torch.cat([x[..., 0], x[..., 1]], -1))


def load_vposer_checkpoint(path: str | Path) -> VPoserEmbedding:
    """Load a user-supplied VPoser v2 checkpoint (PyTorch Lightning ``.ckpt`` with ``state_dict`` keys
    ``vp_model.encoder_net.*``/``vp_model.decoder_net.*``, or a bare state dict) as a frozen
    :class:`VPoserEmbedding` for SMPL-X ``body_pose`` (21, 3). Read with ``weights_only=True``
    (no code from the file runs). Sizes (latent, hidden) are taken from the weights.

    Raises:
        FileNotFoundError: no such file. EmbeddingError: unreadable/corrupt file or not a VPoser v2 model.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"VPoser checkpoint not found: {path}")
    from neuralannot.utils.checkpoint import CheckpointError, read_checkpoint

    try:
        ckpt = read_checkpoint(path, what="VPoser checkpoint")
    except CheckpointError as e:
        raise EmbeddingError(
            f"{e}. Expected a torch/Lightning file loadable with weights_only=True; if it holds other "
            "objects, re-save only its 'state_dict' with torch.save."
        ) from None
    sd = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict):
        raise EmbeddingError(f"VPoser checkpoint {path}: no state_dict found")
    v1 = any("bodyprior_" in str(k) for k in sd)
    sd = {k.removeprefix("vp_model."): v for k, v in sd.items() if isinstance(v, Tensor)}
    sd = {k: v for k, v in sd.items() if k.startswith(("encoder_net.", "decoder_net."))}
    if "encoder_net.8.mu.weight" not in sd or "decoder_net.5.weight" not in sd:
        hint = " (looks like VPoser v1, which is not supported)" if v1 else ""
        raise EmbeddingError(
            f"VPoser checkpoint {path}: not a VPoser v2 model{hint}; missing encoder_net/decoder_net"
        )
    latent, hidden = sd["encoder_net.8.mu.weight"].shape
    model = VPoserEmbedding(latent, hidden, sd["decoder_net.5.weight"].shape[0] // 6)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise EmbeddingError(
            f"VPoser checkpoint {path}: weights do not match the VPoser v2 layout: {e}"
        ) from e
    model.info = {"source": str(path), "format": "vposer-v2"}
    return model.freeze()


# ---------------------------------------------------------------------------------------------
# Save / load
# ---------------------------------------------------------------------------------------------
_TYPES: dict[str, type[PoseEmbedding]] = {
    c.__name__: c for c in (BodyVAE, HandPCA, MANOPCA, VPoserEmbedding)
}  # fmt: skip


def save_embedding(emb: PoseEmbedding, path: str | Path, info: dict | None = None) -> Path:
    """Write ``emb``'s state dict (float32) as safetensors; metadata ``format``, ``type``, ``config``
    and ``info`` (JSON; provenance such as data source, counts, seed, errors). Atomic."""
    from safetensors.torch import save

    from neuralannot.utils.atomic import atomic_write_bytes

    name = type(emb).__name__
    if name not in _TYPES:
        raise EmbeddingError(f"save_embedding: unsupported embedding type {name}")
    tensors = {k: v.detach().cpu().contiguous() for k, v in emb.state_dict().items()}
    meta = {"format": _FORMAT, "type": name, "config": json.dumps(emb.config()),
            "info": json.dumps(info if info is not None else emb.info)}  # fmt: skip
    path = Path(path)
    atomic_write_bytes(path, save(tensors, metadata=meta))
    path.chmod(0o644)  # the temp file of the atomic write is private
    return path


def embedding_path(name_or_path: str | Path) -> Path:
    """Shipped name (:data:`EMBEDDING_ASSETS`) → its file in the package, else the path itself."""
    if str(name_or_path) in EMBEDDING_ASSETS:
        return Path(str(resources.files("neuralannot") / "assets" / EMBEDDING_ASSETS[str(name_or_path)]))
    return Path(name_or_path).expanduser()


def load_embedding(name_or_path: str | Path, device: str | torch.device | None = None) -> PoseEmbedding:
    """Load a frozen embedding saved by :func:`save_embedding`: a shipped name (``"anny-body-vae"``,
    ``"anny-hand-pca"``) or a path. ``.info`` holds the file's provenance metadata.

    Raises:
        FileNotFoundError: missing file (shipped ones are rebuilt by ``scripts/build_pose_embeddings.py``).
        EmbeddingError: corrupt file or not a neuralannot embedding.
    """
    from safetensors import safe_open

    path = embedding_path(name_or_path)
    if not path.is_file():
        hint = (
            " (rebuild with: python scripts/build_pose_embeddings.py)"
            if str(name_or_path) in EMBEDDING_ASSETS
            else ""
        )
        raise FileNotFoundError(f"pose embedding not found: {path}{hint}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
        if meta.get("format") != _FORMAT or meta.get("type") not in _TYPES:
            raise EmbeddingError("missing or unknown embedding metadata")
        cls = _TYPES[meta["type"]]
        cfg = json.loads(meta["config"])
        model = cls._empty(cfg) if hasattr(cls, "_empty") else cls(**cfg)
        model.load_state_dict(tensors, strict=True)
        model.info = json.loads(meta.get("info", "{}"))
    except Exception as e:
        raise EmbeddingError(f"cannot load pose embedding {path}: {type(e).__name__}: {e}") from e
    return model.to(device).freeze() if device is not None else model.freeze()
