-- Coroner cases as they stand: the latest revision of each (coroner_area, case_id), withdrawn
-- cases removed, over every submitter's table (current_coroner, drd-store's current view).
SELECT * FROM current_coroner
