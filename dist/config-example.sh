#!/bin/sh
# config-example.sh DEFAULTS OUT STATE_DIR — the commented
# /etc/daemoneye/config.yaml, made from the embedded defaults so that it
# lists every setting with its comment and never drifts from them.  Every
# setting is commented out, except app.state_dir, set to STATE_DIR so that
# the service and every operator's daemoneye-cli agree on where the stores
# are.
set -eu
{
	cat <<'HEAD'
# /etc/daemoneye/config.yaml — daemoneye's configuration; see daemoneye.conf(5).
#
# Every setting is listed below with its default, commented out: uncomment a
# section line and the keys you change.  Check the file with
# `daemoneye-agent --check-config` and apply it with `systemctl reload
# daemoneye` (a bad file is refused and the service keeps running on the old
# one; `daemoneye-cli health` says why).  Keys not listed are errors.

HEAD
	awk -v state="$3" '
		BEGIN { skip = 1 }
		skip && (/^#/ || /^$/) { next }    # the embedded file'"'"'s own header
		{ skip = 0 }
		/^[a-z_]+:$/ { section = $0; print (section == "app:" ? "" : "#") $0; next }
		section == "app:" && /^  state_dir: null$/ { print "  state_dir: " state; next }
		/^ *#/ || /^$/ { print; next }
		{ print "#" $0 }
	' "$1"
} >"$2.tmp"
mv "$2.tmp" "$2"
