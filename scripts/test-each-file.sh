#!/usr/bin/env bash
# Runs every test file alone, one after the other, in a fresh pytest each: a file that only passes after another
# one (a session fixture it never asked for, state left behind) fails here. Prints each file's result and time,
# then the failures; exits 1 when any file failed (or collected no tests).
#   scripts/test-each-file.sh                      # every tests/**/test_*.py
#   scripts/test-each-file.sh tests/stub_api       # the files under a folder
set -uo pipefail

pytest="${PYTEST:-.venv/bin/pytest}"
roots=("$@")
[ ${#roots[@]} -eq 0 ] && roots=(tests)

mapfile -t files < <(git ls-files -- "${roots[@]}" | grep -E '(^|/)test_[^/]*\.py$' | sort)
[ ${#files[@]} -eq 0 ] && { echo "test-each-file: no test files under ${roots[*]}" >&2; exit 1; }

failed=()
started=$(date +%s)
for file in "${files[@]}"; do
  begin=$(date +%s)
  "$pytest" -q -p no:cacheprovider "$file" >/tmp/test-each-file.$$.log 2>&1
  rc=$?
  printf '%-70s %s %4ss\n' "$file" "$([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)")" "$(($(date +%s) - begin))"
  if [ $rc -ne 0 ]; then
    failed+=("$file")
    tail -n 30 /tmp/test-each-file.$$.log | sed 's/^/    /'
  fi
done
rm -f /tmp/test-each-file.$$.log
echo "test-each-file: ${#files[@]} files, ${#failed[@]} failed, $(($(date +%s) - started)) s"
for file in "${failed[@]}"; do
  echo "  FAILED $file"
done
[ ${#failed[@]} -eq 0 ]
