"""The metering gateway (ADR 0023): one loopback HTTP server the daemon runs, through which every agent's
model traffic goes. It knows each agent by a token of its own, swaps in the real key, relays the answer
unchanged (streams included), reads and prices the usage of every answer, and refuses an agent whose
budget is spent. It is the only home of swarmd's HTTP code (aiohttp, imported by the daemon alone)."""
