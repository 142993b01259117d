"""spec_tests: a Bayeux 1.0 conformance suite that runs against any server URL.

python -m spec_tests http://127.0.0.1:8080/cometd --transport long-polling --report out.md
"""
