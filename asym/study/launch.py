"""Running a study's runs: in this process (``inline``: the smoke chain), as local jobs (``local``: one after another,
or several at once each on its own GPUs) or as SLURM jobs (``slurm``), the last two through ``submitit``.

Every launcher goes by the runs' states (``asym.study.state``): a done run is skipped and said to be done, a partial
one continues from its latest checkpoint (``--resume_from_checkpoint latest``: exactly, as a single run resumes), a
pending or running job is left alone (its dependents wait for it), a run made with other arguments stops the launch
before anything starts. A failed run is reported with the tail of its log, and the runs that read it are not started
(SLURM: ``afterok`` dependencies, with ``--kill-on-invalid-dep``). A job is a ``RunJob``: submitit's
``Checkpointable``, so a job preempted or at its time limit is requeued, and continues from the run's last checkpoint.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import submitit

from ..core.errors import UserError
from .graph import Run, Study
from .state import (
    CHANGED,
    DONE,
    FAILED,
    INTERRUPTED,
    PENDING,
    RECORDS,
    RUNNING,
    checkpoint_step,
    is_complete,
    log_path,
    log_tail,
    read_record,
    run_state,
    write_record,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the scripts' folder


@dataclass
class Resources:
    """What each run gets: GPUs per node and nodes (``accelerate launch`` across them; 0 GPUs: ``python script``),
    and for SLURM its partition, time limit (minutes), memory, CPUs, account and any other sbatch options."""

    gpus_per_run: int = 0
    nodes_per_run: int = 1
    partition: str | None = None
    time_min: int = 24 * 60
    mem_gb: float | None = None
    cpus_per_run: int | None = None
    account: str | None = None
    sbatch: dict = field(default_factory=dict)
    accelerate: bool = True  # training runs under `accelerate launch` (False: `python script`, the smoke chain's)


def command(run: Run, resources: Resources, resume: bool, node: int = 0, main_host: str = "", port: int = 0) -> list:
    """The command line of ``run`` on one node: ``accelerate launch`` for training (across ``nodes_per_run`` machines,
    ``node`` being this one's rank, ``main_host`` the first's), else ``python`` (evaluations, ``accelerate=False``)."""
    script, args = os.path.join(ROOT, run.script), list(run.args)
    if resume:
        args += ["--resume_from_checkpoint", "latest"]
    if not run.trains or not resources.accelerate:
        return [sys.executable, script, *args]
    launch = [sys.executable, "-m", "accelerate.commands.launch"]
    processes = resources.gpus_per_run * resources.nodes_per_run
    if processes:
        launch += ["--num_processes", str(processes), "--num_machines", str(resources.nodes_per_run)]
        launch += ["--multi_gpu"] if processes > 1 else []
    if resources.nodes_per_run > 1:
        launch += ["--machine_rank", str(node), "--main_process_ip", main_host, "--main_process_port", str(port)]
    return [*launch, script, *args]


class RunFailed(RuntimeError):
    """A run's command ended with a non-zero status; the message holds the tail of its log."""


