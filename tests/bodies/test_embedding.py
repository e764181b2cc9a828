"""Pose embeddings: shipped body VAE and hand PCA, MANO PCA, VPoser v2 loader, save/load, training."""

import math

import pytest
import torch
import torch.nn.functional as F

from neuralannot.bodies.embedding import (
    EMBEDDING_ASSETS,
    MANOPCA,
    BodyVAE,
    EmbeddingError,
    HandPCA,
    embedding_path,
    geodesic_angle,
    load_embedding,
    load_vposer_checkpoint,
    save_embedding,
)
from neuralannot.geometry.rotations import rotvec_to_rotmat
from neuralannot.training.embedding_vae import train_body_vae

#: Median over library poses of the per-pose mean joint error of decode(encode(x)); the shipped VAE
#: measures 1.9° on every 6th library pose (held-out val poses: 3.3°), asserted with margin.
MAX_MEDIAN_REC_DEG = 6.0


def assert_rotations(R: torch.Tensor, atol: float = 1e-5) -> None:
    eye = torch.eye(3).expand_as(R)
    assert torch.allclose(R.transpose(-1, -2) @ R, eye, atol=atol)
    assert torch.allclose(torch.linalg.det(R), torch.ones(R.shape[:-2]), atol=atol)


@pytest.fixture(scope="module")
def library_poses():
    from safetensors import safe_open

    path = embedding_path("anny-body-vae").parent / "anny_pose_library.safetensors"
    with safe_open(str(path), framework="pt") as f:
        poses = f.get_tensor("body_pose").float()
    return poses[:: max(1, len(poses) // 2000)]


@pytest.fixture(scope="module")
def body_vae():
    return load_embedding("anny-body-vae")


@pytest.fixture(scope="module")
def hand_pca():
    return load_embedding("anny-hand-pca")


# -- shipped assets -----------------------------------------------------------------------------
def test_shipped_assets_metadata_and_size():
    for name, file in EMBEDDING_ASSETS.items():
        path = embedding_path(name)
        assert path.name == file and path.is_file()
        assert path.stat().st_size < 5e6
        info = load_embedding(name).info
        assert {"seed", "command"} <= set(info)
    assert load_embedding("anny-body-vae").info["val_rec_deg_mean"] > 0
    assert "procedural" in load_embedding("anny-hand-pca").info["data"].lower()


def test_body_vae_round_trip_library(body_vae, library_poses):
    assert isinstance(body_vae, BodyVAE) and body_vae.latent_dim == 32 and body_vae.pose_shape == (21, 3)
    with torch.no_grad():
        z = body_vae.encode(library_poses)
        err = geodesic_angle(body_vae.decode(z), rotvec_to_rotmat(library_poses)).rad2deg().mean(1)
    assert z.shape == (len(library_poses), 32)
    assert err.median() < MAX_MEDIAN_REC_DEG, err.median()
    # matrices in = axis-angle in
    assert torch.allclose(body_vae.encode(rotvec_to_rotmat(library_poses[:8])), z[:8], atol=1e-4)


def test_body_vae_decodes_valid_rotations(body_vae):
    z = torch.randn(64, 32, generator=torch.Generator().manual_seed(1)) * 2
    R = body_vae.decode(z)
    assert R.shape == (64, 21, 3, 3)
    assert_rotations(R)
    aa = body_vae.decode_aa(z)
    assert aa.shape == (64, 21, 3) and torch.allclose(rotvec_to_rotmat(aa), R, atol=1e-5)
    assert body_vae.decode(z[:3].reshape(3, 1, 32)).shape == (3, 1, 21, 3, 3)  # extra leading dims


def test_body_vae_zero_code_is_plausible(body_vae, library_poses):
    from neuralannot.data.synthetic.pose_fit import limit_violations

    zero = body_vae.decode_aa(torch.zeros(1, 32))
    assert not limit_violations(zero).any()
    # close to the average pose: its angle to the nearest library pose is small
    d = geodesic_angle(rotvec_to_rotmat(zero), rotvec_to_rotmat(library_poses)).mean(1).min().rad2deg()
    assert d < 12.0, d
    # prior samples are about as bent as the data (mean joint angle)
    samples = body_vae.decode_aa(torch.randn(2000, 32, generator=torch.Generator().manual_seed(2)))
    ratio = samples.norm(dim=-1).mean() / library_poses.norm(dim=-1).mean()
    assert 0.6 < ratio < 1.4, ratio


def test_loaded_embedding_is_frozen(body_vae):
    assert body_vae.frozen and not any(p.requires_grad for p in body_vae.parameters())
    body_vae.train()
    assert not body_vae.training  # stays in eval (no dropout) under a parent's .train()
    z = torch.zeros(2, 32, requires_grad=True)
    (body_vae.decode_aa(z).pow(2).sum() + body_vae.prior_loss(z).sum()).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    assert torch.equal(body_vae.prior_loss(torch.ones(2, 32)), torch.full((2,), 32.0))


def test_shipped_hand_pca_round_trip(hand_pca):
    assert isinstance(hand_pca, HandPCA) and hand_pca.pose_shape == (15, 3) and hand_pca.latent_dim == 12
    assert 0 < hand_pca.explained_variance_ratio.sum() <= 1
    z = torch.randn(32, 12, generator=torch.Generator().manual_seed(3))
    pose = hand_pca.decode_aa(z)  # in the span by construction
    assert torch.allclose(hand_pca.encode(pose), z, atol=1e-4)
    assert torch.allclose(hand_pca.decode_aa(hand_pca.encode(pose)), pose, atol=1e-5)
    assert_rotations(hand_pca.decode(z))
    assert torch.allclose(hand_pca.decode_aa(torch.zeros(12)), hand_pca.mean.reshape(15, 3))


# -- hand PCA / MANO ------------------------------------------------------------------------------
def test_hand_pca_fit_low_rank_is_exact():
    g = torch.Generator().manual_seed(0)
    basis, mean = torch.randn(5, 45, generator=g) * 0.2, torch.randn(45, generator=g) * 0.1
    poses = (mean + torch.randn(400, 5, generator=g) @ basis).reshape(400, 15, 3)
    pca = HandPCA.fit(poses, n_components=5)
    assert math.isclose(pca.explained_variance_ratio.sum().item(), 1.0, abs_tol=1e-4)
    assert torch.allclose(pca.decode_aa(pca.encode(poses)), poses, atol=1e-4)
    z = pca.encode(poses)
    assert torch.allclose(z.mean(0), torch.zeros(5), atol=1e-4)
    assert torch.allclose(z.std(0), torch.ones(5), atol=1e-3)  # whitened: unit variance
    raw = HandPCA.fit(poses, n_components=5, whiten=False)
    assert torch.allclose(raw.components @ raw.components.T, torch.eye(5), atol=1e-5)


def test_mano_pca_from_synthetic_components():
    g = torch.Generator().manual_seed(0)
    comps = torch.linalg.qr(torch.randn(45, 45, generator=g))[0].T  # orthonormal rows, like MANO's
    mean = torch.randn(45, generator=g) * 0.1
    pca = MANOPCA(comps, mean, n_components=12)
    z = torch.randn(4, 12, generator=g)
    # flat_hand_mean=False: the hand_pose parameter is the offset z @ components
    assert torch.allclose(pca.decode_aa(z), (z @ comps[:12]).reshape(4, 15, 3), atol=1e-6)
    assert torch.allclose(pca.encode(pca.decode_aa(z)), z, atol=1e-5)
    flat = MANOPCA(comps, mean, n_components=6, flat_hand_mean=True)
    assert torch.allclose(flat.decode_aa(torch.zeros(6)), mean.reshape(15, 3))

    class FakeMANO(torch.nn.Module):
        flat_hand_mean = False

        def __init__(self):
            super().__init__()
            self.register_buffer("hand_components", comps)
            self.register_buffer("hand_mean", mean)

    class FakeSMPLX(torch.nn.Module):
        flat_hand_mean = True

        def __init__(self):
            super().__init__()
            for s in "lr":
                self.register_buffer(f"{s}hand_components", comps * (1 if s == "r" else -1))
                self.register_buffer(f"{s}hand_mean", mean)

    m = MANOPCA.from_model(FakeMANO())
    assert m.frozen and m.latent_dim == 12 and torch.equal(m.components, comps[:12])
    left = MANOPCA.from_model(FakeSMPLX(), n_components=3, side="left")
    assert torch.equal(left.components, -comps[:3]) and torch.equal(left.mean, mean)
    with pytest.raises(EmbeddingError):
        MANOPCA.from_model(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError):
        MANOPCA(comps, mean, n_components=46)


# -- VPoser v2 checkpoints --------------------------------------------------------------------------
VPOSER_SHAPES = {  # human_body_prior VPoser (V02_05): latentD 32, num_neurons 512, 21 joints
    "encoder_net.1": {"weight": (63,), "bias": (63,), "running_mean": (63,), "running_var": (63,)},
    "encoder_net.2": {"weight": (512, 63), "bias": (512,)},
    "encoder_net.4": {"weight": (512,), "bias": (512,), "running_mean": (512,), "running_var": (512,)},
    "encoder_net.6": {"weight": (512, 512), "bias": (512,)},
    "encoder_net.7": {"weight": (512, 512), "bias": (512,)},
    "encoder_net.8.mu": {"weight": (32, 512), "bias": (32,)},
    "encoder_net.8.logvar": {"weight": (32, 512), "bias": (32,)},
    "decoder_net.0": {"weight": (512, 32), "bias": (512,)},
    "decoder_net.3": {"weight": (512, 512), "bias": (512,)},
    "decoder_net.5": {"weight": (126, 512), "bias": (126,)},
}


def make_vposer_ckpt(path, seed=0):
    """A PyTorch-Lightning-style VPoser v2 checkpoint with random weights; returns the state dict."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for mod, params in VPOSER_SHAPES.items():
        for name, shape in params.items():
            t = torch.randn(shape, generator=g) / math.sqrt(shape[-1])
            if name == "running_var":
                t = t.abs() + 0.5
            sd[f"vp_model.{mod}.{name}"] = t
        if "running_mean" in params:
            sd[f"vp_model.{mod}.num_batches_tracked"] = torch.tensor(100)
    ckpt = {"epoch": 13, "global_step": 1000, "pytorch-lightning_version": "1.2.0",
            "state_dict": {**sd, "bm_train.shapedirs": torch.zeros(3, 3)},  # body-model buffers: ignored
            "hyper_parameters": {"model_params": {"latentD": 32, "num_neurons": 512}}}  # fmt: skip
    torch.save(ckpt, path)
    return {k.removeprefix("vp_model."): v for k, v in sd.items()}


def vposer_reference(sd, pose_aa, z):
    """VPoser v2 forward written from its definition: encoder mean and decoder rotation matrices."""

    def bn(x, m):
        stats = sd[f"{m}.running_mean"], sd[f"{m}.running_var"]
        return F.batch_norm(x, *stats, sd[f"{m}.weight"], sd[f"{m}.bias"])

    def lin(x, m):
        return F.linear(x, sd[f"{m}.weight"], sd[f"{m}.bias"])

    h = bn(pose_aa.reshape(len(pose_aa), 63), "encoder_net.1")
    h = bn(F.leaky_relu(lin(h, "encoder_net.2")), "encoder_net.4")
    h = lin(lin(h, "encoder_net.6"), "encoder_net.7")
    mu = lin(h, "encoder_net.8.mu")
    x = lin(F.leaky_relu(lin(F.leaky_relu(lin(z, "decoder_net.0")), "decoder_net.3")), "decoder_net.5")
    x = x.view(-1, 3, 2)  # VPoser's ContinuousRotReprDecoder
    b1 = F.normalize(x[:, :, 0], dim=1)
    b2 = F.normalize(x[:, :, 1] - (b1 * x[:, :, 1]).sum(1, keepdim=True) * b1, dim=-1)
    R = torch.stack([b1, b2, torch.cross(b1, b2, dim=1)], dim=-1)
    return mu, R.view(len(z), 21, 3, 3)


def test_vposer_checkpoint_loader(tmp_path):
    path = tmp_path / "V02_05_epoch=13_val_loss=0.03.ckpt"
    sd = make_vposer_ckpt(path)
    vp = load_vposer_checkpoint(path)
    assert vp.latent_dim == 32 and vp.pose_shape == (21, 3) and vp.frozen and not vp.training
    assert not any(p.requires_grad for p in vp.parameters())
    g = torch.Generator().manual_seed(1)
    pose, z = torch.randn(5, 21, 3, generator=g) * 0.3, torch.randn(5, 32, generator=g)
    mu_ref, R_ref = vposer_reference(sd, pose, z)
    assert torch.allclose(vp.encode(pose), mu_ref, atol=1e-5)
    assert torch.allclose(vp.decode(z), R_ref, atol=1e-5)
    assert_rotations(vp.decode(z))
    assert vp.decode_aa(z).shape == (5, 21, 3)
    # a bare state dict without the Lightning wrapper loads too
    torch.save({k: v for k, v in sd.items()}, tmp_path / "bare.pt")
    assert torch.allclose(load_vposer_checkpoint(tmp_path / "bare.pt").decode(z), R_ref, atol=1e-5)


def test_vposer_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        load_vposer_checkpoint(tmp_path / "missing.ckpt")
    bad = tmp_path / "corrupt.ckpt"
    bad.write_bytes(b"not a checkpoint" * 10)
    with pytest.raises(EmbeddingError, match="corrupt.ckpt"):
        load_vposer_checkpoint(bad)
    full = tmp_path / "full.ckpt"
    make_vposer_ckpt(full)
    trunc = tmp_path / "truncated.ckpt"
    trunc.write_bytes(full.read_bytes()[:5000])
    with pytest.raises(EmbeddingError, match="truncated.ckpt"):
        load_vposer_checkpoint(trunc)
    torch.save({"state_dict": {"vp_model.bodyprior_enc_fc1.weight": torch.zeros(2, 2)}}, tmp_path / "v1.ckpt")
    with pytest.raises(EmbeddingError, match="v1"):
        load_vposer_checkpoint(tmp_path / "v1.ckpt")
    sd = torch.load(full, weights_only=True)
    sd["state_dict"]["vp_model.decoder_net.3.weight"] = torch.zeros(7, 7)
    torch.save(sd, tmp_path / "shapes.ckpt")
    with pytest.raises(EmbeddingError, match="shapes.ckpt"):
        load_vposer_checkpoint(tmp_path / "shapes.ckpt")


# -- save / load ----------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path):
    vae = BodyVAE(latent_dim=8, hidden=32).freeze()
    hand = HandPCA.fit(torch.randn(100, 15, 3, generator=torch.Generator().manual_seed(0)), 6)
    z8, z6 = torch.randn(3, 8), torch.randn(3, 6)
    for emb, z in ((vae, z8), (hand, z6), (MANOPCA(torch.eye(45), torch.ones(45), 6, True), z6)):
        path = save_embedding(emb, tmp_path / f"{type(emb).__name__}.safetensors", {"seed": 7})
        back = load_embedding(path)
        assert type(back) is type(emb) and back.config() == emb.config() and back.info == {"seed": 7}
        assert back.frozen and torch.allclose(back.decode(z), emb.decode(z), atol=1e-6)


def test_load_embedding_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        load_embedding(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(EmbeddingError, match="bad.safetensors"):
        load_embedding(bad)
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(EmbeddingError, match="foreign.safetensors"):
        load_embedding(tmp_path / "foreign.safetensors")


# -- training ---------------------------------------------------------------------------------------
def structured_poses(n=512, seed=0):
    """Poses on a 4-D manifold (random linear map of a 4-D code, angles ~0.4 rad)."""
    g = torch.Generator().manual_seed(seed)
    basis = torch.randn(4, 63, generator=g) * 0.2
    return torch.tanh(torch.randn(n, 4, generator=g) @ basis).reshape(n, 21, 3)


@pytest.fixture
def one_thread():
    """Tiny models train ~10x faster on one thread (and do not fight other processes for cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_train_body_vae_runs_and_learns(one_thread):
    poses = structured_poses()
    kw = dict(epochs=2, batch=128, seed=0, n_eval_samples=100, model_kwargs={"hidden": 64, "latent_dim": 8})
    model, stats = train_body_vae(poses, **kw)
    hist = stats["history"]
    assert len(hist) == 2 and hist[-1]["rec_deg"] < hist[0]["rec_deg"]
    assert stats["n_val"] > 0 and stats["n_train_augmented"] == 2 * stats["n_train"]
    assert stats["val"]["mean_deg"] > 0 and len(stats["val"]["per_joint_deg"]) == 21
    assert {"mean_angle_deg", "nn_rms_deg_median", "limit_violation_frac"} <= set(stats["prior_samples"])
    assert model.frozen and model.latent_dim == 8
    # deterministic per seed, and the caller's RNG state is untouched
    state = torch.random.get_rng_state()
    again, _ = train_body_vae(poses, **kw)
    assert torch.equal(torch.random.get_rng_state(), state)
    ours, theirs = model.state_dict(), again.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    other, _ = train_body_vae(poses, **{**kw, "seed": 1})
    assert not torch.equal(model.decoder[0].weight, other.decoder[0].weight)
