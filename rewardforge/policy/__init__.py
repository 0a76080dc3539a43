"""Policy training through TRL: SFT, DPO, and GRPO/RLOO against a reward model."""
