"""IQA data: full-reference (distorted, reference, score) triplets and no-reference (image, score) items, from the
official layouts of known databases, the Hub, or ``builtin``; the direction of the scores; and the train/validation/
test split (by reference content, by image, or the release's own) with split files that pin it across runs.

``load_fr_dataset`` resolves a source into an ``FRDataset`` of ``FRItem`` s (images decoded on access):

* ``"builtin"``: 8 photographs shipped inside scikit-image with graded synthetic distortions and a pseudo-MOS
  (see ``builtin_fr_items``). A smoke-test set that needs no download, never a benchmark.
* a folder in a known official layout (``detect_layout``, ``LAYOUTS``): KADID-10k, TID2013, PIPAL (NTIRE 2021
  release), TQD, or a pyiqa-style meta-info csv (which is also how Liu13 and Ma17 are read, see below).
* otherwise a Hub dataset id or a local path ``datasets`` understands (a ``save_to_disk`` folder, a parquet/arrow
  file, a folder of parquet files) with a distorted-image, a reference-image and a score column.

Score direction is never assumed silently: each source decides it from its layout, then its file and column names
(``dataset.lower_better``), and says why in ``dataset.direction`` (e.g. ``"lower is better (column 'dmos' of
live.csv: a differential MOS)"``); ``lower_better=True/False`` overrides it, and the override is recorded there.

A reference is identified by what it is, not by how a row names it (``FRItem.ref_id``): its resolved file for the
file layouts (``ref/I01.png`` and ``I01.png`` naming one file are one reference), its decoded pixels (or a
``ref_id_column``) for tables. ``split_by_reference`` therefore never puts one image in two splits.

``load_nr_dataset`` resolves a source into an ``NRDataset`` of ``NRItem`` s (``asym.iqa.data.nr``): ``builtin``'s
distorted images; KonIQ-10k as released (``koniq10k_scores_and_distributions.csv`` and/or the official-split
``koniq10k_distributions_sets.csv``, images in ``1024x768/`` or ``512x384/``); any FR layout above (its distorted
images, grouped by reference); pyiqa's NR meta-info csvs (image path, then MOS; a ``split`` column is the official
split); a Hub / local table with an image and a score column (and a reference column or reference-id column
where its images share references: KADID-like tables; without one it is split by image, with a warning). Every item
has a ``key`` (the image's name as the
release's score file writes it, ``row N`` for tables), which split files record (``asym.iqa.data.splits``:
``choose_split``, ``save_split``, ``load_split``).

Liu13 (deblurring) and Ma17 (super-resolution): we could not obtain their releases to check file names against,
so they are not parsed from the releases. Write their scores into the pyiqa-style meta-info csv
(``ref_name,dist_name,mos[,std]``, one row per distorted image, paths relative to the folder) and load that folder.

    >>> data = load_fr_dataset("builtin")
    >>> data.direction
    'higher is better (builtin pseudo-MOS: 100 - 20 x level x severity)'
    >>> train, val, test = split_by_reference(data)
    >>> data.min_side()
    192
    >>> sample = data.subset(train, crop_size=128, train=True)[0]
    >>> sample["dist"].shape, sample["ref"].shape, sample["score"].dtype
    (torch.Size([3, 128, 128]), torch.Size([3, 128, 128]), torch.float32)

The package, one concept per module (each imports only the ones listed before it):

* ``dataset``: ``FRItem``, ``NRItem``, ``FRDataset``, ``NRDataset`` and their base ``IQADataset`` (decoding, crops,
  header-only sizes, item keys, the up-front image check ``verify_images``), what a reader returns (``Scores``), the
  wording of a score direction (``resolve_direction``), ``split_by_reference``.
* ``builtin``: the builtin synthetic-distortion set (``builtin_fr_items``, ``pseudo_mos``, ``DISTORTIONS``,
  ``read_builtin``).
* ``files``: a user's text and csv files, scores, finding a release's images, reference identity by file.
* ``layouts``: ``detect_layout``, ``LAYOUTS``, ``READERS``, ``NR_LAYOUTS``, and one reader module per release
  (``kadid10k``, ``tid2013``, ``pipal``, ``tqd``, ``pyiqa_csv`` with ``PYIQA_META_INFO``; NR: ``koniq10k``,
  ``pyiqa_nr_csv``).
* ``tables``: Hub / ``datasets`` tables, FR and NR (direction from the column's name, reference identity by pixels).
* ``loading``: ``load_fr_dataset``.
* ``nr``: ``load_nr_dataset``.
* ``cli``: the command-line flags (``add_fr_dataset_args``, ``fr_dataset_kwargs``, ``add_nr_dataset_args``,
  ``nr_dataset_kwargs``; ``add_iqa_dataset_args`` declares the FR and NR flags once, for a script that takes either).
* ``splits``: ``choose_split``, ``save_split``, ``load_split``, ``match_split``, ``add_split_args``, and the test-set
  fingerprints of results.json (``eval_set_record``, ``dataset_eval_set``).
"""

from __future__ import annotations

from .builtin import builtin_fr_items, pseudo_mos
from .cli import add_fr_dataset_args, add_iqa_dataset_args, add_nr_dataset_args, fr_dataset_kwargs, nr_dataset_kwargs
from .dataset import FRDataset, FRItem, IQADataset, NRDataset, NRItem, split_by_reference
from .layouts import LAYOUTS, NR_LAYOUTS, READERS, detect_layout
from .layouts.pyiqa_csv import PYIQA_META_INFO
from .loading import load_fr_dataset
from .nr import load_nr_dataset
from .splits import add_split_args, choose_split, load_split, save_split

# Public names of the single module this package was, not in __all__ (as then): importable from here as before.
from .builtin import BUILTIN_FR_IMAGES as BUILTIN_FR_IMAGES, BUILTIN_SIZE as BUILTIN_SIZE  # isort: skip
from .builtin import DISTORTIONS as DISTORTIONS, SEVERITY as SEVERITY  # isort: skip
from .layouts.pyiqa_csv import KADID_DIST_NAME as KADID_DIST_NAME, SCORE_NAMES as SCORE_NAMES  # isort: skip
from .layouts.tqd import TQD_NAME as TQD_NAME  # isort: skip
from .tables import DMOS_NAME as DMOS_NAME  # isort: skip

__all__ = [
    "FRItem",
    "FRDataset",
    "load_fr_dataset",
    "split_by_reference",
    "detect_layout",
    "builtin_fr_items",
    "pseudo_mos",
    "add_fr_dataset_args",
    "fr_dataset_kwargs",
    "LAYOUTS",
    "READERS",
    "PYIQA_META_INFO",
    "IQADataset",
    "NRItem",
    "NRDataset",
    "load_nr_dataset",
    "add_nr_dataset_args",
    "nr_dataset_kwargs",
    "add_iqa_dataset_args",
    "NR_LAYOUTS",
    "choose_split",
    "save_split",
    "load_split",
    "add_split_args",
]
