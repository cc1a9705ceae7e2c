"""Super-resolution: the generators (``models``: SwinIR / RRDB through spandrel, ``enhancenet``, the ``tiny``
``bicubic_residual``, the ``autoencoder`` at scale 1), training images and crop pairs (``data``), what a run's card
says (``cards``), test sets, sources and the output cache (``evaluation``), Table 1's loop and layout
(``leaderboard``, ``table``) and its per-unit score records (``score_cache``)."""
