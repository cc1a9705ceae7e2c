"""The plumbing every domain package stands on, and nothing of a domain: errors and their one-line reports
(``errors``), numeric flags (``flags``), atomic writes (``atomic``), image files, builtin images and the decoded-image
cache (``images``, ``decoded_cache``, ``train_loader``), what a name on the command line stands for (``sources``),
the Hub and model cards (``hub``, ``model_card``), processes (``processes``), progress bars (``progress``) and
working offline (``offline``). It imports nothing else of asym.
"""
