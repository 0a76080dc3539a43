"""Answers written by a policy and judged by a reward model: best-of-N, the verifier, and POLAR
policy-pool data."""
