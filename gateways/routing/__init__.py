"""The model router: a gateway that routes has an ordered list of candidate models, each serving a band of
complexity (1-10), and a classifier model that rates the conversation's last turn. ``classify.py`` is the pure
part (prompt, parsing, band choice); ``service.py`` runs the rating round (held and billed as
``inference.resolving.routing_complexity``) and falls back to the gateway's own model on any failure."""
