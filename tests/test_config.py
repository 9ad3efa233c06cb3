import pytest

from asr.config import Config, config_from_dict, config_to_dict, load_config


def test_yaml_with_overrides(tmp_path, monkeypatch):
    path = tmp_path / "recipe" / "config.yaml"
    path.parent.mkdir()
    path.write_text("data:\n  train_manifest: data/train.jsonl\nmodel:\n  hidden_size: 64\ntrain:\n  lr: 1\n")
    monkeypatch.chdir(tmp_path)
    config = load_config(
        path, ["model.rnn_type=gru", "train.epochs=3", "specaugment.enabled=false", "train.exp_dir=runs/a"]
    )
    assert config.model.rnn_type == "gru" and config.model.hidden_size == 64
    assert config.train.epochs == 3 and config.train.lr == 1.0 and config.specaugment.enabled is False
    assert config.data.train_manifest == str(path.parent / "data" / "train.jsonl")  # relative to the file
    assert config.train.exp_dir == str(tmp_path / "runs" / "a")  # overrides: relative to the working directory


def test_a_yaml_file_among_the_overrides_is_laid_over_the_config_in_order(tmp_path):
    (tmp_path / "stage").mkdir()
    base = tmp_path / "config.yaml"
    base.write_text("data:\n  max_batch_seconds: 60\n  dev_manifest: dev.jsonl\ntrain:\n  epochs: 45\n  lr: 1e-3\n")
    overlay = tmp_path / "stage" / "pretrain.yaml"
    overlay.write_text(
        'data:\n  dev_manifest: ""\n  max_batch_seconds: 20\n  train_manifest: phrases.jsonl\n'
        "model:\ntrain:\n  epochs: 6\n"
    )
    config = load_config(base, ["train.epochs=20", "train.lr=3e-3", str(overlay)])
    assert config.train.epochs == 6  # the file came after the key=value override
    assert config.train.lr == 0.003 and config.data.max_batch_seconds == 20 and config.data.dev_manifest == ""
    assert config.data.train_manifest == str(tmp_path / "stage" / "phrases.jsonl")  # relative to the overlay
    assert config.model == Config().model  # an empty section changes nothing
    assert load_config(base, [str(overlay), "train.epochs=20"]).train.epochs == 20


def test_round_trip_and_type_errors():
    config = Config()
    assert config_from_dict(config_to_dict(config)) == config
    with pytest.raises(ValueError, match="model.hidden_size: expected int"):
        config_from_dict({"model": {"hidden_size": "big"}})
    with pytest.raises(ValueError, match="unknown key"):
        config_from_dict({"trian": {}})


def test_exponent_floats_without_a_dot_are_read_as_floats(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 3e-3\n")  # YAML 1.1 reads this as a string
    assert load_config(path, ["train.weight_decay=1e-2"]).train.lr == 0.003
    assert load_config(path, ["train.weight_decay=1e-2"]).train.weight_decay == 0.01
    with pytest.raises(ValueError, match="train.lr: expected float"):
        load_config(path, ["train.lr=fast"])


def test_several_training_manifests_with_weights_from_yaml_and_overrides(tmp_path, monkeypatch):
    path = tmp_path / "recipe" / "config.yaml"
    path.parent.mkdir()
    path.write_text(
        "data:\n  train_manifests:\n    - {path: data/libri.jsonl, weight: 3}\n"
        "    - {path: /abs/an4.jsonl, name: people}\n"
    )
    config = load_config(path)
    assert [(c.path, c.weight, c.name) for c in config.data.train_manifests] == [
        (str(path.parent / "data" / "libri.jsonl"), 3.0, ""),
        ("/abs/an4.jsonl", 1.0, "people"),
    ]
    assert config_from_dict(config_to_dict(config)) == config  # as a model file stores it
    monkeypatch.chdir(tmp_path)
    overridden = load_config(path, ["data.train_manifests=[{path: x.jsonl, weight: 0.5}]"])
    assert [(c.path, c.weight) for c in overridden.data.train_manifests] == [(str(tmp_path / "x.jsonl"), 0.5)]
    bad = {
        "data.train_manifest=t.jsonl": "data.train_manifests must be empty when data.train_manifest is given",
        "data.train_manifests=[{path: a.jsonl, weight: 0}]": r"train_manifests\[0\].weight must be positive",
        "data.train_manifests=[{path: a.jsonl, weight: .nan}]": r"train_manifests\[0\].weight must be positive",
        "data.train_manifests=[{path: a.jsonl, weight: .inf}]": r"train_manifests\[0\].weight must be positive",
        "data.train_manifests=[{weight: 2}]": r"train_manifests\[0\].path must be a manifest path",
        "data.train_manifests=[{path: a/t.jsonl}, {path: b/t.jsonl}]": "must be corpora of different names",
        "data.train_manifests=[{path: a.jsonl, wieght: 2}]": r"train_manifests\[0\]: unknown key\(s\) wieght",
        "data.train_manifests=[a.jsonl]": r"train_manifests\[0\]: expected a mapping",
    }
    for override, message in bad.items():
        with pytest.raises(ValueError, match=message):
            load_config(path, [override])
