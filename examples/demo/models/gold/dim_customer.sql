/*---
description: CRM customers, one row per SCD2 version.  The e-mail is kept only as a SHA-256 digest (PII).
tags: [bi]
---*/
SELECT _sk AS customer_sk, customer_id, full_name, sha256(lower(email)) AS email_sha256,
       segment, risk_score, home_country AS country_code,
       _valid_from AS valid_from, _valid_to AS valid_to, _is_current AS is_current,
       _version AS version
FROM {{ ref('silver.customer') }}
WHERE NOT _is_deleted
