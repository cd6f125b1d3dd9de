"""Stock-keeping units: what a ledger line is for. Prices per SKU live in `billing.Price`."""

CHAT_IN = "inference.chat_completions.in"
CHAT_IN_CACHED = "inference.chat_completions.in.cached"
CHAT_OUT = "inference.chat_completions.out"
# Optional: when priced, reasoning tokens (a part of the completion tokens) are billed here instead of at `.out`.
CHAT_OUT_REASONING = "inference.chat_completions.out.reasoning"
QUERY_REWRITE_IN = "inference.query_rewrite.in"
QUERY_REWRITE_OUT = "inference.query_rewrite.out"
# The model router's rating round (gateways/routing), priced per classifier model like chat tokens.
ROUTING_IN = "inference.resolving.routing_complexity.in"
ROUTING_OUT = "inference.resolving.routing_complexity.out"
KNOWLEDGE_EMBEDDING = "knowledge.embedding"
KNOWLEDGE_SEARCH = "knowledge.search"
# Not priced: the SKU of credit rows (and of their reversals), so usage reports can leave them out.
CREDIT = "credit.grant"

CHAT_PREFIX = "inference.chat_completions"
QUERY_REWRITE_PREFIX = "inference.query_rewrite"
ROUTING_PREFIX = "inference.resolving.routing_complexity"

PRICED_SKUS = (
    CHAT_IN,
    CHAT_IN_CACHED,
    CHAT_OUT,
    CHAT_OUT_REASONING,
    QUERY_REWRITE_IN,
    QUERY_REWRITE_OUT,
    ROUTING_IN,
    ROUTING_OUT,
    KNOWLEDGE_EMBEDDING,
    KNOWLEDGE_SEARCH,
)
PLATFORM_SKUS = (KNOWLEDGE_EMBEDDING, KNOWLEDGE_SEARCH)