class RunJob(submitit.helpers.Checkpointable):
    """One run, as a job does it: its command run (resumed from the latest checkpoint where there is one), its output
    appended to its log, its record kept; raises ``RunFailed`` (the job fails, so SLURM cancels its dependents).
    Requeued by submitit when preempted or out of time (``Checkpointable``), it continues from the last checkpoint.
    ``in_process``: the script's ``main`` is called here instead (the smoke chain, one process)."""

    def __init__(self, folder: str, run: Run, resources: Resources, launcher: str, in_process: bool = False):
        self.folder, self.run, self.resources, self.launcher = folder, run, resources, launcher
        self.in_process = in_process

    def __call__(self) -> str:
        env = _job_environment()
        node, hosts = (env.global_rank, env.hostnames) if env else (0, [socket.gethostname()])
        job_id = env.job_id if env else None
        resume = checkpoint_step(self.run) > 0
        started = time.time()
        if node == 0:
            write_record(self.folder, self.run, state=RUNNING, launcher=self.launcher, job_id=job_id,
                         host=socket.gethostname(), pid=os.getpid(), started=started, ended=None,
                         resumed=resume, gpus=self.resources.gpus_per_run * self.resources.nodes_per_run)  # fmt: skip
        log = log_path(self.folder, self.run.name)
        os.makedirs(os.path.dirname(log), exist_ok=True)
        if self.in_process:
            status = self._in_process(resume, log)
        else:
            port = 20000 + int(str(job_id or 0).split("_")[0]) % 20000 if self.resources.nodes_per_run > 1 else 0
            line = command(self.run, self.resources, resume, node, hosts[0], port)
            with open(log, "a", encoding="utf-8") as out:
                out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(line)}\n")
                out.flush()
                status = subprocess.call(line, stdout=out, stderr=subprocess.STDOUT, cwd=os.getcwd(),
                                         env=thread_environment(os.environ, self.resources))  # fmt: skip
        if node != 0:
            return self.run.name
        ended = time.time()  # the time this attempt used, added to the earlier attempts'
        used = float((read_record(self.folder, self.run.name) or {}).get("seconds_used") or 0) + ended - started
        if status < 0:  # stopped by a signal (scancel, preemption, a time limit): resumed, not failed
            write_record(self.folder, self.run, state=INTERRUPTED, ended=ended, exit_status=status, seconds_used=used)
            raise RunFailed(f"{self.run.name} was stopped by signal {-status}; it continues from its last checkpoint "
                            "when the study is run again")  # fmt: skip
        if status != 0 or not is_complete(self.run):
            why = f"exit status {status}" if status else "it ended without its final files"
            write_record(self.folder, self.run, state=FAILED, ended=ended, exit_status=status, seconds_used=used)
            raise RunFailed(f"{self.run.name} failed ({why}); the end of its log ({log}):\n"
                            f"{log_tail(self.folder, self.run.name)}")  # fmt: skip
        write_record(self.folder, self.run, state=DONE, ended=ended, exit_status=0, seconds_used=used)
        return self.run.name

    def _in_process(self, resume: bool, log: str) -> int:
        """Run the script's ``main`` here, its output shown and appended to the log; an exception is the failure (its
        traceback in the log; a ``UserError`` its one ``error:`` line, exit status 2), 0 otherwise."""
        import contextlib
        import traceback

        argv = [*self.run.args, *(["--resume_from_checkpoint", "latest"] * resume)]
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {self.run.command_line()}\n")
            with contextlib.redirect_stdout(_Tee(sys.stdout, out)), contextlib.redirect_stderr(_Tee(sys.stderr, out)):
                try:
                    run_in_process(self.run.script, argv)
                except (Exception, SystemExit) as err:  # noqa: BLE001 - a run's failure, reported with its traceback
                    if isinstance(err, SystemExit) and err.code in (0, None):
                        return 0
                    if isinstance(err, UserError):  # the one line the script prints when run alone
                        out.write(f"error: {err}\n")
                        return 2
                    out.write("".join(traceback.format_exception(err)))
                    return 1
        return 0


class _Tee:
    """A text stream writing to two: the console and a run's log."""

    def __init__(self, shown, log):
        self.shown, self.log = shown, log

    def write(self, text: str) -> int:
        self.log.write(text)
        return self.shown.write(text)

    def flush(self) -> None:
        self.log.flush()
        self.shown.flush()

    def isatty(self) -> bool:
        return False


def run_in_process(script: str, argv: list[str]):
    """Run one script's ``main`` in this process, with fresh Accelerate state (as a new ``accelerate launch`` would)."""
    import importlib

    from accelerate.state import AcceleratorState, GradientState

    if ROOT not in sys.path:  # the scripts live at the repository root
        sys.path.insert(0, ROOT)
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    module = importlib.import_module(script.removesuffix(".py"))
    return module.main(module.parse_args(argv))


def thread_environment(environ, resources: Resources) -> dict:
    """``environ`` with ``OMP_NUM_THREADS`` set to the job's CPUs on this node (SLURM's ``SLURM_CPUS_PER_TASK`` or
    ``SLURM_CPUS_ON_NODE``) shared among its processes, unless the user set it: PyTorch otherwise starts a thread per
    core of the whole node, and jobs sharing a node spin against each other (two 1-CPU jobs on a 2-core node ran
    3-5x slower than one alone)."""
    env = dict(environ)
    cpus = env.get("SLURM_CPUS_PER_TASK") or env.get("SLURM_CPUS_ON_NODE")
    if cpus and cpus.isdigit() and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, int(cpus) // max(1, resources.gpus_per_run)))
    return env


def _job_environment():
    """submitit's view of the job this process belongs to, or None outside a submitit job."""
    try:
        return submitit.JobEnvironment()
    except RuntimeError:
        return None


@dataclass
class Plan:
    """What a launch does with each selected run: skip (done), leave alone (pending or running: ``jobs`` has its job
    id), or start; found before anything starts, so that a changed run stops the launch at once."""

    start: list[Run]
    done: list[Run]
    alive: dict[str, str]  # run name -> its job id (or host:pid)


