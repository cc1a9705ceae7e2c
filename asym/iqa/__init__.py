"""Image quality assessment: the FR / NR datasets, their layouts and splits (``data``), the FR / NR leaderboards
(``leaderboard``), training runs' results with the initialisation comparison of Fig. 5/8 (``results``), a
backbone's stage responses (``feature_maps``, Fig. 14) and BAPPS's 2AFC task with LPIPS's training on it
(``two_afc``)."""
