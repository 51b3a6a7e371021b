"""The simulated Linux guest's shell, without any server: parsing, bash semantics and the programs."""

from __future__ import annotations

import pytest

from emulator.guests.simulated import catalog
from emulator.guests.simulated.linux import LinuxSystem
from emulator.guests.simulated.session import FakeHooks, Fault, PowerOff
from emulator.guests.simulated.shparse import Incomplete, ParseError, parse
from tests.emulator.guests.simulated.conftest import run


def test_quoting_expansion_and_substitution(debian: LinuxSystem, hooks: FakeHooks):
    code, out, _ = run(debian, hooks, """x=5; name='a b'; echo "$x" '$x' ${y:-dflt} $((x * 2)) "${name}" $(echo sub)""")
    assert (code, out) == (0, "5 $x dflt 10 a b sub\n")
    _, out, _ = run(debian, hooks, 'v="a  b"; printf "%s|" $v; echo; printf "%s|" "$v"; echo')
    assert out == "a|b|\na  b|\n"
    _, out, _ = run(debian, hooks, "f=/etc/ssh/sshd_config.d/50-cloud-init.conf; echo ${f##*/} ${f%.conf} ${#f}")
    assert out == "50-cloud-init.conf /etc/ssh/sshd_config.d/50-cloud-init 41\n"


def test_and_or_semicolon_exit_status(debian: LinuxSystem, hooks: FakeHooks):
    assert run(debian, hooks, "false && echo no; echo $?")[1] == "1\n"
    assert run(debian, hooks, "false || echo rescued")[1] == "rescued\n"
    assert run(debian, hooks, "true; exit 7; echo unreachable") == (7, "", "")
    assert run(debian, hooks, "! false")[0] == 0


def test_set_e_stops_at_the_first_failure_but_not_in_conditions(debian: LinuxSystem, hooks: FakeHooks):
    code, out, _ = run(debian, hooks, "set -e\nif false; then echo no; fi\nfalse || true\nfalse && true\necho alive\n"
                                      "false\necho dead\n")
    assert (code, out) == (1, "alive\n")
    code, out, _ = run(debian, hooks, "set -euo pipefail\nfalse | true\necho dead\n")
    assert (code, out) == (1, "")


def test_unknown_command_is_127_and_names_the_simulated_guest(debian: LinuxSystem, hooks: FakeHooks):
    code, _, err = run(debian, hooks, "frobnicate --now")
    assert code == 127
    assert "frobnicate: command not found (simulated guest)" in err
    # a package's program only exists once the package is installed
    assert run(debian, hooks, "nginx -v")[0] == 127


def test_control_flow_functions_case_heredoc(debian: LinuxSystem, hooks: FakeHooks):
    script = """
log() { echo "[$1] $2"; }
for pkg in curl sudo; do
  if dpkg-query -W "$pkg" >/dev/null 2>&1; then log ok "$pkg"; else log missing "$pkg"; fi
done
n=0
while [ $n -lt 3 ]; do n=$((n + 1)); done
case "$n" in 3) echo three;; *) echo other;; esac
cat <<EOF | tr a-z A-Z
hello $USER
EOF
cat <<'EOF'
no $expansion here
EOF
"""
    code, out, _ = run(debian, hooks, script)
    assert code == 0
    assert out == "[ok] curl\n[ok] sudo\nthree\nHELLO AZUREUSER\nno $expansion here\n"


def test_parse_errors_and_incomplete_input():
    with pytest.raises(Incomplete):
        parse("if true; then echo x")
    with pytest.raises(Incomplete):
        parse("echo 'unterminated")
    with pytest.raises(ParseError):
        parse("echo ) oops")


def test_syntax_error_exits_2(debian: LinuxSystem, hooks: FakeHooks):
    code, _, err = run(debian, hooks, "fi")
    assert code == 2 and "syntax error" in err


def test_identity_programs(debian: LinuxSystem, hooks: FakeHooks):
    _, out, _ = run(debian, hooks, "hostname; whoami; id -un; cat /etc/hostname")
    assert out == "buildvm\nazureuser\nazureuser\nbuildvm\n"
    _, out, _ = run(debian, hooks, "id azureuser; getent passwd azureuser")
    assert out.startswith("uid=1000(azureuser) gid=1000(azureuser) groups=1000(azureuser),")
    assert out.endswith("azureuser:x:1000:1000::/home/azureuser:/bin/bash\n")
    code, _, err = run(debian, hooks, "id nobodyhere")
    assert code == 1 and "no such user" in err
    assert run(debian, hooks, "getent passwd nobodyhere")[0] == 2


def test_uname_and_os_release_say_simulated(debian: LinuxSystem, hooks: FakeHooks):
    _, out, _ = run(debian, hooks, "uname -a; uname -r; cat /etc/os-release")
    lines = out.splitlines()
    assert lines[0].startswith("Linux buildvm 6.1.0-18-cloud-amd64 ") and lines[0].endswith("(simulated)")
    assert lines[1] == catalog.KERNEL
    assert "simulated guest" in lines[2]
    assert 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"' in out


