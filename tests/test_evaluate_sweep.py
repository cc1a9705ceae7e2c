"""evaluate.py sweep (Fig. 7): the SR leaderboard average of runs against their adversarial weight."""

import json
from pathlib import Path

import pytest
from conftest import run_evaluate, sr_record

ROOT = Path(__file__).resolve().parents[1]

from asym.core.errors import UserError  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: on the shared 2-core VM, faster than two threads


def run(argv):
    return run_evaluate(argv)


def test_sweep_plots_average_against_lambda_adv(tmp_path, capsys):
    runs, sr = [], []
    for backbone in ("vgg16", "resnet50"):
        for weight in (0.001, 0.005, 0.01):
            folder = tmp_path / f"{backbone}-{weight}"
            folder.mkdir()
            card = {"--loss": "rec+per+adv", "--lambda_adv": weight,
                    "discriminator": f"vanilla on {backbone} (pretrained), lr 0.0001"}  # fmt: skip
            (folder / "config.json").write_text(json.dumps({"card": card}))
            runs.append(str(folder))
            sr.append(sr_record(folder.name, "liqe", 0.0, "rec+per+adv", "vgg16", str(folder), norm=50 + 1000 * weight))
    base = tmp_path / "rec"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"card": {"--loss": "rec", "--lambda_adv": 0.005}}))
    sr.append(sr_record("rec", "liqe", 0.0, "rec", None, str(base), norm=45.0))
    (tmp_path / "sr.json").write_text(json.dumps(sr))
    points = run(["sweep", "--runs", ",".join([*runs, str(base)]), "--sr_results", str(tmp_path / "sr.json"),
                  "--output_dir", str(tmp_path / "out")])  # fmt: skip
    printed = capsys.readouterr().out
    assert len(points) == 6 and {p["backbone"] for p in points} == {"vgg16", "resnet50"}
    p = next(p for p in points if p["backbone"] == "resnet50" and p["lambda_adv"] == 0.01)
    assert p["average"] == pytest.approx(60.0)
    assert "rec: no adversarial term -> average 45.000" in printed
    assert (tmp_path / "out" / "sweep.png").stat().st_size > 0
    with pytest.raises(UserError, match="holds no config.json"):
        run(["sweep", "--runs", str(tmp_path), "--sr_results", str(tmp_path / "sr.json"),
             "--output_dir", str(tmp_path / "out2")])  # fmt: skip
    (tmp_path / "old.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "fingerprint"} for r in sr]))
    with pytest.raises(UserError, match="old.json was written before evaluate.py sr recorded which images"):
        run(["sweep", "--runs", runs[0], "--sr_results", str(tmp_path / "old.json"),
             "--output_dir", str(tmp_path / "out3")])  # fmt: skip
