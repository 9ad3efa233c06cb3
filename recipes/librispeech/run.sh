#!/usr/bin/env bash
# LibriSpeech recipe: download, prepare manifests, train, evaluate.
#   bash recipes/librispeech/run.sh [--stage N] [--stop-stage N] [--config FILE] [--mirror M]
#                                   [--subset-dir DIR] [--dev-speakers "ID ..."] [--data-dir DIR]
#                                   [--synthetic-copies N] [--synthetic-neural-share F] [--then-train-on real|mixed] [--lm-dir DIR]
#                                   [--extra-speech MANIFEST[:WEIGHT] ...] [section.key=value ...]
# Stages:
#   0 download dev-clean, dev-other, test-clean, test-other and train-clean-100 into data/download
#   1 prepare JSON-lines manifests in data/
#   2 train (config.yaml: train-clean-100 on one GPU; config_cpu.yaml: small subsets on a CPU)
#   3 evaluate exp_dir/model.pt on each evaluation set, greedy and with a word LM whose weights are
#     tuned on the dev set (dev-clean, or the --dev-speakers): LibriSpeech's official 3-gram when
#     --lm-dir holds it (data_scripts/download_lm.py), else the general English bigram LM that
#     `asr lm build --counts symspellpy` makes from the word counts bundled with symspellpy.
#     Results in exp_dir/results.txt.
# With --subset-dir DIR (a LibriSpeech-layout folder such as ../shared/data/librispeech-dev-clean-subset)
# nothing is downloaded: speakers 84 and 174 become the test set, the --dev-speakers (default 422 and
# 1673) the dev set (LM weights, best epoch) and the others the training set.
# Manifests go to data/ (data/subset/ with --subset-dir) unless --data-dir says otherwise.
# With --synthetic-copies N (subset mode) stage 1 also cuts the training transcripts into phrases of
# 2-5 words and speaks each N times with random eSpeak NG voices (data/subset/synthetic/); stage 2
# then first trains on those phrases alone (EXP_DIR/pretrain: short, clean utterances get a character
# model off CTC's all-blank plateau within minutes) and goes on from that model on the real speech
# (--then-train-on real, the default: it learned faster, RESULTS.md) or on real plus synthetic
# speech (--then-train-on mixed: data/subset/train_mixed.jsonl). With --synthetic-neural-share F that share
# of the phrases is spoken by the neural Piper voice instead of eSpeak NG.
# Each --extra-speech MANIFEST (repeatable; e.g. ../shared/data/extra-english-speech/an4/an4_train.jsonl)
# joins the real speech of stage 2 (2b in subset mode) as another corpus (data.train_manifests),
# weighted by its hours unless :WEIGHT says otherwise (the LibriSpeech manifest: its hours); dev and
# test stay LibriSpeech's. An epoch then holds all their hours: fewer train.epochs keep the time.
# Multi-GPU: set NPROC=N to launch stage 2 through torchrun with N processes.
set -euo pipefail
. "$(dirname "$0")/../common.sh"

stage=0
stop_stage=3
config=config.yaml
mirror=openslr
subset_dir=""
data=""
synthetic_copies=""
neural_share=0
dev_speakers="422 1673"
then_train_on=real
lm_dir=""
extra_speech=()
while [ $# -gt 0 ]; do
  if stage_option "$1" "${2:-}"; then shift 2; continue; fi
  case "$1" in
    --config) config=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    --subset-dir) subset_dir=$(realpath "$2"); shift 2 ;;
    --data-dir) data=$(realpath -m "$2"); shift 2 ;;
    --synthetic-copies) synthetic_copies=$2; shift 2 ;;
    --synthetic-neural-share) neural_share=$2; shift 2 ;;
    --dev-speakers) dev_speakers=$2; shift 2 ;;
    --then-train-on) then_train_on=$2; shift 2 ;;
    --lm-dir) lm_dir=$(realpath -m "$2"); shift 2 ;;
    --extra-speech)
      manifest=${2%:*}; weight=${2#"$manifest"}  # weight: "" or ":W"
      if [ ! -f "$manifest" ]; then echo "run.sh: --extra-speech $manifest: no such manifest" >&2; exit 2; fi
      extra_speech+=("$(realpath "$manifest")$weight")
      shift 2 ;;
    *) break ;;
  esac
done
overrides=("$@")
cd "$(dirname "$0")"  # after reading --subset-dir, which is relative to where the script was called from
exp_dir=$(python -c "import sys; from asr.config import load_config; print(load_config(sys.argv[1], sys.argv[2:]).train.exp_dir)" "$config" "${overrides[@]}")

if [ -n "$subset_dir" ]; then
  synthetic_copies=${synthetic_copies:-1}  # 1.9 h of real speech alone leaves the model on CTC's blank plateau
  eval_sets=(test)
  dev_set=dev
  data=${data:-data/subset}
  # the best pairs of the subset's runs lie inside; 16 pairs leave time for config_cpu.yaml's wide beam
  lm_weights=${LM_WEIGHTS:-1,1.5,2,2.5}
  word_scores=${WORD_SCORES:--4,-3,-2,-1}
else
  eval_sets=(dev-clean dev-other test-clean test-other)
  synthetic_copies=${synthetic_copies:-0}
  dev_set=dev-clean
  data=${data:-data}
  lm_weights=${LM_WEIGHTS:-1,1.5,2,2.5,3,4}
  word_scores=${WORD_SCORES:--5,-4,-3,-2,-1,0}
