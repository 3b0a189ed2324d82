-- Second round of source changes (MariaDB CRM, no timestamps): two risk
-- re-ratings, a segment change, an e-mail change and a new customer.
USE crm;
UPDATE customers SET risk_score = risk_score % 5 + 1 WHERE customer_id IN (1, 2);
UPDATE customers SET segment = IF(segment = 'private', 'institutional', 'private') WHERE customer_id = 3;
UPDATE customers SET email = 'new.address3@example.com' WHERE customer_id = 3;
INSERT INTO customers VALUES (41, 'Nora Lang', 'nora.lang41@example.com', 'retail', 2, 'LU');
