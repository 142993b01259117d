"""Mutation testing of the conformance suite: realistic single-line bugs put into this project's
server one at a time, and the suite run against each. A bug the suite does not notice is a rule
missing. Run with `python -m spec_tests.mutation` (see its --help)."""
