import numpy as np
import pytest
from PIL import Image

from neuralannot.bodies.joint_names import get_joint_names
from neuralannot.data import SampleError
from neuralannot.data import transforms as T


def random_image(h=120, w=160, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def test_crop_maps_bbox_corners_to_crop_corners():
    A = T.crop_affine([30, 40, 100, 50], out_size=(200, 100))
    corners = T.apply_affine_2d(np.array([[30.0, 40.0], [130.0, 90.0], [30.0, 90.0]]), A)
    np.testing.assert_allclose(corners, [[0, 0], [200, 100], [0, 100]], atol=1e-9)
    # keep aspect: a tall box is padded left/right, its center goes to the crop center
    A = T.crop_affine([0, 0, 50, 100], out_size=(64, 64), scale=1.25)
    pts = T.apply_affine_2d(np.array([[25.0, 50.0], [25.0, -12.5], [25.0, 112.5]]), A)
    np.testing.assert_allclose(pts, [[32, 32], [32, 0], [32, 64]], atol=1e-9)
    A = T.crop_affine([0, 0, 50, 100], out_size=(64, 64), aspect="stretch")
    np.testing.assert_allclose(T.apply_affine_2d(np.array([[50.0, 100.0]]), A), [[64, 64]])


def test_crop_content_and_backends_agree():
    img = random_image()
    crop, A = T.crop_to_bbox(img, [10, 20, 64, 48], out_size=(64, 48))
    np.testing.assert_array_equal(crop, img[20:68, 10:74])  # integer translation: exact copy
    img_f = img.astype(np.float32)
    crop_f, _ = T.crop_to_bbox(img_f, [10, 20, 64, 48], out_size=(64, 48))
    np.testing.assert_allclose(crop_f, img_f[20:68, 10:74])
    # sub-pixel, scaled, rotated: PIL (uint8) and numpy bilinear agree away from the border
    A = T.crop_affine([20.3, 15.7, 90.0, 70.0], out_size=(96, 80), scale=1.1, rotation=17.0)
    a = T.warp_affine(img, A, (96, 80), backend="pil").astype(int)
    b = T.warp_affine(img, A, (96, 80), backend="numpy").astype(int)
    assert a.shape == b.shape == (80, 96, 3)
    assert np.abs(a - b)[4:-4, 4:-4].max() <= 2


def test_crop_puts_a_bright_pixel_where_the_affine_says():
    img = np.zeros((100, 120, 3), np.uint8)
    img[37, 81] = 255
    for rot in (0.0, 30.0):
        crop, A = T.crop_to_bbox(img, [50, 20, 50, 40], out_size=(128, 128), scale=1.3, rotation=rot)
        x, y = T.apply_affine_2d(np.array([[81.0, 37.0]]), A)[0]
        r, c = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
        assert abs(c - x) <= 1.0 and abs(r - y) <= 1.0


def test_out_of_image_is_padded():
    img = np.full((10, 10, 3), 200, np.uint8)
    crop, _ = T.crop_to_bbox(img, [-10, 0, 20, 10], out_size=(20, 10), pad_value=7)
    assert (crop[:, :9] == 7).all() and (crop[:, 11:] == 200).all()


def test_rotation_is_counter_clockwise_on_screen():
    A = T.crop_affine([0, 0, 10, 10], out_size=(10, 10), rotation=90)
    right_of_center = T.apply_affine_2d(np.array([[9.0, 5.0]]), A)[0]
    np.testing.assert_allclose(right_of_center, [5, 1], atol=1e-9)  # moved up


def test_intrinsics_update_matches_projected_points():
    K = T.intrinsics_matrix([1100.0, 1050.0], [500.0, 480.0])
    X = np.random.default_rng(1).normal(size=(20, 3)) * [0.5, 0.8, 0.3] + [0, 0, 4]
    uv = (X @ K.T)[:, :2] / X[:, 2:]
    A = T.crop_affine([300, 200, 400, 400], out_size=(256, 256), scale=1.2)
    K2 = T.update_intrinsics_for_affine(K, A)
    assert K2[0, 1] == 0 and K2[1, 0] == 0 and K2[2].tolist() == [0, 0, 1]
    uv2 = (X @ K2.T)[:, :2] / X[:, 2:]
    np.testing.assert_allclose(uv2, T.apply_affine_2d(uv, A), atol=1e-8)
    R = T.crop_affine([300, 200, 400, 400], out_size=(256, 256), rotation=10)
    with pytest.raises(ValueError, match="scale\\+translation"):
        T.update_intrinsics_for_affine(K, R)
    P = T.update_intrinsics_for_affine(K, R, strict=False)
    np.testing.assert_allclose((X @ P.T)[:, :2] / X[:, 2:], T.apply_affine_2d(uv, R), atol=1e-8)


def test_apply_affine_keeps_extra_columns():
    pts = np.array([[1.0, 2.0, 0.5], [3.0, 4.0, 0.0]], np.float32)
    A = np.array([[2.0, 0, 1], [0, 3.0, -1]])
    out = T.apply_affine_2d(pts, A)
    np.testing.assert_allclose(out, [[3, 5, 0.5], [7, 11, 0]])
    np.testing.assert_allclose(T.apply_affine_2d(out, T.invert_affine(A)), pts, atol=1e-6)


@pytest.mark.parametrize("joint_set", ["coco17", "face68", "coco_wholebody133", "hand21"])
def test_hflip_twice_is_identity(joint_set):
    J = len(get_joint_names(joint_set))
    rng = np.random.default_rng(2)
    img = random_image(40, 50)
    j = np.concatenate([rng.uniform(0, 49, size=(J, 2)), rng.integers(0, 2, size=(J, 1))], 1).astype(
        np.float32
    )
    j[j[:, 2] == 0, :2] = 0
    img1, j1 = T.hflip(img, j, joint_set)
    assert not np.array_equal(img1, img)
    img2, j2 = T.hflip(img1, j1, joint_set)
    np.testing.assert_array_equal(img2, img)
    np.testing.assert_allclose(j2, j, atol=1e-5)  # float32 rounding of W - 1 - x


def test_hflip_swaps_sides_and_matches_pixels():
    names = get_joint_names("coco17")
    img = np.zeros((30, 40, 3), np.uint8)
    j = np.zeros((17, 3), np.float32)
    j[names.index("right_shoulder")] = [5, 7, 1]
    img[7, 5] = 255
    img1, j1 = T.hflip(img, j, "coco17")
    x, y, v = j1[names.index("left_shoulder")]
    assert v == 1 and img1[int(y), int(x), 0] == 255 and x == 34
    assert j1[names.index("right_shoulder"), 2] == 0
    _, j_only = T.hflip(None, j, "coco17", image_width=40)
    np.testing.assert_array_equal(j_only, j1)
    np.testing.assert_allclose(T.hflip_bbox(T.hflip_bbox([3, 4, 10, 5], 40), 40), [3, 4, 10, 5])


def test_hflip_3d_and_intrinsics_are_consistent_with_2d():
    K = T.intrinsics_matrix([800.0, 800.0], [300.0, 250.0])
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(size=(17, 2)) * 0.3, rng.uniform(3, 5, size=(17, 1)), np.ones((17, 1))], 1)
    uv = np.concatenate([(X[:, :3] @ K.T)[:, :2] / X[:, 2:3], np.ones((17, 1))], 1)
    _, uv_f = T.hflip(None, uv, "coco17", image_width=640)
    Xf, Kf = T.hflip_joints_3d(X, "coco17"), T.hflip_intrinsics(K, 640)
    proj = (Xf[:, :3] @ Kf.T)[:, :2] / Xf[:, 2:3]
    np.testing.assert_allclose(proj, uv_f[:, :2], atol=1e-3)


