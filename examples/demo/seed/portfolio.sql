-- PostgreSQL portfolio OLTP schema: legal entities (funds) in four
-- countries, accounts held at them, and their transactions.  Loaded by
-- servers.sh seed with \copy from the CSV files beside this one.
CREATE SCHEMA core;
CREATE TABLE core.entities (
  entity_id text PRIMARY KEY, country char(2) NOT NULL, name text NOT NULL,
  base_currency char(3) NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE core.accounts (
  account_id int PRIMARY KEY, customer_id int NOT NULL,
  entity_id text NOT NULL REFERENCES core.entities, country char(2) NOT NULL,
  currency char(3) NOT NULL, product text NOT NULL, status text NOT NULL,
  opened_at date NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE core.transactions (
  txn_id bigint PRIMARY KEY, account_id int NOT NULL REFERENCES core.accounts,
  customer_id int NOT NULL, entity_id text NOT NULL, country char(2) NOT NULL,
  txn_type text NOT NULL, amount numeric(18,2) NOT NULL, currency char(3) NOT NULL,
  booked_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