def plan(study: Study, runs: Sequence[Run]) -> Plan:
    """Each of ``runs`` (in study order) sorted into done, alive and to start.

    Raises:
        UserError: runs whose folders hold a model or checkpoints made with other arguments (all of them named).
    """
    states = [run_state(study.folder, run, steps=False) for run in runs]
    changed = [s for s in states if s.state == CHANGED]
    if changed:
        lines = "; ".join(f"{s.run.output_dir} (made by: {s.record.get('command')})" for s in changed)
        raise UserError(f"{len(changed)} run folder(s) hold a run made with other arguments: {lines}. Remove them "
                        "(or choose another --output_dir) to run the study's commands there")  # fmt: skip
    alive = {s.run.name: str(s.record.get("job_id") or f"{s.record.get('host')}:{s.record.get('pid')}")
             for s in states if s.state in (PENDING, RUNNING)}  # fmt: skip
    done = [s.run for s in states if s.state == DONE]
    return Plan([s.run for s in states if s.state not in (DONE, PENDING, RUNNING)], done, alive)


def _blocked(run: Run, failed: list[str], alive: dict[str, str], say: Callable[[str], None]) -> bool:
    """Whether ``run`` reads a run that failed (or one another launch is still running): then it is not started and
    said so, and where an input failed it is counted failed too, so that its own readers are not started either."""
    blocked = [name for name in run.reads if name in failed or name in alive]
    if blocked:
        failed += [run.name] if set(blocked) & set(failed) else []
        say(f"{run.name}: not started (it reads {', '.join(blocked)}, which did not finish)")
    return bool(blocked)


def run_inline(study: Study, runs: Sequence[Run], say: Callable[[str], None] = print) -> list[str]:
    """Every run to start, one after another in this process (``RunJob(in_process=True)``); a failed run's readers are
    not started, the others go on. Returns the names of the failed runs."""
    todo = plan(study, runs)
    for run in todo.done:
        say(f"{run.name}: done, skipped")
    failed: list[str] = []
    for i, run in enumerate(todo.start, 1):
        if _blocked(run, failed, todo.alive, say):
            continue
        say(f"[{i}/{len(todo.start)}] {run.command_line()}")
        start = time.time()
        try:
            RunJob(study.folder, run, Resources(accelerate=False), "inline", in_process=True)()
        except RunFailed as err:  # its output was shown above; the end of its log is said once, at the end
            failed.append(run.name)
            say(str(err).splitlines()[0].replace("the end of its log", "its log").removesuffix(":"))
            continue
        say(f"[{i}/{len(todo.start)}] {run.name} done in {time.time() - start:.0f} s")
    return failed


def run_local(study: Study, runs: Sequence[Run], resources: Resources, gpus: Sequence[int] = (),
              poll_s: float = 1.0, say: Callable[[str], None] = print) -> list[str]:  # fmt: skip
    """Every run to start, as submitit local jobs (each a process of its own): as many at once as ``gpus`` hold
    ``resources.gpus_per_run`` each (one at a time without GPUs), each job given its own GPUs; a run starts once
    everything it reads is done, and a failed run's readers are not started. Returns the failed runs' names."""
    todo = plan(study, runs)
    for run in todo.done:
        say(f"{run.name}: done, skipped")
    executor = submitit.LocalExecutor(folder=os.path.join(study.folder, RECORDS, "submitit", "%j"))
    per_run = resources.gpus_per_run
    slots = [list(gpus[i : i + per_run]) for i in range(0, len(gpus) - per_run + 1, per_run)] if per_run else [[]]
    free, running, waiting = list(slots), {}, list(todo.start)
    finished, failed = {run.name for run in todo.done}, []
    while waiting or running:
        for name, (job, slot) in list(running.items()):
            if job.done():
                del running[name]
                free.append(slot)
                try:
                    job.result()
                    finished.add(name)
                    say(f"{name}: done")
                except Exception:  # noqa: BLE001 - submitit wraps the run's RunFailed; its log's end is said at the end
                    failed.append(name)
                    say(f"{name}: failed; its log: {log_path(study.folder, name)}")
        for run in list(waiting):
            if _blocked(run, failed, todo.alive, say):
                waiting.remove(run)
            elif free and set(run.reads) <= finished:
                waiting.remove(run)
                slot = free.pop(0)
                executor.update_parameters(timeout_min=resources.time_min, gpus_per_node=len(slot),
                                           visible_gpus=tuple(slot))  # fmt: skip
                running[run.name] = (executor.submit(RunJob(study.folder, run, resources, "local")), slot)
                say(f"{run.name}: started (job {running[run.name][0].job_id}, GPUs {slot or 'none'})")
        if not running and waiting and not free:
            raise RuntimeError("no free slot and nothing running")  # a bug: slots are returned when jobs end
        if running:
            time.sleep(poll_s)
    return failed


