"""Microsoft.Network: virtual networks and subnets, NSGs, public IP addresses, network interfaces."""
