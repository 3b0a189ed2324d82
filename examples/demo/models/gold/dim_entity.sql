/*---
description: Investment entities (funds), one row per SCD2 version; entity_sk is the version's surrogate key.
tags: [bi]
---*/
SELECT _sk AS entity_sk, entity_id, country AS country_code, name AS entity_name,
       base_currency, _valid_from AS valid_from, _valid_to AS valid_to, _is_current AS is_current,
       _version AS version
FROM {{ ref('silver.entity') }}
WHERE NOT _is_deleted
