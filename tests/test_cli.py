import json
import re

import yaml

from asr.config import config_to_dict

from .conftest import run_cli


def test_train_then_evaluate_from_the_command_line(tiny_config, digits_corpus, tmp_path):
    config_path = tmp_path / "config.yaml"
    values = config_to_dict(tiny_config)
    values["train"]["exp_dir"] = "exp"  # relative: resolves against the config's folder
    config_path.write_text(yaml.safe_dump(values))
    trained = run_cli(
        "train", str(config_path), "train.epochs=1", "model.rnn_type=gru", cwd=digits_corpus["train"].parent
    )
    assert trained.returncode == 0, trained.stderr
    model = tmp_path / "exp" / "model.pt"
    assert trained.stdout.strip().endswith(str(model))
    assert "gru x2" in trained.stderr

    plain = run_cli("evaluate", str(model), str(digits_corpus["test"]))
    assert plain.returncode == 0, plain.stderr
    assert re.fullmatch(r"WER \d+\.\d\d% CER \d+\.\d\d% \(8 utterances\)\n", plain.stdout)
    rows = [json.loads(line) for line in (tmp_path / "exp" / "decode_test.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and {"reference", "hypothesis", "word_errors"} <= set(rows[0])

    as_json = run_cli("evaluate", str(model), str(digits_corpus["test"]), "--json")
    result = json.loads(as_json.stdout)
    assert set(result) >= {"wer", "cer", "substitutions", "deletions", "insertions", "utterances"}
    assert result["utterances"] == 8 and 0 <= result["cer"] <= 1.5
    assert f"WER {100 * result['wer']:.2f}%" in plain.stdout


def test_cli_reports_bad_input_with_the_file_and_line(tiny_config, digits_corpus, tmp_path):
    manifest = digits_corpus["test"].parent / "bad.jsonl"  # beside the corpus, so line 1's relative path resolves
    manifest.write_text(digits_corpus["test"].read_text().splitlines()[0] + "\nnot json\n")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config_to_dict(tiny_config)))
    result = run_cli("train", str(config_path), f"data.train_manifest={manifest}")
    assert result.returncode == 2
    assert f"{manifest}:2: not valid JSON" in result.stderr

    unknown = run_cli("train", str(config_path), "model.layers=3")
    assert unknown.returncode == 2 and "model: unknown key(s) layers" in unknown.stderr

    not_model = run_cli("evaluate", str(manifest), str(digits_corpus["test"]))
    assert not_model.returncode == 2 and "bad.jsonl: not a model file" in not_model.stderr