def slurm_executor(study: Study, resources: Resources, cluster: str = "slurm"):
    """A submitit executor for the study's jobs on SLURM (``cluster="slurm"``), with ``resources``' partition, time
    limit, memory, CPUs and account (GPUs and nodes are set per run: ``job_shape``)."""
    executor = submitit.AutoExecutor(folder=os.path.join(study.folder, RECORDS, "submitit", "%j"), cluster=cluster)
    params = {"timeout_min": resources.time_min, "tasks_per_node": 1, "slurm_partition": resources.partition,
              "mem_gb": resources.mem_gb, "cpus_per_task": resources.cpus_per_run,
              "slurm_account": resources.account}  # fmt: skip
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    return executor


def job_shape(run: Run, resources: Resources) -> dict:
    """A run's GPUs per node and nodes: the resources' for training, one GPU (where there are any) on one node for
    an evaluation, which runs as one process. No GPU: no GPU option at all (a cluster without GPUs refuses one)."""
    gpus, nodes = resources.gpus_per_run, resources.nodes_per_run
    if not run.trains:
        gpus, nodes = min(gpus, 1), 1
    return {"nodes": nodes, **({"gpus_per_node": gpus} if gpus else {})}


def submit_slurm(study: Study, runs: Sequence[Run], resources: Resources, executor=None,
                 say: Callable[[str], None] = print) -> dict[str, str]:  # fmt: skip
    """Submit every run to start as a SLURM job at once, each depending (``afterok``) on the jobs of the runs it reads
    that are not done yet, so SLURM starts it when they succeed and cancels it when one fails. Records each job id.
    Returns {run name: job id} of the jobs submitted."""
    todo = plan(study, runs)
    for run in todo.done:
        say(f"{run.name}: done, skipped")
    for name, job in todo.alive.items():
        say(f"{name}: already submitted (job {job}), left alone")
    jobs = dict(todo.alive)
    submitted = {}
    for run in todo.start:
        after = [jobs[name] for name in run.reads if name in jobs]
        extra = dict(resources.sbatch, job_name=f"asym-{run.name}")
        if after:
            extra.update(dependency="afterok:" + ":".join(after), kill_on_invalid_dep="yes")
        shape = job_shape(run, resources)
        submitter = executor or slurm_executor(study, resources)  # a fresh one per run: its GPU option is its own
        submitter.update_parameters(slurm_additional_parameters=extra, **shape)
        given = replace(resources, gpus_per_run=shape.get("gpus_per_node", 0), nodes_per_run=shape["nodes"])
        job = submitter.submit(RunJob(study.folder, run, given, "slurm"))
        jobs[run.name] = submitted[run.name] = str(job.job_id)
        write_record(study.folder, run, state="submitted", launcher="slurm", job_id=str(job.job_id),
                     submitted=time.time(), started=None, ended=None)  # fmt: skip
        say(f"{run.name}: submitted as job {job.job_id}" + (f" (after {', '.join(after)})" if after else ""))
    if not submitted:
        say("nothing to submit: every selected run is done or already submitted")
    return submitted


def wait_slurm(study: Study, runs: Sequence[Run], poll_s: float = 5.0, timeout_s: float | None = None) -> list[str]:
    """Wait until no selected run is pending or running; returns the names of those that did not end done."""
    start = time.time()
    while True:
        states = {run.name: run_state(study.folder, run, steps=False).state for run in runs}
        if not any(s in (PENDING, RUNNING) for s in states.values()):
            return [name for name, s in states.items() if s != DONE]
        if timeout_s is not None and time.time() - start > timeout_s:
            raise TimeoutError(f"the study's jobs did not end in {timeout_s:.0f} s")
        time.sleep(poll_s)


def failed_runs(study: Study, runs: Sequence[Run]) -> list[tuple[Run, str]]:
    """The runs that failed, with the tail of each one's log."""
    out = []
    for run in runs:
        record = read_record(study.folder, run.name)
        if record and record.get("state") == FAILED:
            out.append((run, log_tail(study.folder, run.name)))
    return out
