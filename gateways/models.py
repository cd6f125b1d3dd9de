"""Models of the gateways app."""
