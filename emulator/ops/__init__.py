"""Operations endpoints outside ARM's namespace: inventory, request log, reset, faults, throttling."""
