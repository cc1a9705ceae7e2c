"""Stand-in scripts for tests of asym.study: a training script and an evaluation as small as a script can be, that
write what asym's scripts write (checkpoints/checkpoint-N, config.json, model.safetensors, README.md, an output folder)
so the launchers, states and status can be tested in seconds. Their "model" is a number that depends on every step
(and on the runs they read), so a resumed run equals an uninterrupted one only if it resumed from the right step."""

import os
import textwrap

TRAIN = textwrap.dedent('''
    """A stand-in training script: --max_train_steps steps, a checkpoint every --checkpointing_steps."""
    import argparse, json, os, sys, time

    p = argparse.ArgumentParser()
    p.add_argument("--output_dir", required=True)
    p.add_argument("--max_train_steps", type=int, default=4)
    p.add_argument("--checkpointing_steps", type=int, default=1)
    p.add_argument("--resume_from_checkpoint", default=None)
    p.add_argument("--reads", default="")
    p.add_argument("--fail_unless", default=None, help="exit 1 unless this file exists")
    p.add_argument("--step_seconds", type=float, default=0.0)
    a = p.parse_args()
    if a.fail_unless and not os.path.exists(a.fail_unless):
        print("step 0: loss is nan, stopping", flush=True)
        sys.exit(1)
    folder = os.path.join(a.output_dir, "checkpoints")
    step, value = 0, 7
    for source in filter(None, a.reads.split(",")):
        value += int(open(os.path.join(source, "model.safetensors")).read())
    if a.resume_from_checkpoint == "latest" and os.path.isdir(folder):
        done = sorted(int(n.split("-")[1]) for n in os.listdir(folder) if n.startswith("checkpoint-"))
        if done:
            step = done[-1]
            value = json.load(open(os.path.join(folder, f"checkpoint-{step}", "state.json")))["value"]
    elif os.path.isdir(folder) and os.listdir(folder):
        sys.exit("error: holds an earlier run's checkpoints")
    while step < a.max_train_steps:
        step += 1
        value = (value * 31 + step) % 1000003
        time.sleep(a.step_seconds)
        if step % a.checkpointing_steps == 0:
            os.makedirs(os.path.join(folder, f"checkpoint-{step}"))
            json.dump({"value": value}, open(os.path.join(folder, f"checkpoint-{step}", "state.json"), "w"))
        print(f"step {step}", flush=True)
    for name, text in (("config.json", "{}"), ("model.safetensors", str(value)), ("README.md", "card")):
        open(os.path.join(a.output_dir, name), "w").write(text)
''')

EVALUATE = textwrap.dedent('''
    """A stand-in evaluate.py: the sum of the models it reads, in result.json."""
    import argparse, json, os

    p = argparse.ArgumentParser()
    p.add_argument("verb")
    p.add_argument("--models", required=True)
    p.add_argument("--output_dir", required=True)
    a = p.parse_args()
    os.makedirs(a.output_dir, exist_ok=True)
    total = sum(int(open(os.path.join(m, "model.safetensors")).read()) for m in a.models.split(","))
    json.dump({"total": total}, open(os.path.join(a.output_dir, "result.json"), "w"))
''')


def write_fakes(folder) -> tuple[str, str]:
    """The stand-in training script and evaluate.py, written into ``folder``: their paths."""
    os.makedirs(folder, exist_ok=True)
    train, evaluate = os.path.join(folder, "train_fake.py"), os.path.join(folder, "evaluate.py")
    with open(train, "w") as file:
        file.write(TRAIN)
    with open(evaluate, "w") as file:
        file.write(EVALUATE)
    return train, evaluate


def chain(train: str, evaluate: str, out: str, gate: str | None = None, steps: int = 4) -> list:
    """a -> b -> table, c independent: b fails until the file ``gate`` exists (when given)."""
    fail = ["--fail_unless", gate] if gate else []
    return [(train, ["--max_train_steps", str(steps), "--output_dir", f"{out}/a"]),
            (train, ["--max_train_steps", str(steps), "--reads", f"{out}/a", *fail, "--output_dir", f"{out}/b"]),
            (train, ["--max_train_steps", str(steps), "--output_dir", f"{out}/c"]),
            (evaluate, ["sum", "--models", f"{out}/a,{out}/b", "--output_dir", f"{out}/table"])]  # fmt: skip
