"""KADID-10k: ``dmos.csv`` and ``images/``; its dmos is a mean rating, higher is better."""

from __future__ import annotations

import os

from ..dataset import FRItem, Scores
from ..files import FileIds, existing_image, file_stem, parse_score, read_csv_rows, require_nonempty


def read_kadid10k(folder: str) -> Scores:
    """KADID-10k: ``dmos.csv`` (``dist_img,ref_img,dmos,var``) and ``images/I01_01_01.png`` .. ``images/I81.png``.

    The dmos is the mean of degradation category ratings, 1 (imperceptible... bad) to 5: higher is better.
    """
    path = os.path.join(folder, "dmos.csv")
    _, rows = read_csv_rows(path, ("dist_img", "ref_img", "dmos"))
    ids, items = FileIds(), []
    for line, row in rows:
        where = f"{path} line {line}"
        dist, ref = (require_nonempty(row[k], where, k) for k in ("dist_img", "ref_img"))
        ref_path = existing_image(os.path.join(folder, "images", ref), where)
        items.append(FRItem(existing_image(os.path.join(folder, "images", dist), where), ref_path,
                            parse_score(row["dmos"], where), ids(ref_path), file_stem(ref), dist))  # fmt: skip
    return Scores(items, False, "KADID-10k dmos.csv: mean degradation category rating 1..5")
