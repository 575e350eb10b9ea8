"""Two processes under torchrun (gloo on CPU) reach the parameters of one process on the same global batch."""

import os
import subprocess
import sys
from pathlib import Path

import torch

from rnnkit._io import load_tensors

WORKER = Path(__file__).with_name("ddp_worker.py")


def run(args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(args, capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]


def test_two_processes_equal_one_process(tmp_path):
    (tmp_path / "single").mkdir(), (tmp_path / "ddp").mkdir()
    run([sys.executable, str(WORKER), str(tmp_path / "single")])
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(WORKER), str(tmp_path / "ddp")])  # fmt: skip
    for task in ("supervised", "stream"):  # many-to-one batches, and TBPTT streams split by process
        single = load_tensors(tmp_path / "single" / f"{task}.safetensors")
        ddp = load_tensors(tmp_path / "ddp" / f"{task}.safetensors")
        initial = load_tensors(tmp_path / "single" / f"{task}.init.safetensors")
        assert single.keys() == ddp.keys()
        for name in single:
            torch.testing.assert_close(ddp[name], single[name], atol=1e-5, rtol=1e-5, msg=lambda m: f"{task} {name}: {m}")
        # training moved the weights: the comparison is not between two initialisations
        moved = max((single[n] - initial[n]).abs().max().item() for n in single)
        assert moved > 1e-2, f"{task}: weights barely moved ({moved})"
