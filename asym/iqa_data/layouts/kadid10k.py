"""KADID-10k: ``dmos.csv`` and ``images/``; its dmos is a mean rating, higher is better."""

from __future__ import annotations

import os

from ..dataset import FRItem, _Scores
from ..files import _csv_rows, _existing, _FileIds, _require_name, _score, _stem


def _kadid(folder: str) -> _Scores:
    """KADID-10k: ``dmos.csv`` (``dist_img,ref_img,dmos,var``) and ``images/I01_01_01.png`` .. ``images/I81.png``.

    The dmos is the mean of degradation category ratings, 1 (imperceptible... bad) to 5: higher is better.
    """
    path = os.path.join(folder, "dmos.csv")
    _, rows = _csv_rows(path, ("dist_img", "ref_img", "dmos"))
    ids, items = _FileIds(), []
    for line, row in rows:
        where = f"{path} line {line}"
        dist, ref = (_require_name(row[k], where, k) for k in ("dist_img", "ref_img"))
        ref_path = _existing(os.path.join(folder, "images", ref), where)
        items.append(FRItem(_existing(os.path.join(folder, "images", dist), where), ref_path,
                            _score(row["dmos"], where), ids(ref_path), _stem(ref), dist))  # fmt: skip
    return _Scores(items, False, "KADID-10k dmos.csv: mean degradation category rating 1..5")
