"""`neuralannot report`: a small report per part, its files and links, and a real headless browser."""

import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neuralannot.cli import app
from neuralannot.report.browser import unavailable_reason

pytestmark = pytest.mark.anny


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs, self.hrefs = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "src" in a:
            self.srcs.append(a["src"])
        if "href" in a:
            self.hrefs.append(a["href"])


def links(index: Path) -> _Links:
    p = _Links()
    p.feed(index.read_text(encoding="utf-8"))
    return p


def _synth(root: Path, kind: str, n: int, seed: int = 5):
    from neuralannot.data.loading import load_samples
    from neuralannot.data.synthetic.generator import generate
    from neuralannot.io.pseudo_gt import write_pseudo_gt
    from neuralannot.report.demo import perturbed_gt_records

    data = root / kind
    generate(kind, n, data, seed=seed, shard_size=n, image_size=128, masks=False, progress=False)
    samples, _ = load_samples(data)
    pred = write_pseudo_gt(root / f"{kind}.json", perturbed_gt_records(samples, noise_rad=0.05))
    return data, pred, samples


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Body report through the CLI (4 of 5 samples shown); hand, face and whole-body reports from Python."""
    from neuralannot.report import build_report

    root = tmp_path_factory.mktemp("report")
    out = {}
    data, pred, _ = _synth(root, "mocap", 5)
    res = CliRunner().invoke(app, ["report", "--pred", str(pred), "--data", str(data), "--out",
                                   str(root / "rep_body"), "--max-samples", "4"])  # fmt: skip
    assert res.exit_code == 0, res.output
    out["body"] = root / "rep_body"
    for kind in ("hand", "face", "wholebody"):
        data, pred, samples = _synth(root, kind, 4, seed=1)  # seed 1: the second hand is a left hand
        build_report(pred, data, root / f"rep_{kind}", progress=False)
        out[kind] = root / f"rep_{kind}"
        out[f"{kind}_inputs"] = (pred, data)
        out[f"{kind}_samples"] = samples
    return out


@pytest.mark.parametrize("part", ["body", "hand", "face", "wholebody"])
def test_report_files_exist_and_every_link_is_a_local_file(reports, part):
    index = reports[part] / "index.html"
    parsed = links(index)
    assert len([s for s in parsed.srcs if s.startswith("samples/")]) == 3 * 4  # 3 tiles per sample
    for src in parsed.srcs:
        assert not re.match(r"^[a-z]+:", src), f"non-local link {src}"  # offline: no http(s)/CDN
        assert (index.parent / src).is_file() and (index.parent / src).stat().st_size > 0, src
    assert all(h.startswith("data:") for h in parsed.hrefs)
    two_d_only = part in ("face", "wholebody")  # these synthetic kinds carry 2D keypoints only
    plots = ["error_histograms", "joint_errors_2d"] + ([] if two_d_only else ["joint_errors_3d"])
    assert sorted(p for p in parsed.srcs if p.startswith("plots/")) == sorted(f"plots/{p}.png" for p in plots)


def test_samples_are_worst_first_and_limited(reports):
    m = json.loads((reports["body"] / "metrics.json").read_text())
    errs = [r["mpvpe_mm"] for r in m["rows"]]
    assert m["summary"]["sort_by"] == "mpvpe_mm" and errs == sorted(errs, reverse=True)
    assert m["summary"]["rendered"] == 4 and m["summary"]["n"] == 5 and len(errs) == 5
    html = (reports["body"] / "index.html").read_text()
    shown = re.findall(r'<div class="id">#(\d+) (\S+)', html)
    assert [int(r) for r, _ in shown] == [1, 2, 3, 4]
    assert [sid for _, sid in shown] == [r["id"] for r in m["rows"][:4]]
    assert errs[0] > errs[-1] + 1.0  # the noise grows with the sample index


def test_wholebody_report_has_the_per_part_errors(reports):
    m = json.loads((reports["wholebody"] / "metrics.json").read_text())
    for key in ("mpvpe_lhand_mm", "mpvpe_rhand_mm", "mpvpe_face_mm"):
        assert m["summary"][key] is not None and m["summary"][key] > 0


def test_left_hands_are_reported_with_their_side(reports):
    sides = [s.part for s in reports["hand_samples"]]
    html = (reports["hand"] / "index.html").read_text()
    assert "lhand" in sides and "(lhand, left)" in html


def test_bad_input_exits_2_with_one_line(tmp_path):
    res = CliRunner().invoke(app, ["report", "--pred", str(tmp_path / "nope.json"), "--data",
                                   str(tmp_path / "data"), "--out", str(tmp_path / "r")])  # fmt: skip
    assert res.exit_code == 2
    assert res.stderr.strip().count("\n") == 0 and "nope.json: no such file" in res.stderr
    assert "Traceback" not in res.output


def _tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_a_failed_report_leaves_the_previous_one_untouched(reports, tmp_path, monkeypatch):
    import neuralannot.report.build as build

    old = tmp_path / "rep"
    shutil.copytree(reports["hand"], old)
    before = _tree(old)
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("renderer died")
        return real(*args, **kwargs)

    real = build.render_tiles
    monkeypatch.setattr(build, "render_tiles", broken)
    pred, data = reports["hand_inputs"]
    with pytest.raises(ValueError, match="renderer died"):
        build.build_report(pred, data, old, progress=False)
    assert _tree(old) == before  # not a mix of old and new files
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]  # no temp folder left behind
    monkeypatch.setattr(build, "render_tiles", real)
    (old / "samples" / "stale.jpg").write_bytes(b"from an older report")
    build.build_report(pred, data, old, max_samples=1, progress=False)
    want = [f"0001_{k}.jpg" for k in ("joints", "overlay", "side")]
    assert sorted(p.name for p in (old / "samples").iterdir()) == want
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]


def test_report_out_must_be_new_empty_or_a_report(reports, tmp_path):
    from neuralannot.report import build_report

    pred, data = reports["hand_inputs"]
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="non-empty folder but not a report"):
        build_report(pred, data, tmp_path, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    args = ["report", "--pred", str(pred), "--data", str(data), "--out", str(pred.parent)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "would replace a folder holding the input" in res.stderr


def test_report_in_a_real_headless_browser(reports, tmp_path):
    """No SEVERE console message and every image decoded; a removed image is caught."""
    reason = unavailable_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {reason}")
        pytest.skip(f"headless browser unavailable: {reason}")
    import shutil

    from neuralannot.report.browser import headless_chrome, page_problems

    broken = tmp_path / "broken"
    shutil.copytree(reports["body"], broken)
    (broken / "samples" / "0002_side.jpg").unlink()
    with headless_chrome() as driver:
        for part in ("body", "hand", "face"):
            assert page_problems(driver, reports[part] / "index.html") == []
        problems = page_problems(driver, broken / "index.html")
    assert any("image not loaded: samples/0002_side.jpg" in p for p in problems), problems
    assert any(p.startswith("console:") for p in problems), problems
