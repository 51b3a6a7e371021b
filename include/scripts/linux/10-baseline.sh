#!/bin/bash
# Baseline hardening for every Linux golden image: patched packages, a login banner, no root SSH.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get upgrade -y -qq
install -d -m 0755 /etc/golden-image
printf 'Authorised use only. Built by the golden-image factory.\n' > /etc/issue.net
if ! grep -q '^PermitRootLogin no' /etc/ssh/sshd_config; then
  printf '\nPermitRootLogin no\nBanner /etc/issue.net\n' >> /etc/ssh/sshd_config
fi
printf 'image=%s\nbuilt-by=golden-image-factory\n' "${IMAGE_NAME:-unknown}" > /etc/golden-image/release
