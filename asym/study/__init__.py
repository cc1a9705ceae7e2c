"""A study as a resumable graph of runs: the runs and what each reads (``graph``), the studies asym reproduces
(``chains``), where each run stands (``state``), running them here or on SLURM through submitit (``launch``), and one
table of it all (``status``). ``scripts/reproduce_paper.py`` is the command line over it."""
