"""Billing: prices per SKU, usage lines, prepaid balances with reservations, an append-only ledger, reviews.

The contract for inference and knowledge (each also `a<name>` for async code):
    pricing.price_chat_completion / price_platform_sku / estimate_max_cost  -> UsageLine(s), Decimal
    services.reserve -> settle (exactly once per request id) | release;  services.charge (no reservation)
Staff: /staff/billing/ (billing.staff_urls), the Django admin, `manage.py reconcile` and `manage.py grant_credit`.
"""
