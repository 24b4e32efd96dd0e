#!/usr/bin/env bash
# The bash completion and the man page the build generated (tools/CliDocs.h) are the current
# binary's (regenerated and diffed), complete what `cnnc --help` lists (CLI11's own help is the
# oracle), and render: man -l without warnings from groff.
# Usage: tests/cli/completion_man.sh CNNC BUILD_DIR
set -euo pipefail
cnnc=$1
build=$2
completion=$build/share/bash-completion/completions/cnnc
manpage=$build/share/man/man1/cnnc.1
fail() { echo "FAIL: $*"; exit 1; }

diff <("$cnnc" --generate bash-completion) "$completion" || fail "$completion is stale"
diff <("$cnnc" --generate man) "$manpage" || fail "$manpage is stale"

# shellcheck disable=SC1090
source "$completion"
complete -p cnnc | grep -q -- "-F _cnnc" || fail "no 'complete -F _cnnc cnnc'"
# COMPREPLY for the words of a command line, the last being completed
reply() {
  COMP_WORDS=("$@")
  COMP_CWORD=$(($# - 1))
  COMPREPLY=()
  _cnnc
  printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '
}
[[ $(reply cnnc tr) == "train " ]] || fail "cnnc tr<TAB>: '$(reply cnnc tr)'"
[[ $(reply cnnc train m.cnn --train-s) == "--train-size --train-subset " ]] ||
  fail "cnnc train --train-s<TAB>: '$(reply cnnc train m.cnn --train-s)'"
[[ $(reply cnnc train m.cnn --train-subset "") == "first stratified " ]] ||
  fail "cnnc train --train-subset <TAB>: '$(reply cnnc train m.cnn --train-subset "")'"
[[ $(reply cnnc run m.cnn --precision f) == "f32 f64 " ]] || fail "cnnc run --precision f<TAB>"
[[ $(reply cnnc --ver) == "--version " ]] || fail "cnnc --ver<TAB>"

# every subcommand of `cnnc --help`, and every option of its own --help, completes
commands=$("$cnnc" --help | awk '/^Subcommands:/ {on = 1; next} on && NF {print $1}')
[[ -n $commands ]] || fail "no subcommands in cnnc --help"
[[ $(reply cnnc "" | tr ' ' '\n' | grep -v '^-' | grep -v '^$' | sort) == "$(sort <<<"$commands")" ]] ||
  fail "subcommands: completion '$(reply cnnc "")', --help '$commands'"
for c in $commands; do
  for o in $("$cnnc" "$c" --help | grep -oE '^ +(-[A-Za-z],)?--[a-z][a-z-]*' | grep -oE -- '--[a-z-]+'); do
    [[ " $(reply cnnc "$c" m "$o") " == *" $o "* ]] || fail "cnnc $c $o<TAB> does not complete"
    grep -q -- "\\\\fB$(sed 's/-/\\\\-/g' <<<"$o")\\\\fR" "$manpage" || fail "the man page lacks $c $o"
  done
done

# the page renders: groff's warnings are errors, man -l shows the sections
warnings=$(groff -man -ww -z "$manpage" 2>&1)
[[ -z $warnings ]] || fail "groff warns: $warnings"
if command -v man >/dev/null; then
  text=$(MANWIDTH=100 man -l "$manpage" 2>&1 | col -b)
  for s in NAME SYNOPSIS COMMANDS "cnnc train MODEL" "--train-subset {first|stratified}" "EXIT STATUS"; do
    grep -qF -- "$s" <<<"$text" || fail "man -l shows no '$s'"
  done
fi
echo "ok: completion for $(wc -w <<<"$commands") subcommands, man page renders"
