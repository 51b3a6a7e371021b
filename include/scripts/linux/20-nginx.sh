#!/bin/bash
# A web tier image: nginx installed and enabled, serving the factory's marker page.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq nginx
systemctl enable nginx
printf 'golden image %s\n' "${IMAGE_NAME:-unknown}" > /var/www/html/index.html