def test_heatmap_peak_at_joint_and_zero_for_invisible():
    j = np.array([[10, 20, 1], [33.0, 5.0, 1], [10, 10, 0], [500, 500, 1]], np.float32)
    hm = T.joints_to_heatmaps(j, size=(48, 64), sigma=2)
    assert hm.shape == (4, 64, 48) and hm.dtype == np.float32
    assert np.unravel_index(hm[0].argmax(), hm[0].shape) == (20, 10) and hm[0].max() == pytest.approx(1.0)
    assert np.unravel_index(hm[1].argmax(), hm[1].shape) == (5, 33)
    assert (hm[2] == 0).all() and (hm[3] == 0).all()
    hm2 = T.joints_to_heatmaps(j[:1] * [4, 4, 1], size=(48, 64), input_size=(192, 256))
    np.testing.assert_allclose(hm2[0], hm[0], atol=1e-6)


def test_visibility_in_crop():
    j = np.array([[0, 0, 1], [255, 255, 1], [256, 10, 1], [-0.5, 10, 1], [10, 10, 0]], np.float32)
    assert T.visibility_in_crop(j, (256, 256)).tolist() == [True, True, False, False, False]


def test_scale_jitter_is_seeded_and_bounded():
    box = [100, 50, 80, 160]
    a = T.scale_jitter(box, np.random.default_rng(5))
    b = T.scale_jitter(box, 5)
    np.testing.assert_array_equal(a, b)
    for seed in range(50):
        x, y, w, h = T.scale_jitter(box, seed, scale=0.2, shift=0.1)
        assert 0.8 * 80 - 1e-4 <= w <= 1.2 * 80 + 1e-4 and w / h == pytest.approx(0.5)
        assert abs(x + w / 2 - 140) <= 8 + 1e-4 and abs(y + h / 2 - 130) <= 16 + 1e-4


def test_load_image(tmp_path):
    rgb = tmp_path / "a.png"
    Image.fromarray(random_image(12, 17)).save(rgb)
    gray = tmp_path / "g.png"
    Image.fromarray(np.zeros((5, 6), np.uint8)).save(gray)
    arr = T.load_image(str(rgb), "s1")
    assert arr.shape == (12, 17, 3) and arr.dtype == np.uint8
    assert T.load_image(str(gray)).shape == (5, 6, 3)
    assert T.check_image(str(rgb)) == (17, 12)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    with pytest.raises(SampleError, match=r"'s2'.*corrupt.*bad\.jpg") as exc:
        T.load_image(str(bad), "s2")
    assert exc.value.path == str(bad)
    trunc = tmp_path / "trunc.jpg"
    Image.fromarray(random_image(64, 64)).save(trunc := tmp_path / "full.jpg")
    (tmp_path / "trunc.jpg").write_bytes(trunc.read_bytes()[:300])
    with pytest.raises(SampleError, match="trunc.jpg"):
        T.load_image(str(tmp_path / "trunc.jpg"), "s3")
    with pytest.raises(SampleError, match="not found"):
        T.load_image(str(tmp_path / "missing.jpg"), "s4")


def test_load_image_refuses_a_size_other_than_the_declared_one(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(random_image(12, 17)).save(path)
    assert T.load_image(str(path), "s1", (17, 12)).shape == (12, 17, 3)
    pattern = r"'s1'.*a\.png is 17x12 but the sample's image_size says 34x24"
    with pytest.raises(SampleError, match=pattern) as exc:
        T.load_image(str(path), "s1", (34, 24))
    assert exc.value.kind == "image_size"
