-- The trend charts' series (issue 7 reports): each indicator's headline row (persons, all
-- ages, all substances, registration basis for deaths) for every partnership, region,
-- comparator group and England, over the run's current window and its history windows
-- (run_windows 'year-<k>'; for deaths the 'previous' window is the year-1 point, so it is
-- kept too, while the 12-month indicators' 'previous' is a quarter back and is not a yearly
-- point). `point` counts back from the current window (0) in years.
SELECT i.indicator_id, i.indicator_name, i.period, i.basis, i.area_code, i.area_name, i.area_type,
       i.unit, i.polarity, i.numerator, i.denominator, i.value, i.lower95, i.upper95,
       i.provisional, i.note,
       CASE WHEN i.which = 'current' THEN 0
            WHEN i.which = 'previous' THEN 1
            ELSE CAST(substr(i.which, 6) AS INT) END AS point,
       (SELECT run_id FROM run_params) AS run_id
FROM indicators i
JOIN run_windows w ON w.which = i.which AND w.label = i.period
WHERE i.sex = 'persons' AND i.age_band = 'all' AND i.substance_group = 'all'
  AND i.basis IN ('registration', '')
  AND w.kind IN ('deaths', 'months12')
  AND (i.which IN ('current', 'previous') OR i.which LIKE 'year-%')
  AND NOT (w.kind = 'months12' AND i.which = 'previous')
