"""Real Linux guests under QEMU: Debian base images built from Debian packages, and the machines booted from them."""
