"""asym.sr.table: the SR leaderboard's Table 1 (what the sr verb prints), from records."""

import numpy as np


def test_sr_table_keeps_the_raw_mean_beside_the_mean_of_normalised_scores():
    """score_norm is the mean of the per-image normalised scores: with N(x) = 99 / (1 + exp(-x)) + 1, model a (raw 1,
    1) has the lower raw mean but the higher normalised one than b (raw -20, 30). Both rows are shown, and the Std row
    has no std of stds."""
    from asym.metrics.calibration import Normalisation
    from asym.sr.table import sr_table

    n = Normalisation("m", 0.0, 1.0)
    raw = {"a": [1.0, 1.0], "b": [-20.0, 30.0], "c": [0.0, 2.0]}
    records = [{"model": m, "metric": "m", "dataset": "d", "score": float(np.mean(v)),
                "score_norm": float(np.mean(n(v))), "status": "ok"} for m, v in raw.items()]  # fmt: skip
    table = sr_table(records, list(raw), ["m"], {m: "per" for m in raw}, {m: "asym" for m in raw})
    lines = table.splitlines()
    norm = [float(np.mean(n(v))) for v in raw.values()]
    assert norm[0] > norm[1] and np.mean(raw["a"]) < np.mean(raw["b"])  # the two means rank a and b oppositely
    assert lines[0] == "| Metric | a [per] | b [per] | c [per] | Std. [per] |"
    assert lines[2] == "| m (1..100) | " + " | ".join(f"{v:.2f}" for v in norm) + f" | {np.std(norm):.3f} |"
    assert lines[3] == "| m (raw mean) | 1.00 | 5.00 | 1.00 | 1.886 |"
    assert lines[5] == "| Std | 0.0000 | 0.0000 | 0.0000 | – |"
    assert "(1..100): the mean over images of each image's normalised score (score_norm), not the" in table
