# A pool of test jobs for bin/test (sourced, not run). At most $PGOFFSITE_TEST_JOBS (default:
# the number of CPUs) run at once, in the order given, so the longest go first and the short
# ones fill in behind them. A job's output is held until it ends and then printed whole, with
# how long it took, so jobs running side by side never interleave.

# jobs_run COMMAND...: runs each COMMAND (a shell command line) as a job; after the last, prints
# a table of the times and the failed commands, and returns non-zero if any failed.
jobs_run() {
  local slots=${PGOFFSITE_TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
  local dir started=$SECONDS next=0 i pid status
  local -a cmds=("$@") took=() failed=()
  local -A running=() # pid → job index
  local -a begun=()
  dir=$(mktemp -d) || return 1
  while [ "$next" -lt ${#cmds[@]} ] || [ ${#running[@]} -gt 0 ]; do
    while [ "$next" -lt ${#cmds[@]} ] && [ ${#running[@]} -lt "$slots" ]; do
      bash -c "${cmds[$next]}" >"$dir/$next.out" 2>&1 &
      running[$!]=$next begun[$next]=$SECONDS
      next=$((next + 1))
    done
    status=0
    wait -n -p pid "${!running[@]}" || status=$?
    i=${running[$pid]}
    unset "running[$pid]"
    took[$i]=$((SECONDS - begun[$i]))
    if [ "$status" -eq 0 ]; then
      printf '\n==> ok     %5d s  %s\n' "${took[$i]}" "${cmds[$i]}"
    else
      printf '\n==> FAILED %5d s  %s\n' "${took[$i]}" "${cmds[$i]}"
      failed+=("${cmds[$i]}")
    fi
    cat "$dir/$i.out"
  done
  rm -rf "$dir"
  printf '\n==> times: %d s in all, %d jobs at once\n' $((SECONDS - started)) "$slots"
  for i in "${!cmds[@]}"; do printf '%6d s  %s\n' "${took[$i]}" "${cmds[$i]}"; done | sort -rn
  if [ ${#failed[@]} -gt 0 ]; then
    printf '\n==> failed:\n'
    printf '  %s\n' "${failed[@]}"
    return 1
  fi
}
