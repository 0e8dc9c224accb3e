-- TOP forms as they stand: the latest revision of each (provider_code, client_id, top_date,
-- stage) over every provider's table (current_top, drd-store's current view).
SELECT * FROM current_top
