-- Third round (PostgreSQL): transactions booked after the CRM changes were
-- extracted; in gold they resolve to the customers' new SCD2 versions.
INSERT INTO core.transactions
SELECT 200000 + a.account_id, a.account_id, a.customer_id, a.entity_id, a.country, 'sell',
       250.00, a.currency, now(), now()
FROM core.accounts a WHERE a.customer_id IN (1, 2, 3);