def test_files_permissions_and_redirections(debian: LinuxSystem, hooks: FakeHooks):
    code, _, err = run(debian, hooks, "echo hi > /etc/motd")
    assert code == 1 and "/etc/motd: Permission denied" in err
    # the redirection belongs to the calling (unprivileged) shell, as in real life
    assert run(debian, hooks, "sudo echo hi > /etc/motd")[0] == 1
    code, out, _ = run(debian, hooks, "echo hi | sudo tee /etc/motd >/dev/null && sudo sh -c 'echo more >> /etc/motd' "
                                      "&& cat /etc/motd")
    assert (code, out) == (0, "hi\nmore\n")
    code, out, _ = run(debian, hooks, "mkdir -p ~/a/b && touch ~/a/b/f && test -f ~/a/b/f && [ -d ~/a ] && echo yes; "
                                      "rm -f ~/a/b/f; test -e ~/a/b/f || echo gone; rm -f /nonexistent; echo $?")
    assert out == "yes\ngone\n0\n"
    code, _, err = run(debian, hooks, "cat /var/lib/waagent/ovf-env.xml")
    assert code == 1 and "Permission denied" in err
    code, out, _ = run(debian, hooks, "echo out; echo err >&2", user="root")
    assert out == "out\n"
    _, out, _ = run(debian, hooks, "(echo a; echo b >&2) 2>&1 | wc -l")
    assert out.strip() == "2"


def test_sudo_needs_a_sudoers_rule(debian: LinuxSystem, hooks: FakeHooks):
    debian.add_user("intern")
    code, _, err = run(debian, hooks, "sudo true", user="intern")
    assert code == 1 and "intern is not in the sudoers file." in err
    debian.add_user("ops", groups=["sudo"])  # %sudo needs a password, which a script cannot type
    code, _, err = run(debian, hooks, "sudo true", user="ops")
    assert code == 1 and "a password is required" in err
    assert run(debian, hooks, "sudo id -u")[1] == "0\n"


def test_scripts_from_stdin_and_files(debian: LinuxSystem, hooks: FakeHooks):
    code, out, _ = run(debian, hooks, "sudo bash -s", stdin="set -e\nwhoami\nexit 4\necho no\n")
    assert (code, out) == (4, "root\n")
    code, out, _ = run(debian, hooks, "printf '#!/bin/bash\\necho from file $1\\n' > /tmp/s.sh && chmod +x /tmp/s.sh && "
                                      "/tmp/s.sh arg && bash /tmp/s.sh two")
    assert (code, out) == (0, "from file arg\nfrom file two\n")
    code, _, err = run(debian, hooks, "printf 'echo x\\n' > /tmp/n.sh && /tmp/n.sh")
    assert code == 126 and "Permission denied" in err


def test_apt_install_and_dpkg_query(debian: LinuxSystem, hooks: FakeHooks):
    code, _, err = run(debian, hooks, "apt-get install -y nginx")
    assert code == 100 and "are you root?" in err
    code, _, err = run(debian, hooks, "sudo apt-get install -y no-such-package")
    assert code == 100 and "E: Unable to locate package no-such-package" in err
    code, out, _ = run(debian, hooks, "sudo apt-get update && sudo apt-get install -y nginx jq")
    assert code == 0 and "The following NEW packages will be installed:\n  jq libjq1 libonig5 nginx nginx-common" in out
    _, out, _ = run(debian, hooks, "dpkg-query -W -f='${Package} ${Version}\\n' nginx jq")
    assert out == (f"nginx {catalog.archive_version('nginx', 12)}\n"
                   f"jq {catalog.archive_version('jq', 12)}\n")
    assert run(debian, hooks, "systemctl is-active nginx; curl -s http://localhost | grep -c '<h1>Welcome to nginx'")[1] \
        == "active\n1\n"
    code, _, err = run(debian, hooks, "dpkg-query -W nosuch")
    assert code == 1 and "no packages found matching nosuch" in err


def test_apt_without_yes_aborts_when_dependencies_come_along(debian: LinuxSystem, hooks: FakeHooks):
    code, out, _ = run(debian, hooks, "sudo apt-get install git", user="azureuser")
    assert code == 1 and out.endswith("Do you want to continue? [Y/n] Abort.\n")
    assert "git" not in debian.packages


def test_upgrade_pulls_the_month_s_updates_deterministically(hooks: FakeHooks):
    from emulator.guests.simulated import disk

    old = LinuxSystem(disk.base_disk("Linux", "debian-12", "0.20240101.1")["os"])
    built = old.os["built_serial"]
    later = FakeHooks(serial=built + 6)
    # without apt-get update the package lists are the image's: nothing to upgrade
    assert "0 upgraded" in run(old, later, "apt-get -y upgrade", user="root")[1]
    code, _, _ = run(old, later, "apt-get update && apt-get -y upgrade", user="root")
    assert code == 0
    expected = {n: catalog.archive_version(n, built + 6) for n in old.packages}
    assert old.packages == expected
    assert any(catalog.archive_version(n, built) != v for n, v in expected.items())


