"""Engines: what the processes of one deployment share (the contract is bayeux/core/engine.py).
The in-process default is no engine at all; `redis` runs a deployment on Redis."""
