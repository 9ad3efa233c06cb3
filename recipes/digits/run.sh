#!/usr/bin/env bash
# Connected-digits recipe, the embedded default: synthesize the corpus, train, evaluate on unseen voices.
#   bash recipes/digits/run.sh [--stage N] [--stop-stage N] [section.key=value ...]
# Stages: 0 make data (eSpeak NG and a neural voice, offline, plus the recordings of people in real/), 1 train,
#   2 evaluate on the test voices (greedy),
#   3 word LM and lexicon from the training transcripts, LM weight and word score tuned on
#     data/tune (more utterances of the dev voices, made here: $TUNE_UTTERANCES, default 1000),
#   4 evaluate with lexicon-constrained beam search on the test voices,
#   5 only with REAL_DIGITS=MANIFEST[:MANIFEST...]: greedy and beam WER on those manifests' utterances
#     of people saying digits (benchmarks/real_digits.py; decode files and reports in exp/real_digits/).
# Rerunning resumes: existing data is kept and training continues from exp/checkpoint.pt.
set -euo pipefail
caller=$PWD  # REAL_DIGITS paths are relative to where run.sh was started
cd "$(dirname "$0")"
. ../common.sh

stage=0
stop_stage=5
while [ $# -gt 0 ] && stage_option "$1" "${2:-}"; do shift 2; done
overrides=("$@")

# Besides 6,000 eSpeak utterances of 1 to 6 digits: 1,500 of the neural voice (1 to 7 digits), and
# each recording of people in real/ listed 10 times (RESULTS.md: the screens on AN4's other speakers)
neural_utterances=1500
real_copies=10
tune_utterances=${TUNE_UTTERANCES:-1000}  # on the 200 of dev.jsonl most weight pairs tie within a word or two
start=$SECONDS
if run_stage 0; then
  if [ -f data/test.jsonl ]; then
    echo "stage 0: data/ already made"
  else
    echo "stage 0: synthesizing the digits corpus into data/, with the recordings of people in real/"
    python ../../data_scripts/make_digits.py data --min-digits 1 --neural $neural_utterances \
      --real real/train.jsonl --real-copies $real_copies
  fi
fi
if run_stage 1; then
  echo "stage 1: training (exp/)"
  asr train config.yaml "${overrides[@]}"
fi
if run_stage 2; then
  echo "stage 2: evaluating exp/model.pt on data/test.jsonl (voices unseen in training); errors in exp/report.html"
  asr evaluate exp/model.pt data/test.jsonl --report exp/report.html --train-log exp/train_log.csv
fi
if run_stage 3; then
  if [ ! -f data/tune/dev.jsonl ]; then
    echo "stage 3: synthesizing $tune_utterances utterances of the dev voices into data/tune/ to tune the LM weights on"
    python ../../data_scripts/make_digits.py data/tune --train 0 --dev "$tune_utterances" --test 0
  fi
  echo "stage 3: bigram LM and lexicon from the training transcripts; tuning on data/tune/dev.jsonl -> exp/model_lm.pt"
  asr lm build data/train.jsonl exp/lm.arpa --order 2 --lexicon exp/lexicon.txt
  asr tune-lm exp/model.pt data/tune/dev.jsonl --lm exp/lm.arpa --lexicon exp/lexicon.txt \
    --lm-weights 0,0.5,1 --word-scores 0,1,2,3,4 --out exp/model_lm.pt
fi
if run_stage 4; then
  echo "stage 4: evaluating exp/model_lm.pt (lexicon beam search) on data/test.jsonl"
  asr evaluate exp/model_lm.pt data/test.jsonl --output exp/decode_test_lm.jsonl
fi
if run_stage 5 && [ -n "${REAL_DIGITS:-}" ]; then
  echo "stage 5: real voices: the digit utterances of ${REAL_DIGITS//:/, }"
  IFS=: read -r -a real_manifests <<< "$REAL_DIGITS"
  for i in "${!real_manifests[@]}"; do
    case ${real_manifests[$i]} in /*) ;; *) real_manifests[$i]=$caller/${real_manifests[$i]} ;; esac
  done
  python ../../benchmarks/real_digits.py exp/model.pt "${real_manifests[@]}"
fi
echo "done in $((SECONDS - start)) s"
