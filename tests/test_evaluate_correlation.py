"""evaluate.py correlation (Fig. 3): FR metrics' SRCC joined with the SR leaderboard averages of the models trained
with their backbones."""

import json
from pathlib import Path

import pytest
from conftest import run_evaluate, sr_record

ROOT = Path(__file__).resolve().parents[1]

from asym.core.errors import UserError  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: on the shared 2-core VM, faster than two threads


def run(argv):
    return run_evaluate(argv)


def test_correlation_joins_fr_srcc_with_sr_averages(tmp_path, capsys):
    backbones = ["vgg16", "resnet50", "convnext", "swin-t"]
    fr = [{"metric": f"metric-{b}", "dataset": d, "srcc": 0.5 + 0.1 * i + 0.01 * j}
          for i, b in enumerate(backbones) for j, d in enumerate(("tid", "kadid"))]  # fmt: skip
    sr = []
    for i, b in enumerate(backbones):
        for metric, base in (("maniqa", 40), ("liqe", 50)):
            sr.append(sr_record(f"per-{b}", metric, 0.0, "per", b, norm=base + 3 * i))
            sr.append(sr_record(f"rpa-{b}", metric, 0.0, "rec+per+adv", b, norm=base + 5 - i))
    sr += [sr_record("sr-vgg16-rec", "maniqa", 0.0, "rec+per", "vgg16", norm=40.0), sr_record("bicubic", "maniqa",
           0.0, None, None, norm=30.0)]  # fmt: skip
    (tmp_path / "fr.json").write_text(json.dumps(fr))
    (tmp_path / "sr.json").write_text(json.dumps(sr))
    points = run(["correlation", "--fr_results", str(tmp_path / "fr.json"), "--sr_results", str(tmp_path / "sr.json"),
                  "--output_dir", str(tmp_path / "out")])  # fmt: skip
    printed = capsys.readouterr().out
    assert len(points) == 9 and (tmp_path / "out" / "correlation.png").stat().st_size > 0
    p = next(p for p in points if p["model"] == "per-resnet50")
    assert p["srcc"] == pytest.approx(0.605) and p["average"] == pytest.approx((43 + 53) / 2)
    assert "per: Spearman 1.000" in printed and "(n = 4)" in printed
    assert "rec+per+adv: Spearman -1.000" in printed
    assert "rec+per: n = 1 backbones; a Spearman correlation needs at least 3, none reported" in printed
    assert "bicubic: no perceptual loss backbone" in printed
    pairs = run(["correlation", "--fr_results", str(tmp_path / "fr.json"), "--sr_results", str(tmp_path / "sr.json"),
                 "--pairs", "metric-vgg16=bicubic", "--output_dir", str(tmp_path / "out2")])  # fmt: skip
    assert [(p["metric"], p["model"], p["loss"]) for p in pairs] == [("metric-vgg16", "bicubic", "unknown")]
    with pytest.raises(UserError, match="expected metric=model"):
        run(["correlation", "--fr_results", str(tmp_path / "fr.json"), "--sr_results", str(tmp_path / "sr.json"),
             "--pairs", "metric-vgg16", "--output_dir", str(tmp_path / "out3")])  # fmt: skip
    argv = ["correlation", "--fr_results", str(tmp_path / "fr.json"), "--sr_results", str(tmp_path / "bad.json"),
            "--output_dir", str(tmp_path / "out4")]  # fmt: skip
    for change, message in (({"score_norm": "43"}, r"record 2: score_norm must be a number or null, got '43'"),
                            ({"images": 1, "fingerprint": "fedcba9876543210"},
                             r"set was scored on different images in .*bad.json \(4 images, fingerprint 0123456789ab"
                             r"cdef\) and in .*bad.json \(1 images, fingerprint fedcba9876543210\)")):  # fmt: skip
        (tmp_path / "bad.json").write_text(json.dumps(sr[:2] + [{**sr[2], **change}] + sr[3:]))
        with pytest.raises(UserError, match=message):
            run(argv)
    assert not (tmp_path / "out4").exists()
