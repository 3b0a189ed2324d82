/*---
description: Accounts, one row per SCD2 version.
tags: [bi]
---*/
SELECT _sk AS account_sk, account_id, customer_id, entity_id, country AS country_code,
       currency AS currency_code, product, status, opened_at,
       _valid_from AS valid_from, _valid_to AS valid_to, _is_current AS is_current,
       _version AS version
FROM {{ ref('silver.account') }}
WHERE NOT _is_deleted
