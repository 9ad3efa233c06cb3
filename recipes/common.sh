# Sourced by the recipes' run.sh: which stages to run.
# Set stage and stop_stage (the defaults) before the option loop; in it, `stage_option "$1" "${2:-}"`
# takes --stage N and --stop-stage N (then shift 2); run_stage N says whether stage N runs.

stage_option() {
  case "$1" in
    --stage) stage=$2 ;;
    --stop-stage) stop_stage=$2 ;;
    *) return 1 ;;
  esac
}

run_stage() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
