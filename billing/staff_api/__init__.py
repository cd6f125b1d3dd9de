"""The staff REST API at /api/staff/ (Django REST framework): what billing staff see on /staff/billing/, for
scripts (token authentication) and the browser (sessions, DRF's browsable API), with an OpenAPI schema.

It reads through billing.selectors and billing.statements and writes through billing.services, the same
functions behind the staff pages: no query of its own beyond filtering what a selector returns.
"""
