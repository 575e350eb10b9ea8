"""Trains two small models a few steps, alone or under torchrun; rank 0 writes the weights.

Used by test_distributed.py: the same global batch over 1 or 2 processes must give the same
parameters. Writes {out}/{task}.init.safetensors and {out}/{task}.safetensors for both tasks.
"""

import sys
from pathlib import Path

import torch

from rnnkit._io import save_tensors
from rnnkit.models import create_model
from rnnkit.training import StreamBatches, StreamObjective, SupervisedObjective, TensorBatches, TrainConfig, Trainer


def supervised():
    model = create_model("many_to_one", {"input": {"features": 3}, "encoder": {"cell": "lstm", "hidden_size": 8}})
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 6, 3, generator=g), torch.randn(64, generator=g)
    return model, TensorBatches(x, y, batch_size=16, seed=2), SupervisedObjective("mse")


def stream():
    model = create_model(
        "many_to_many", {"input": {"vocab_size": 7}, "encoder": {"cell": "gru", "hidden_size": 8}, "outputs": 7}
    )
    tokens = torch.randint(0, 7, (400,), generator=torch.Generator().manual_seed(1))
    return model, StreamBatches(tokens, batch_size=4, k1=5, k2=8), StreamObjective()


torch.set_num_threads(1)
out = Path(sys.argv[1])
trainer = None
for name, build in (("supervised", supervised), ("stream", stream)):
    torch.manual_seed(0)
    model, data, objective = build()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(model, objective, TrainConfig(max_epochs=2, lr=1e-2, deterministic=False), quiet=True)
    trainer.fit(data)
    if trainer.distributed.is_main:
        save_tensors(out / f"{name}.init.safetensors", initial)
        save_tensors(out / f"{name}.safetensors", model.state_dict())
if trainer.distributed.enabled:
    torch.distributed.destroy_process_group()
