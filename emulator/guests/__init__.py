"""Guest runtimes: what runs behind a VM resource (simulated guests now, QEMU guests later)."""
