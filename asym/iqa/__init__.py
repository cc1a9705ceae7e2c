"""Image quality assessment: the FR / NR datasets, their layouts and splits (``data``), the FR / NR leaderboards
(``leaderboard``) and training runs' results with the initialisation comparison of Fig. 5/8 (``results``)."""
