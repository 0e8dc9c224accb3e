-- NSP returns as they stand: the latest revision of each (site_code, period_start) over every
-- programme's table (current_nsp, drd-store's current view).
SELECT * FROM current_nsp
