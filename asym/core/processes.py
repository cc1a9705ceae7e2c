"""The processes of a run started with ``accelerate launch`` (one without it): which one this is, of how many.

``process_state()`` is Accelerate's ``PartialState`` as ``Accelerator`` would set it up: ``ACCELERATE_USE_CPU=1`` (or
a CPU-only machine) gives gloo processes, and a launch whose processes Accelerate did not connect is refused, since
each would then do all the work and write the same files. ``sharded`` splits a leaderboard's scoring between the
processes; ``main_process_value`` gives every process the main one's value; ``end_processes`` ends them together.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .errors import UserError


def process_state():
    """Accelerate's ``PartialState`` of this process (``process_index``, ``num_processes``, ``device``, ...)."""
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != state.num_processes:
        raise UserError(f"{launched} processes were launched but Accelerate set up {state.num_processes} "
                        f"({state.distributed_type.value}); without GPUs, run several CPU processes with "
                        "ACCELERATE_USE_CPU=1 (or choose multi-CPU in `accelerate config`)")  # fmt: skip
    return state


def evaluation_state(args):
    """``process_state()`` for an ``evaluate.py`` verb: in a launch of several processes, each puts its models on its
    own device (``args.device`` set to it)."""
    state = process_state()
    if state.num_processes > 1:
        args.device = str(state.device)
    return state


def end_processes() -> None:
    """The clean end of a launch of several processes: each waits for the others (the main one may still be writing
    the files), then leaves the process group. A process that simply returns tears its side of the group down under
    the others: a gloo peer then aborts and the launcher kills the rest, the main one included (exit 1 with complete
    files, or a file cut mid-write). Nothing to do in a run of one process."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def main_process_value(accelerator, value):
    """The main process's ``value`` on every process (what was decided where validation runs: the best weights, the
    initial scores); ``value`` itself in a one-process run."""
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value])[0] if accelerator.num_processes > 1 else value


def sharded(score: Callable, state) -> Callable:
    """``score(model, dataset, desc)`` -> scores of every item, run on this process's share of the items (every
    ``num_processes``-th one) and gathered: every process gets all the scores, in item order. As is with one
    process."""
    if state.num_processes == 1:
        return score

    def run(model, dataset, desc: str):
        import numpy as np
        from accelerate.utils import gather_object

        mine = list(range(state.process_index, len(dataset), state.num_processes))
        values = score(model, dataset.subset(mine), desc).tolist() if mine else []
        scores = np.full(len(dataset), np.nan)
        for index, value in gather_object(list(zip(mine, values))):
            scores[index] = value
        return scores

    return run
