"""One node of a multi-node training, started by torchrun (tests/test_distributed.py): trains the
config in JSON file ARGV[1] and saves what this rank ends with to ARGV[2]/rank<RANK>.pt."""

import json
import os
import sys

import torch

from asr.config import config_from_dict
from asr.train import train

if __name__ == "__main__":
    torch.set_num_threads(1)
    final = {}

    def observer(progress, indices, model):
        final["state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    with open(sys.argv[1], encoding="utf-8") as f:
        train(config_from_dict(json.load(f)), observer)
    torch.save(final["state"], os.path.join(sys.argv[2], f"rank{os.environ['RANK']}.pt"))
    torch.distributed.destroy_process_group()
