"""Rate limits: plans (tiers), and the one place where requests, tokens and documents are counted (Redis)."""
