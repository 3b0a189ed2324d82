-- Second round of source changes (PostgreSQL): an account changes product
-- and one is closed, an entity is renamed, one transaction is corrected and
-- a few are booked now, before the CRM changes have been extracted (so they
-- still resolve to the customers' first versions).
UPDATE core.accounts SET product = 'fund', updated_at = now() WHERE account_id = 1001;
UPDATE core.accounts SET status = 'closed', updated_at = now() WHERE account_id = 1002;
UPDATE core.entities SET name = name || ' (renamed)', updated_at = now() WHERE entity_id = 'de-fund-a';
UPDATE core.transactions SET amount = amount + 100, updated_at = now() WHERE txn_id = 1;
INSERT INTO core.transactions
SELECT 100000 + a.account_id, a.account_id, a.customer_id, a.entity_id, a.country, 'buy',
       500.00, a.currency, now(), now()
FROM core.accounts a WHERE a.customer_id IN (1, 2, 3);