def test_simulated_upgrades_and_upgradable_list_show_the_month_s_updates_without_changing_anything():
    from emulator.guests.simulated import disk

    old = LinuxSystem(disk.base_disk("Linux", "debian-12", "0.20240101.1")["os"])
    built = old.os["built_serial"]
    later = FakeHooks(serial=built + 6)
    before = dict(old.packages)
    assert run(old, later, "apt-get update", user="root")[0] == 0
    pending = old.upgradable(built + 6)
    assert pending  # six months of updates
    code, out, _ = run(old, later, "apt-get -s dist-upgrade")  # a simulation needs no root
    assert code == 0 and out.startswith("NOTE: This is only a simulation!")
    inst = [line for line in out.splitlines() if line.startswith("Inst ")]
    assert inst == [f"Inst {n} [{o}] ({v} Debian-Security:12/stable-security [amd64])" for n, o, v in pending]
    assert sum(line.startswith("Conf ") for line in out.splitlines()) == len(pending)
    _, listed, err = run(old, later, "apt list --upgradable")
    assert listed.splitlines() == [f"{n}/bookworm-security {v} amd64 [upgradable from: {o}]" for n, o, v in pending]
    assert "does not have a stable CLI interface" in err
    assert old.packages == before  # simulating and listing install nothing
    assert run(old, later, "apt-get -y upgrade", user="root")[0] == 0
    code, out, _ = run(old, later, "apt-get -s dist-upgrade", user="root")
    assert code == 0 and "0 upgraded" in out and "Inst " not in out and "NOTE" not in out
    assert run(old, later, "apt list --upgradable")[1] == ""


def test_systemctl_and_cloud_init(debian: LinuxSystem, hooks: FakeHooks):
    _, out, _ = run(debian, hooks, "systemctl is-active ssh; systemctl is-enabled ssh; systemctl is-active nosuch; "
                                   "echo $?; cloud-init status --wait")
    assert out == "active\nenabled\ninactive\n3\nstatus: done\n"
    code, _, err = run(debian, hooks, "systemctl disable ssh")
    assert code == 1 and "Interactive authentication required" in err
    assert run(debian, hooks, "sudo systemctl disable --now cron && systemctl is-active cron")[1] == "inactive\n"
    assert debian.services["cron"] == {"enabled": False, "active": False}
    code, _, _ = run(debian, hooks, "sudo cloud-init clean --logs && sudo truncate -s 0 /etc/machine-id")
    assert code == 0
    assert debian.cached_instance_id() is None
    assert debian.machine_id() == ""
    assert not debian.exists("/var/log/cloud-init.log")


def test_shutdown_needs_root_and_powers_off(debian: LinuxSystem, hooks: FakeHooks):
    code, _, err = run(debian, hooks, "shutdown -h now")
    assert code == 1 and "Interactive authentication required" in err
    assert hooks.actions == []
    with pytest.raises(PowerOff):
        run(debian, hooks, "sudo shutdown -h now; echo never")
    assert hooks.actions == ["poweroff"]
    with pytest.raises(PowerOff):
        run(debian, hooks, "sudo systemctl reboot")
    assert hooks.actions == ["poweroff", "reboot"]


def test_faults_fail_matching_commands_inside_scripts(debian: LinuxSystem):
    hooks = FakeHooks(faults=[Fault("apt-get install*", exit_code=100, stderr="E: mirror unreachable", count=1)])
    code, out, err = run(debian, hooks, "set -e\necho start\napt-get install -y htop\necho not reached\n",
                         user="root")
    assert (code, out) == (100, "start\n")
    assert "E: mirror unreachable" in err
    assert "htop" not in debian.packages
    assert run(debian, hooks, "apt-get install -y htop", user="root")[0] == 0  # count=1: it fired once


def test_sleep_is_scaled(debian: LinuxSystem):
    import time

    class Slow(FakeHooks):
        def duration(self, azure_seconds: float) -> float:
            return azure_seconds / 100

    started = time.monotonic()
    assert run(debian, Slow(), "sleep 20")[0] == 0
    assert 0.15 < time.monotonic() - started < 2


def test_install_d_creates_directories_with_a_mode(debian: LinuxSystem, hooks: FakeHooks):
    code, _, err = run(debian, hooks, "install -d -m 0750 /etc/golden-image/conf.d", user="root")
    assert (code, err) == (0, "")
    assert debian.is_dir("/etc/golden-image/conf.d")
    assert debian.dirs["/etc/golden-image/conf.d"]["mode"] == 0o750
