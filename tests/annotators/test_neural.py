"""Neural annotator: layout/initialisation, losses, training determinism + resume, annotation, DDP."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import roma
import torch
from torch import Tensor

from conftest import TINY
from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.annotators.pipeline import build_annotator, load_samples, run_annotate
from neuralannot.annotators.predict import predict
from neuralannot.annotators.state import prediction_key
from neuralannot.annotators.training import DistInfo, epoch_batches, make_dataset, param_groups, train
from neuralannot.evaluation import evaluate
from neuralannot.geometry import project
from neuralannot.io.pseudo_gt import read_pseudo_gt

pytestmark = pytest.mark.anny


def test_config_defaults_and_errors(tmp_path):
    c = AnnotatorConfig(mode="mocap")
    assert (c.inputs, c.outputs) == ("image+joints", "rotations")
    w = AnnotatorConfig(mode="wild", aux_data="none")
    assert (w.inputs, w.outputs) == ("image", "rotations")  # bodies: measured better than the VAE latent
    assert AnnotatorConfig(mode="wild", part="hand").outputs == "embedding"  # hand PCA, as the paper
    hand = AnnotatorConfig(mode="wild", part="hand")  # hands also read their 2D joints, as coordinates
    assert (hand.inputs, hand.joint_input) == ("image+joints", "coordinates")
    assert (w.inputs, w.joint_input) == ("image", "heatmaps")  # bodies without a 3D set: the image (paper)
    lifter = AnnotatorConfig(mode="wild")  # with the embedded 3D set (the default): the 2D joints alone
    assert (lifter.inputs, lifter.joint_input, lifter.outputs) == ("joints", "coordinates", "rotations")
    assert AnnotatorConfig(mode="wild", inputs="image+joints").joint_input == "heatmaps"  # Table 2
    assert AnnotatorConfig(mode="wild", part="face").outputs == "rotations"
    assert AnnotatorConfig(mode="wild", outputs="embedding").outputs == "embedding"
    with pytest.raises(ValueError, match="mode"):
        AnnotatorConfig(mode="studio")
    with pytest.raises(ValueError, match="unknown config key"):
        AnnotatorConfig.from_dict({"mode": "wild", "batchsize": 3})
    bad = tmp_path / "c.yaml"
    bad.write_text("[1, 2")
    with pytest.raises(ValueError, match="cannot read config"):
        AnnotatorConfig.from_yaml(bad)
    assert AnnotatorConfig(seed=1).digest() != AnnotatorConfig(seed=2).digest()


def test_epoch_batches_partition_ranks():
    one = epoch_batches(20, 4, seed=0, epoch=1, info=DistInfo())
    r0 = epoch_batches(20, 4, seed=0, epoch=1, info=DistInfo(0, 2))
    r1 = epoch_batches(20, 4, seed=0, epoch=1, info=DistInfo(1, 2))
    assert sorted(sum(one, [])) == list(range(20))
    flat = sum(r0, []) + sum(r1, [])
    assert len(flat) == len(set(flat)) == 20 and len(r0) == len(r1)
    assert epoch_batches(20, 4, 0, 2, DistInfo()) != one


def test_initial_prediction_of_the_paper_head_is_the_neutral_upright_body(mocap_set):
    samples, _ = load_samples(mocap_set, "body", needs_3d=True)
    model = build_annotator(AnnotatorConfig(mode="mocap", head="paper", **TINY), samples[0].joint_set)
    batch = next(iter(torch.utils.data.DataLoader(make_dataset(model, samples), batch_size=4)))
    with torch.no_grad():
        pred = model(batch)
        terms = model.losses(batch, pred)
    up = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
    assert torch.allclose(pred["root_pose"], up.expand(4, 3, 3), atol=0.05)
    assert torch.allclose(pred["body_pose"], torch.eye(3).expand(4, 21, 3, 3), atol=0.05)
    assert torch.allclose(pred["phenotype"], torch.full((4, 6), 0.5), atol=0.02)
    assert 0.0 < float(terms["joints3d"]) < 2.0 and torch.isfinite(terms["loss"])


def test_mocap_train_resume_is_identical_and_annotates_every_sample_once(mocap_set, tmp_path):
    samples, _ = load_samples(mocap_set, "body", needs_3d=True)
    cfg = AnnotatorConfig(mode="mocap", **TINY)

    def weights(model):
        return {k: v.clone() for k, v in model.state_dict().items()}

    straight = build_annotator(cfg, samples[0].joint_set)
    summary = train(straight, samples, tmp_path / "a", progress=False)
    losses = [h["loss"] for h in summary["history"]]
    assert len(losses) == 2 and all(np.isfinite(losses))
    # killed in the middle of epoch 1 (after step 2 of 3), then the same command again
    killed = build_annotator(cfg, samples[0].joint_set)
    assert train(killed, samples, tmp_path / "b", progress=False, stop_after_steps=2)["stopped_at_step"] == 2
    resumed = build_annotator(AnnotatorConfig(mode="mocap", **TINY), samples[0].joint_set)
    train(resumed, samples, tmp_path / "b", progress=False)
    for k, v in weights(straight).items():
        torch.testing.assert_close(v, resumed.state_dict()[k], rtol=0, atol=0, msg=k)
    out = tmp_path / "pgt.json"
    res = predict(straight, samples, out, tmp_path / "a", batch_size=5, progress=False)
    assert res["annotated"] == len(samples)
    records, meta = read_pseudo_gt(out)
    assert sorted(r.sample_id for r in records) == sorted(s.id for s in samples)
    assert meta["method"] == "neuralannot-mocap"
    r = records[0]
    assert r.params["body_pose"].shape == (21, 3) and np.isfinite(r.quality["joint_err_mm"])
    again = predict(straight, samples, out, tmp_path / "a", batch_size=5, progress=False)
    assert again["annotated"] == 0 and again["skipped_done"] == len(samples)  # resumed: nothing left


def test_wild_heatmap_and_embedding_ablations_run(wild_set, tmp_path):
    runs = [("image", "embedding", "heatmaps"), ("joints", None, "heatmaps"),
            ("image+joints", None, "heatmaps"), ("joints", None, "coordinates")]  # fmt: skip
    joint_set = load_samples(wild_set, "body")[0][0].joint_set
    for inputs, outputs, joint_input in runs:
        cfg = AnnotatorConfig(mode="wild", inputs=inputs, outputs=outputs, joint_input=joint_input,
                              **dict(TINY, epochs=1))  # fmt: skip
        model = build_annotator(cfg, joint_set)
        lifting = joint_input == "coordinates"
        assert (model.backbone is None, model.joint_encoder is not None) == (lifting, lifting)
        out = tmp_path / f"{inputs}-{joint_input}.npz"
        summary = run_annotate(wild_set, out, cfg, tmp_path / "work", progress=False)
        assert summary["annotate"]["annotated"] == 16
        records, _ = read_pseudo_gt(out)
        assert all(np.isfinite(r.quality["joint_err_px"]) for r in records)
        assert all(r.camera is not None and r.camera["focal"][0] > 0 for r in records)
    # the written pseudo-GT (params + camera) reproduces the error the annotator measured on its crop
    samples, _ = load_samples(wild_set, "body")
    rows, _ = evaluate({r.sample_id: r for r in records}, samples)
    by_id = {r.sample_id: r for r in records}
    for row in rows:
        assert (
            abs(row["reproj_px"] - by_id[row["id"]].quality["joint_err_px"]) < 0.05 * row["reproj_px"] + 0.5
        )


def test_step_budget_is_the_larger_of_epochs_and_min_steps_and_is_logged(mocap_set, tmp_path, caplog):
    samples, _ = load_samples(mocap_set, "body", needs_3d=True)
    per_epoch = len(epoch_batches(len(samples), TINY["batch_size"], 0, 0, DistInfo()))
    for epochs, min_steps, want in ((2, 0, 2), (1, 2 * per_epoch + 1, 3)):
        cfg = AnnotatorConfig(mode="mocap", **{**TINY, "epochs": epochs, "min_steps": min_steps})
        with caplog.at_level("INFO", logger="neuralannot.annotators.training"):
            model = build_annotator(cfg, samples[0].joint_set)
            s = train(model, samples, tmp_path / str(want), progress=False)
        assert (s["epochs"], s["steps"]) == (want, want * per_epoch)
        assert f"step budget: {want} epochs of {per_epoch} steps = {want * per_epoch} steps" in caplog.text


def test_a_fine_tuned_backbone_trains_at_its_own_learning_rate(mocap_set, tmp_path):
    samples, _ = load_samples(mocap_set, "body", needs_3d=True)
    one_rate = build_annotator(AnnotatorConfig(mode="mocap", **TINY), samples[0].joint_set)
    assert [g["lr"] for g in param_groups(one_rate)] == [TINY["lr"]]
    cfg = AnnotatorConfig(mode="mocap", **{**TINY, "epochs": 1}, backbone_lr=1e-9)
    model = build_annotator(cfg, samples[0].joint_set)
    groups = param_groups(model)
    assert [g["lr"] for g in groups] == [1e-9, TINY["lr"]]
    backbone = {id(p) for p in model.backbone.parameters()}
    assert {id(p) for p in groups[0]["params"]} == backbone
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for g in groups for p in g["params"]} == trainable
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    summary = train(model, samples, tmp_path / "run", progress=False)
    moved = {n: float((p.detach() - before[n]).abs().max()) for n, p in model.named_parameters()}
    assert max(v for n, v in moved.items() if n.startswith("backbone.")) < 1e-7  # Adam: ~lr per step
    assert max(v for n, v in moved.items() if not n.startswith("backbone.")) > 1e-4
    assert summary["history"][-1]["lr"] == TINY["lr"]  # the heads' rate is the one logged


def test_mocap_needs_3d_joints(wild_set):
    from neuralannot.data.sample import SampleError

    with pytest.raises(SampleError, match="needs GT 3D joints"):
        load_samples(wild_set, "body", needs_3d=True)
    with pytest.raises(SampleError, match="(?s)no usable samples.*no_3d"):
        load_samples(wild_set, "body", skip_bad=True, needs_3d=True)


@pytest.mark.slow
def test_ddp_two_ranks_agree(mocap_set, tmp_path):
    script = Path(__file__).parents[1] / "ddp_worker.py"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29533",
        str(script),
        str(mocap_set),
        str(tmp_path),
    ]
    subprocess.run(cmd, check=True, env=env, timeout=600)
    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k in w0:
        torch.testing.assert_close(w0[k], w1[k], rtol=0, atol=0, msg=k)
    records, _ = read_pseudo_gt(tmp_path / "ddp.json")
    assert len(records) == 24


def test_resume_refuses_a_checkpoint_of_other_samples_and_clears_temp_files(mocap_set, tmp_path):
    samples, _ = load_samples(mocap_set, "body", needs_3d=True)
    cfg = AnnotatorConfig(mode="mocap", **dict(TINY, epochs=1))
    train(build_annotator(cfg, samples[0].joint_set), samples[:-1], tmp_path, progress=False)
    stale = tmp_path / ".checkpoint.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    with pytest.raises(ValueError, match="trained on other samples"):
        train(build_annotator(cfg, samples[0].joint_set), samples, tmp_path, progress=False)
    assert not stale.exists()
    again = train(build_annotator(cfg, samples[0].joint_set), samples[:-1], tmp_path, progress=False)
    assert again["samples_seen"] == 0  # same samples: the finished run is resumed, nothing to do


def test_swing_head_and_shape_solve_reproduce_the_given_joints_from_the_first_step(mocap_set):
    samples, _ = load_samples(mocap_set, "body", needs_3d=True)
    batch = None
    errs = {}
    for head, shape_solve in (("paper", 0), ("swing", 0), ("swing+shape", 2)):
        cfg = AnnotatorConfig(
            mode="mocap", head=head.split("+")[0], shape_solve=shape_solve, swing_weight=1.0, **TINY
        )  # the exact solve (the default swings bodies 3/4 of the way: SWING_WEIGHT)
        model = build_annotator(cfg, samples[0].joint_set).eval()
        if batch is None:
            batch = next(iter(torch.utils.data.DataLoader(make_dataset(model, samples), batch_size=8)))
        with torch.no_grad():
            errs[head] = float(model.losses(batch, model(batch))["joints3d"])
            errs[f"{head}, training"] = float(model.losses(batch, model.train()(batch))["joints3d"])
    # untrained: the paper head outputs the neutral body; the swing head already points every limb
    # at its GT joints (what remains is bone length and the noise); the shape solve fits bone lengths
    assert errs["swing"] < 0.25 * errs["paper"], errs
    assert errs["swing+shape"] < 0.8 * errs["swing"], errs
    # annotation only: training sees the network's own shape
    assert errs["swing+shape, training"] == pytest.approx(errs["swing, training"]), errs
    # the same weights, other annotations: one training run, separate partial predictions
    plain = AnnotatorConfig(mode="mocap", shape_solve=0, **TINY)
    solved = AnnotatorConfig(mode="mocap", shape_solve=1, **TINY)
    assert plain.digest() == solved.digest()
    keys = [prediction_key(build_annotator(c, samples[0].joint_set), samples) for c in (plain, solved)]
    assert keys[0] != keys[1]
    with pytest.raises(ValueError, match="MoCap mode only"):
        AnnotatorConfig(mode="wild", head="swing")
    # default: 1 step where the swing head runs (MoCap), none elsewhere; a mode change keeps "unset"
    assert (AnnotatorConfig(mode="mocap").shape_steps, AnnotatorConfig(mode="wild").shape_steps) == (1, 0)
    assert dataclasses.replace(AnnotatorConfig(mode="mocap"), mode="wild").shape_steps == 0
    with pytest.raises(ValueError, match="shape_solve needs the given 3D joints"):
        AnnotatorConfig(mode="wild", shape_solve=1)
    with pytest.raises(ValueError, match="shape_damping > 0"):
        AnnotatorConfig(mode="mocap", shape_solve=1, shape_damping=0.0)


def test_silhouette_weight_default_is_mocap_bodies_only_and_part_of_the_digest():
    from neuralannot.annotators.config import MOCAP_SILHOUETTE

    mocap = AnnotatorConfig(mode="mocap")
    assert mocap.silhouette_weight == MOCAP_SILHOUETTE > 0
    for cfg in (
        AnnotatorConfig(mode="wild"),
        AnnotatorConfig(mode="mocap", head="paper"),
        AnnotatorConfig(mode="mocap", part="hand"),
        dataclasses.replace(mocap, mode="wild"),
    ):
        assert cfg.silhouette_weight == 0.0, cfg
    assert AnnotatorConfig(mode="wild", w_silhouette=2.0).silhouette_weight == 2.0
    assert AnnotatorConfig(mode="mocap", w_silhouette=0.0).silhouette_weight == 0.0
    # the digest holds the resolved weight: unset and its value train the same; another weight retrains
    assert mocap.digest() == AnnotatorConfig(mode="mocap", w_silhouette=MOCAP_SILHOUETTE).digest()
    assert mocap.digest() != AnnotatorConfig(mode="mocap", w_silhouette=1.0).digest()
    with pytest.raises(ValueError, match="w_silhouette must be >= 0"):
        AnnotatorConfig(mode="mocap", w_silhouette=-1.0)


def test_mocap_annotation_ends_with_the_wrist_stage(tmp_path):
    from neuralannot.data.synthetic.generator import generate

    data = tmp_path / "mocap"
    generate("mocap", 4, data, seed=6, workers=1, shard_size=4, image_size=96, masks=True, progress=False)
    cfg = AnnotatorConfig(mode="mocap", **dict(TINY, epochs=1))
    assert cfg.refines_wrists
    summary = run_annotate(data, tmp_path / "a.npz", cfg, tmp_path / "work", progress=False)
    stage, run = summary["annotate"]["wrist_refine"], summary["work_dir"]
    records, meta = read_pseudo_gt(tmp_path / "a.npz")
    assert meta["wrist_refine"] == stage and stage["samples"] == 4
    assert sum("wrist_refine" in r.quality for r in records) == stage["refined"] >= 1
    off = dataclasses.replace(cfg, wrist_stage=False)  # same weights (same run folder), no stage
    summary = run_annotate(data, tmp_path / "b.npz", off, tmp_path / "work", progress=False)
    plain, meta = read_pseudo_gt(tmp_path / "b.npz")
    assert "wrist_refine" not in summary["annotate"] and "wrist_refine" not in meta
    assert not any("wrist_refine" in r.quality for r in plain) and summary["work_dir"] == run
    # the stage moved the wrists only
    for a, b in zip(records, plain, strict=True):
        np.testing.assert_array_equal(a.params["phenotype"], b.params["phenotype"])


def test_mocap_bodies_read_person_masks_by_default(tmp_path_factory):
    from neuralannot.annotators.training import _WithItems
    from neuralannot.data.silhouette import silhouette_targets
    from neuralannot.data.synthetic.generator import generate

    data = tmp_path_factory.mktemp("masked") / "mocap"
    generate("mocap", 4, data, seed=6, workers=1, shard_size=4, image_size=96, masks=True, progress=False)
    samples, _ = load_samples(data, "body", needs_3d=True)
    model = build_annotator(AnnotatorConfig(mode="mocap", **TINY), samples[0].joint_set).train()
    assert model.silhouettes is not None
    targets = silhouette_targets(samples, model.cfg.input_size)
    assert bool(targets["sil_valid"].all())
    batch = next(iter(torch.utils.data.DataLoader(_WithItems(make_dataset(model, samples), targets), 4)))
    terms = model.losses(batch, model(batch))
    assert 0.0 < float(terms["silhouette"]) < 1.0 and torch.isfinite(terms["loss"])
    # the mask term reaches the network (twists, end bones and shape: what the swing solve leaves)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(terms["silhouette"], params, allow_unused=True)
    assert any(g is not None and float(g.abs().sum()) > 0 for g in grads)
    wild = build_annotator(AnnotatorConfig(mode="wild", **TINY), samples[0].joint_set)
    assert wild.silhouettes is None


def check_root_hypothesis_is_picked(model, samples, index: int, count: int) -> tuple[Tensor, Tensor]:
    """Make hypothesis ``index`` of ``count`` (the prediction turned about the model's +Y) the one that
    fits: its projection becomes the GT 2D joints; the pick must return it exactly. Returns the
    hypotheses (H, B, 3, 3) and the predicted root (B, 3, 3)."""
    batch = next(iter(torch.utils.data.DataLoader(make_dataset(model, samples), batch_size=4)))
    with torch.no_grad():
        pred = model(batch)
        root = pred["root_pose"].clone()
        kp = model.keypoints(pred)
        hyp = model.root_hypotheses(root)
        assert hyp.shape == (count, 4, 3, 3)
        kp_turned = model.keypoints({**pred, "root_pose": hyp[index]})
        uv = project(kp_turned + pred["trans"][:, None], batch["K"])
        batch = {**batch, "joints_2d": torch.cat([uv, torch.ones_like(uv[..., :1])], -1)}
        picked, err = model.pick_root_hypothesis(batch, pred, kp)
    assert torch.allclose(pred["root_pose"], hyp[index], atol=1e-5)
    assert torch.allclose(picked, kp_turned, atol=1e-4) and float(err.max()) < 1e-3
    return hyp, root


def test_wild_root_hypotheses_recover_a_reversed_facing(wild_set):
    samples, _ = load_samples(wild_set, "body")
    model = build_annotator(AnnotatorConfig(mode="wild", **TINY), samples[0].joint_set)
    # hypotheses are the prediction turned about the body's up axis: H=4 gives 0/90/180/270 degrees
    _, root = check_root_hypothesis_is_picked(model, samples, index=2, count=4)
    single = build_annotator(AnnotatorConfig(mode="wild", root_hypotheses=1, **TINY), samples[0].joint_set)
    assert single.root_hypotheses(root).shape[0] == 1


def test_pose_prior_scores_implausible_poses_and_reaches_the_head(mocap_set):
    """reg.pose_prior: the body VAE's latent norm + reconstruction error of the regressed pose."""
    from neuralannot.data.synthetic.poses import BodyPoseSampler

    samples, _ = load_samples(mocap_set, "body", needs_3d=True)
    cfg = AnnotatorConfig(mode="mocap", **dict(TINY, reg={"pose_prior": 1e-3}))
    model = build_annotator(cfg, samples[0].joint_set)
    group, vae = model._aux["pose_prior"]
    assert group == "body_pose"
    gen = torch.Generator().manual_seed(0)
    real = BodyPoseSampler(seed=0).sample(64, gen)  # library poses (axis-angle)
    noise = 0.6 * torch.randn(64, 21, 3, generator=gen)  # random rotations of every joint
    with torch.no_grad():
        plausible = vae.pose_prior(real)
        random = vae.pose_prior(roma.rotvec_to_rotmat(noise))
    assert plausible.median() < 0.5 * random.median()
    batch = next(iter(torch.utils.data.DataLoader(make_dataset(model, samples), batch_size=8)))
    terms = model.losses(batch, model(batch))
    assert terms["reg_pose_prior"] > 0
    terms["reg_pose_prior"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.head.parameters())
    off = AnnotatorConfig(mode="mocap", **dict(TINY, reg={"pose_prior": 0.0}))
    assert build_annotator(off, samples[0].joint_set)._aux["pose_prior"] is None


def test_face_expression_head_starts_at_neutral_with_a_usable_gradient():
    """Anny's facial actions default to 0, their lower bound: a sigmoid head would start saturated
    (gradient ~1e-4); the folded head starts at neutral with slope ~1 and stays in [0, 1]."""
    from neuralannot.annotators.neural import fold_to_bounds

    model = build_annotator(AnnotatorConfig(mode="mocap", part="face", head="paper", **TINY), "face68")
    kinds = {e.name: e.kind for e in model.head.layout.entries}
    assert kinds["expression"] == "folded" and kinds["phenotype"] == "bounded"
    sl = model.head.layout.slices["expression"]
    raw = model.head.out.bias[sl].detach().clone().requires_grad_(True)  # the initial raw output
    value = fold_to_bounds(raw, (0.0, 1.0), 0.0)
    assert float(value.detach().max()) < 0.02  # neutral face at the start
    (grad,) = torch.autograd.grad(value.sum(), raw)
    assert float(grad.min()) > 0.9  # a sigmoid at logit(1e-4) would give 1e-4
    v = torch.linspace(-20, 20, 101)
    assert float(fold_to_bounds(v, (0.0, 1.0), 0.0).min()) >= 0.0
    assert float(fold_to_bounds(v, (0.0, 1.0), 0.0).max()) <= 1.0
    assert torch.allclose(fold_to_bounds(torch.zeros(1), (-1.0, 2.0), 2.0), torch.tensor([2.0]))


@pytest.mark.anny
def test_embedding_outputs_use_the_models_own_embedding(tmp_path):
    """Pose-embedding outputs: Anny parts get their shipped embedding, MANO its own PCA (not Anny's:
    its hand_pose axes differ), and a model without one (SMPL-X) fails naming the way out."""
    import warnings
    from dataclasses import replace

    import smplx_fixtures as fx
    from neuralannot.annotators.neural import output_embedding
    from neuralannot.bodies import load_body_model
    from neuralannot.bodies.embedding import MANOPCA

    files = fx.write_all(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        smplx_model = load_body_model(str(files["smplx"][0]), part="wholebody")
        mano = load_body_model(str(files["mano"][0]), part="hand")
    cfg = AnnotatorConfig(mode="wild", part="hand", outputs="embedding", **TINY)
    group, emb = output_embedding(cfg, mano)
    assert group == "hand_pose" and isinstance(emb, MANOPCA) and emb.latent_dim == 12
    torch.testing.assert_close(emb.components, mano.hand_components[:12])
    anny_group, anny_emb = output_embedding(cfg, load_body_model("anny", part="hand"))
    assert anny_group == "hand_pose" and not isinstance(anny_emb, MANOPCA)
    with pytest.raises(ValueError, match="no default pose embedding for smplx"):
        output_embedding(replace(cfg, part="body"), smplx_model)


def test_feature_dropout_masks_the_image_feature_in_training_only(wild_set):
    with pytest.raises(ValueError, match="feature_dropout"):
        AnnotatorConfig(mode="wild", feature_dropout=1.0)
    # off by default, and then out of the digest: runs from before the key still resume
    assert AnnotatorConfig(mode="wild").digest() == AnnotatorConfig(mode="wild", feature_dropout=0.0).digest()
    assert AnnotatorConfig(mode="wild").digest() != AnnotatorConfig(mode="wild", feature_dropout=0.3).digest()
    samples, _ = load_samples(wild_set, "body")
    cfg = AnnotatorConfig(mode="wild", inputs="image", feature_dropout=0.5, **TINY, freeze_backbone=True)
    model = build_annotator(cfg, samples[0].joint_set)  # frozen: its features alike in both modes
    seen = []
    model.head.register_forward_hook(lambda module, args, out: seen.append(args[0].detach().clone()))
    batch = next(iter(torch.utils.data.DataLoader(make_dataset(model, samples), batch_size=4)))
    with torch.no_grad():
        model.train()
        model(batch)
        model.eval()
        model(batch)
        model(batch)
    trained, annotated, again = seen
    zeroed = (trained == 0) & (annotated != 0)
    assert 0.3 < float(zeroed.float().mean()) < 0.7  # about half the features dropped in training
    kept = trained != 0  # the rest scaled by 1 / (1 - p), as inverted dropout does
    assert torch.allclose(trained[kept], 2 * annotated[kept], rtol=1e-4, atol=1e-6)
    assert torch.equal(annotated, again)  # annotation is deterministic: no dropout
