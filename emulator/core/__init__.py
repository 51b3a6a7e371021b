"""Building blocks shared by every emulated service: ids, errors, routing, LROs, the store."""
