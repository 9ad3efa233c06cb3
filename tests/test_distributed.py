"""Data-parallel training: two gloo processes on the CPU, as torchrun would start them."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from asr.data import DurationBatchSampler, read_manifest
from asr.config import Config, config_from_dict, config_to_dict
from asr.distributed import setup_distributed
from asr.train import train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world_size: int, port: int, config_values: dict, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size)
    )
    torch.set_num_threads(1)
    seen, final = [], {}

    def observer(progress, indices, model):
        seen.append((progress.epoch, progress.step, list(indices)))
        final["state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    train(config_from_dict(config_values), observer)
    torch.save({"seen": seen, "state": final["state"]}, f"{out}/rank{rank}.pt")
    if world_size > 1:
        torch.distributed.destroy_process_group()


def run_ranks(config, world_size: int, out) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    values = config_to_dict(config)
    values["train"]["device"] = "cpu"  # on a one-GPU machine "auto" would give the second rank no GPU
    mp.spawn(_rank_main, args=(world_size, _free_port(), values, str(out)), nprocs=world_size, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(world_size)]


def _utterances(config) -> int:
    with open(config.data.train_manifest) as f:
        return sum(1 for line in f if line.strip())


def test_two_ranks_end_with_identical_weights_and_see_each_utterance_once_per_epoch(tiny_config, tmp_path):
    tiny_config.train.epochs = 2
    tiny_config.data.max_batch_seconds = 13.0  # 7 batches an epoch (checked below), so one rank gets a padding batch
    durations = [u.duration for u in read_manifest(tiny_config.data.train_manifest)]
    sampler = DurationBatchSampler(durations, tiny_config.data.max_batch_seconds, seed=tiny_config.train.seed)
    assert [len(sampler.epoch_batches(epoch)) % 2 for epoch in range(2)] == [1, 1]
    ranks = run_ranks(tiny_config, 2, tmp_path)
    for name, tensor in ranks[0]["state"].items():
        assert torch.equal(tensor, ranks[1]["state"][name]), name
    total = _utterances(tiny_config)
    for epoch in range(2):
        seen = sorted(i for r in ranks for e, _, indices in r["seen"] if e == epoch for i in indices)
        assert seen == list(range(total))
    assert [s for _, s, _ in ranks[0]["seen"]] == [s for _, s, _ in ranks[1]["seen"]]  # same number of steps
    assert (tmp_path / "exp" / "model.pt").exists() and (tmp_path / "exp" / "checkpoint.pt").exists()


def test_two_ranks_share_the_weighted_draws_of_two_corpora_each_once(two_corpora_config, tmp_path):
    config = two_corpora_config
    config.train.epochs = 2
    ranks = run_ranks(config, 2, tmp_path)
    for name, tensor in ranks[0]["state"].items():
        assert torch.equal(tensor, ranks[1]["state"][name]), name
    utterances = [u for c in config.data.train_manifests for u in read_manifest(c.path)]
    sampler = DurationBatchSampler(
        [u.duration for u in utterances],
        config.data.max_batch_seconds,
        seed=config.train.seed,
        corpora=[0] * 8 + [1] * (len(utterances) - 8),
        weights=[1.0, 1.0],
    )
    for epoch in range(2):
        seen = sorted(i for r in ranks for e, _, indices in r["seen"] if e == epoch for i in indices)
        assert seen == sorted(sampler.epoch_utterances(epoch))  # every draw once, across the ranks
        assert len(seen) > len({i % len(utterances) for i in seen})  # with repeats of "few"


def test_resuming_with_a_different_number_of_ranks_sees_each_utterance_once(tiny_config, tmp_path):
    tiny_config.data.max_batch_seconds = 9.0
    tiny_config.train.max_steps = 2
    first = run_ranks(tiny_config, 2, tmp_path / "two")
    tiny_config.train.max_steps = 0
    second = run_ranks(tiny_config, 1, tmp_path / "one")  # resumes from the 2-rank checkpoint
    assert first[0]["seen"][-1][1] == 2 and second[0]["seen"][0][1] == 3
    seen = sorted(i for r in first + second for _, _, indices in r["seen"] for i in indices)
    assert seen == list(range(_utterances(tiny_config)))


def test_two_nodes_started_by_torchrun_end_with_identical_weights(tiny_config, tmp_path):
    # two "machines" on 127.0.0.1: torchrun --nnodes 2 --nproc-per-node 1 twice, meeting through
    # c10d rendezvous, training over gloo
    values = config_to_dict(tiny_config)
    values["train"]["device"] = "cpu"
    (tmp_path / "config.json").write_text(json.dumps(values))
    port = _free_port()
    node = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1"]
    node += ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "asr-test"]
    node += ["--max-restarts", "0", str(Path(__file__).with_name("ddp_node.py")), str(tmp_path / "config.json")]
    nodes = [
        subprocess.Popen([*node, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)
    ]
    outputs = [n.communicate(timeout=600)[0].decode(errors="replace") for n in nodes]
    assert [n.returncode for n in nodes] == [0, 0], outputs
    first, second = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    assert (tmp_path / "exp" / "model.pt").exists()


def test_more_processes_than_gpus_is_refused_with_a_clear_error(monkeypatch):
    # Seen on a one-GPU machine: the second rank failed deep in CUDA with "invalid device ordinal".
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(RuntimeError, match="1 GPU.*at most one process per GPU, or set train.device=cpu"):
        setup_distributed(Config().train.device)


def test_a_device_name_that_is_no_device_here_gets_a_one_line_error(monkeypatch):
    from asr.distributed import pick_device

    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device must be auto, cpu, cuda or cuda:N, not 'banana'"):
        pick_device("banana")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert pick_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ValueError, match=r"device cuda:2: no such CUDA GPU here \(2 visible\)"):
        pick_device("cuda:2")


def test_one_named_gpu_under_torchrun_is_refused_instead_of_training_on_the_cpu(monkeypatch):
    # Seen: train.device=cuda:1 under torchrun fell through to gloo on the CPU, silently.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ValueError, match="train.device=cuda:1 names one GPU, but under torchrun"):
        setup_distributed("cuda:1")
