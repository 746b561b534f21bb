#!/bin/bash
# integration_install.sh BINDIR — `make install` with DESTDIR lays out the
# binaries, the systemd unit, the configuration, the man pages, the shell
# completions and the logrotate snippet; the unit passes `systemd-analyze
# verify`; the installed configuration is valid, lists every setting (all
# uncommented it is the defaults but for the state directory) and is never
# overwritten; the man pages render without warnings; the completions
# complete (bash run for real, zsh and fish checked by their shells when
# installed).
set -u
. "$(dirname "$0")/lib.sh"
bin=$1
build=$(dirname "$bin")
tmp=$(mktemp -d /tmp/de-it-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
hermetic "$tmp/home"
d=$tmp/root
prefix=/usr/local

DESTDIR=$d cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1
rc=$?
check "cmake --install with DESTDIR (rc=$rc)" test "$rc" = 0
for f in "$prefix/sbin/daemoneye-agent" "$prefix/sbin/procmond" "$prefix/bin/daemoneye-cli" \
	"$prefix/lib/systemd/system/daemoneye.service" /etc/daemoneye/config.yaml \
	/etc/logrotate.d/daemoneye "$prefix/share/man/man1/daemoneye-cli.1" \
	"$prefix/share/man/man5/daemoneye.conf.5" "$prefix/share/man/man8/daemoneye-agent.8" \
	"$prefix/share/man/man8/procmond.8" "$prefix/share/bash-completion/completions/daemoneye-cli" \
	"$prefix/share/zsh/vendor-completions/_daemoneye-cli" \
	"$prefix/share/fish/vendor_completions.d/daemoneye-cli.fish"; do
	check "installed: $f" test -s "$d$f"
done
check "installed: /etc/daemoneye/rules.d" test -d "$d/etc/daemoneye/rules.d"
check "procmond beside the agent (the agent starts the one next to it)" \
	test -x "$d$prefix/sbin/procmond" -a -x "$d$prefix/sbin/daemoneye-agent"

# ---- the unit ------------------------------------------------------------------
unit=$d$prefix/lib/systemd/system/daemoneye.service
check "the unit starts the installed agent" grep -q "^ExecStart=$prefix/sbin/daemoneye-agent$" "$unit"
# verify it against the binaries just installed (their path under DESTDIR)
sed "s|=$prefix/sbin/|=$d$prefix/sbin/|" "$unit" >"$tmp/daemoneye.service"
systemd-analyze verify --man=no "$tmp/daemoneye.service" >"$tmp/verify" 2>&1
rc=$?
check "systemd-analyze verify passes (rc=$rc)" test "$rc" = 0 -a ! -s "$tmp/verify"
sed 's/^/#   /' "$tmp/verify"
missing=0
for k in Type=notify NoNewPrivileges=yes ProtectSystem=strict ProtectHome=read-only \
	PrivateTmp=yes StateDirectory=daemoneye LogsDirectory=daemoneye KillMode=mixed \
	'RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6' 'SystemCallFilter=@system-service' \
	MemoryMax= WatchdogSec= 'CapabilityBoundingSet=CAP_SETUID'; do
	grep -q "^$k" "$unit" || { echo "# missing: $k"; missing=$((missing + 1)); }
done
check "the unit's hardening settings are there ($missing missing)" test "$missing" = 0

# the unit's CapabilityBoundingSet is what the parent keeps plus CAP_CHOWN,
# which it uses at start only (src/agent/parent_caps.h): compared with a
# running parent's bounding set, so that neither can change alone
unitcaps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit" | tr ' ' '\n' | tr 'A-Z' 'a-z' | sort | xargs)
check "the unit names a bounding set ($unitcaps)" test -n "$unitcaps"
if [ "$(id -u)" = 0 ]; then
	chmod 755 "$tmp" # the worker (nobody) reaches its state directory
	mkdir -m 755 "$tmp/run"
	"$bin/daemoneye-agent" --set app.state_dir="$tmp/run/state" --set app.scan_interval_ms=60000 \
		--set detection.rules_dirs=[] >/dev/null 2>"$tmp/agent.err" &
	agent=$!
	check "the agent starts as root" wait_for 60 grep -q "started: worker pid" "$tmp/agent.err" ||
		sed 's/^/#   /' "$tmp/agent.err"
	bnd=$(awk '/^CapBnd:/ {print $2}' "/proc/$agent/status")
	parentcaps=$( (capsh --decode="$bnd" | sed 's/^[^=]*=//' | tr ',' '\n'; echo cap_chown) | sort | xargs)
	check "the unit's bounding set is the parent's (+ cap_chown): unit [$unitcaps], parent [$parentcaps]" \
		test "$unitcaps" = "$parentcaps"
	stop "$agent"
else
	ok "the unit's bounding set is the parent's # SKIP not root"
fi

# ---- the configuration ------------------------------------------------------------
conf=$d/etc/daemoneye/config.yaml
check "the installed configuration is valid as it is" bash -c "'$bin/daemoneye-agent' --check-config -c '$conf' >/dev/null"
check "  and sets the state directory the CLI shares" grep -q "^  state_dir: /var/lib/daemoneye$" "$conf"
# uncomment every setting: exactly the defaults, the state directory aside
sed 's/^#\([a-z]\|  \)/\1/' "$conf" >"$tmp/all.yaml"
"$bin/daemoneye-cli" -c "$tmp/all.yaml" config show --format json >"$tmp/all.json" 2>"$tmp/e"
rc=$?
check "  every setting uncommented is still valid (rc=$rc)" test "$rc" = 0
"$bin/daemoneye-cli" --set app.state_dir=/var/lib/daemoneye config show --format json >"$tmp/def.json"
check "  and is the defaults: every key is listed" python3 -c '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
sys.exit(0 if a == b else 1)' "$tmp/all.json" "$tmp/def.json"
echo "# edited" >>"$conf"
DESTDIR=$d cmake --install "$build" --prefix "$prefix" >"$tmp/install2.log" 2>&1
check "a second install keeps the operator's configuration" grep -q "^# edited$" "$conf"
check "  and says so" grep -q "Keeping: $d/etc/daemoneye/config.yaml" "$tmp/install2.log"

# ---- man pages -----------------------------------------------------------------------
for m in "$d$prefix"/share/man/man*/*; do
	out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$m" 2>&1 >/dev/null)
	check "man $(basename "$m") renders without warnings" test -z "$out"
done
# every top-level section of the embedded defaults (daemoneye-cli config show)
sections=$("$bin/daemoneye-cli" config show 2>/dev/null | sed -n 's/^\([a-z_]*\):.*/\1/p')
check "config show lists the sections ($(echo $sections))" test "$(echo "$sections" | wc -w)" -ge 10
for s in $sections; do
	check "daemoneye.conf(5) documents section $s" grep -q "^.SH $s\$" "$d$prefix/share/man/man5/daemoneye.conf.5"
done

# ---- completions -----------------------------------------------------------------------
complete_bash() {
	# complete_bash WORD...: what bash completes for the last word
	bash -c '
		source "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_daemoneye_cli
		printf "%s\n" "${COMPREPLY[@]}"' _ "$d$prefix/share/bash-completion/completions/daemoneye-cli" "$@"
}
check "bash: commands" bash -c "$(declare -f complete_bash); d=$d prefix=$prefix; complete_bash daemoneye-cli he | grep -qx health"
check "bash: every command of the table" bash -c "$(declare -f complete_bash); d=$d prefix=$prefix; [ \$(complete_bash daemoneye-cli '' | grep -c '^[a-z]') -ge 6 ]"
check "bash: subcommands" bash -c "$(declare -f complete_bash); d=$d prefix=$prefix; complete_bash daemoneye-cli rules en | grep -qx enable"
check "bash: option values" bash -c "$(declare -f complete_bash); d=$d prefix=$prefix; [ \"\$(complete_bash daemoneye-cli health --format '' | sort | tr '\n' ' ')\" = 'json table ' ]"
check "bash: after a global option" bash -c "$(declare -f complete_bash); d=$d prefix=$prefix; complete_bash daemoneye-cli --set a=b query --f | grep -qx -- --format"
if command -v zsh >/dev/null; then
	check "zsh: the completion parses" zsh -n "$d$prefix/share/zsh/vendor-completions/_daemoneye-cli"
else
	echo "ok - # SKIP zsh not installed"
fi
if command -v fish >/dev/null; then
	check "fish: the completion parses" fish --no-execute "$d$prefix/share/fish/vendor_completions.d/daemoneye-cli.fish"
	out=$(HOME=$tmp/home fish -c "source '$d$prefix/share/fish/vendor_completions.d/daemoneye-cli.fish'; complete -C 'daemoneye-cli rules en'" 2>&1)
	check "fish: subcommands ($out)" grep -q "^enable" <<<"$out"
else
	echo "ok - # SKIP fish not installed"
fi
check "the completion command is hidden from --help" bash -c "! '$bin/daemoneye-cli' --help | grep -q completion"
"$bin/daemoneye-cli" completion tcsh >/dev/null 2>&1
rc=$?
check "completion for an unknown shell: 64 (rc=$rc)" test "$rc" = 64

# ---- logrotate ------------------------------------------------------------------------------
if command -v logrotate >/dev/null; then
	logrotate -d -s "$tmp/lr.state" "$d/etc/logrotate.d/daemoneye" >"$tmp/lr" 2>&1
	rc=$?
	check "logrotate accepts the snippet (rc=$rc)" bash -c "test $rc = 0 && ! grep -qi 'error' '$tmp/lr' && grep -q 'rotating pattern: /var/log/daemoneye/\*.log' '$tmp/lr'"
else
	check "the logrotate snippet rotates the log directory by copytruncate" \
		grep -q "copytruncate" "$d/etc/logrotate.d/daemoneye"
fi

echo "integration_install: $fails failed"
[ "$fails" = 0 ]
