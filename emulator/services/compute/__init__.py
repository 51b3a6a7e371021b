"""Microsoft.Compute: virtual machines backed by guest runtimes, managed images, OS disks, the Marketplace."""
