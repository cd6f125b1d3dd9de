"""The ledger is append-only in the database too: UPDATE and DELETE on billing_ledgerentry are refused.

Operators who must remove rows anyway (deleting an organization) do it inside one transaction after
`SET LOCAL aivax.ledger_maintenance = 'on'`; every such change then shows up as drift in `manage.py reconcile`
unless the balance is corrected in the same transaction.
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION billing_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('aivax.ledger_maintenance', true) = 'on' THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'billing_ledgerentry is append-only: % refused (record a reversal instead)', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER billing_ledger_append_only
    BEFORE UPDATE OR DELETE ON billing_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION billing_ledger_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS billing_ledger_append_only ON billing_ledgerentry;
DROP FUNCTION IF EXISTS billing_ledger_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