fi
lm_dir=${lm_dir:-data/lm}

start=$SECONDS
if run_stage 0 && [ -z "$subset_dir" ]; then
  echo "stage 0: downloading LibriSpeech into data/download"
  python ../../data_scripts/download_librispeech.py data/download --mirror "$mirror" \
    --subsets train-clean-100 dev-clean dev-other test-clean test-other
fi
if run_stage 1; then
  echo "stage 1: manifests in $data/"
  mkdir -p "$data"
  if [ -n "$subset_dir" ]; then
    # shellcheck disable=SC2086  # the speaker ids are separate words
    python ../../data_scripts/prepare_librispeech.py "$subset_dir" "$data/train.jsonl" --exclude-speakers 84 174 $dev_speakers
    # shellcheck disable=SC2086
    python ../../data_scripts/prepare_librispeech.py "$subset_dir" "$data/dev.jsonl" --include-speakers $dev_speakers
    python ../../data_scripts/prepare_librispeech.py "$subset_dir" "$data/test.jsonl" --include-speakers 84 174
    if [ "$synthetic_copies" -gt 0 ]; then
      python ../../data_scripts/synthesize_text.py "$data/train.jsonl" "$data/synthetic" \
        --phrase-words 2 5 --copies "$synthetic_copies" --neural-share "$neural_share" --workers "$(nproc)" \
        --mixed "$data/train_mixed.jsonl"
    fi
  else
    for subset in train-clean-100 "${eval_sets[@]}"; do
      python ../../data_scripts/prepare_librispeech.py "data/download/LibriSpeech/$subset" "$data/$subset.jsonl"
    done
  fi
fi
if run_stage 2; then
  echo "stage 2: training ($config, $exp_dir)"
  if [ -n "$subset_dir" ]; then
    train=$data/train.jsonl
    if [ "$synthetic_copies" -gt 0 ]; then
      echo "stage 2a: pretraining on synthetic phrases ($exp_dir/pretrain)"
      # pretrain.yaml after the command line's overrides: those are for stage 2b (its epochs, ...)
      asr train "$config" "data.train_manifest=$data/synthetic/synthetic.jsonl" "${overrides[@]}" pretrain.yaml \
        "train.exp_dir=$exp_dir/pretrain"
      case "$then_train_on" in
        real) ;;
        mixed) train=$data/train_mixed.jsonl ;;
        *) echo "run.sh: --then-train-on must be real or mixed, not $then_train_on" >&2; exit 2 ;;
      esac
      overrides=("train.init_from=$exp_dir/pretrain/model.pt" "${overrides[@]}")
    fi
    overrides=("data.train_manifest=$train" "data.dev_manifest=$data/dev.jsonl" "${overrides[@]}")
  else
    train=$data/train-clean-100.jsonl
  fi
  if [ ${#extra_speech[@]} -gt 0 ]; then
    # data.train_manifests: the LibriSpeech manifest and each extra one, weighted by hours unless given
    corpora=$(python ../../data_scripts/corpus_weights.py "$train" "${extra_speech[@]}")
    echo "stage 2: training on several corpora: $corpora"
    overrides+=("data.train_manifest=\"\"" "data.train_manifests=$corpora")
  fi
  if [ "${NPROC:-1}" -gt 1 ]; then
    torchrun --standalone --nproc_per_node "$NPROC" -m asr.cli train "$config" "${overrides[@]}"
  else
    asr train "$config" "${overrides[@]}"
  fi
fi
if run_stage 3; then
  if [ -f "$lm_dir/3-gram.pruned.1e-7.arpa" ] && [ -f "$lm_dir/lexicon.txt" ]; then
    lm=$lm_dir/3-gram.pruned.1e-7.arpa; lexicon=$lm_dir/lexicon.txt
    echo "stage 3: LibriSpeech's official 3-gram LM ($lm)"
  else
    lm=$data/lm/general_2gram.arpa; lexicon=$data/lm/general_lexicon.txt
    if [ ! -f "$lm" ]; then
      echo "stage 3: general English bigram LM from symspellpy's word counts ($lm)"
      mkdir -p "$data/lm"
      asr lm build --counts symspellpy "$lm" --lexicon "$lexicon"
    fi
  fi
  echo "stage 3: LM weight and word score tuned on $data/$dev_set.jsonl -> $exp_dir/model_lm.pt"
  asr tune-lm "$exp_dir/model.pt" "$data/$dev_set.jsonl" --lm "$lm" --lexicon "$lexicon" \
    --lm-weights="$lm_weights" --word-scores="$word_scores" \
    --out "$exp_dir/model_lm.pt" | tee "$exp_dir/tune_lm.tsv"
  echo "stage 3: evaluating $exp_dir/model.pt (greedy) and $exp_dir/model_lm.pt (word LM)"
  : > "$exp_dir/results.txt"
  for set in "${eval_sets[@]}"; do
    result=$(asr evaluate "$exp_dir/model.pt" "$data/$set.jsonl" --output "$exp_dir/decode_$set.jsonl" \
      --report "$exp_dir/report_$set.html" --train-log "$exp_dir/train_log.csv")
    echo "$set greedy: $result" | tee -a "$exp_dir/results.txt"
    result=$(asr evaluate "$exp_dir/model_lm.pt" "$data/$set.jsonl" --output "$exp_dir/decode_${set}_lm.jsonl")
    echo "$set word LM: $result" | tee -a "$exp_dir/results.txt"
  done
fi
echo "done in $((SECONDS - start)) s"
