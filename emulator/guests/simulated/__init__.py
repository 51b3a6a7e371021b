"""Simulated guests: in-process models of Debian and Windows Server VMs (not real machines).

Fast enough for scale and fault tests, and the local Azure's only Windows. Linux guests serve
real SSH/SFTP, Windows guests real WinRM; both interpret the subset of shell / PowerShell that
image builds use, and say "simulated" where a user would look (SSH version string, ``uname -a``,
/etc/os-release, error texts, logs). See README.md here for what is modelled.

Modules: ``disk`` (descriptors, Marketplace base images), ``catalog`` (package archive by month),
``linux`` / ``windows`` (pure system state: cloud-init, waagent, sysprep), ``shparse`` / ``shell``
/ ``commands`` (bash subset), ``psparse`` / ``winshell`` / ``cmdlets`` (PowerShell and cmd.exe),
``sshd`` / ``winrm`` / ``ntlm`` (the listeners), ``runtime`` (the GuestRuntime, lifecycle hook),
``urls`` / ``responses`` (``/_emulator/guests``).
"""
