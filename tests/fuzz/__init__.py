"""Property-based fuzzing in the suite: generated command messages through the decoder and
the decider, and generated route messages through their decoder (issue 14)."""
