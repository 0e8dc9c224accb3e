-- Every partnership and each area it counts towards: itself, its region, its comparator group
-- and England. Indicators aggregate partnership facts through this table, so one GROUP BY
-- gives all four levels (a region's count is the sum of its partnerships' counts).
SELECT code AS partnership_code, code AS area_code, name AS area_name, 'partnership' AS area_type
FROM ref_partnerships
UNION ALL
SELECT code, region_code, region_name, 'region' FROM ref_partnerships
UNION ALL
SELECT code, comparator_group, 'Comparator group ' || comparator_group, 'comparator_group'
FROM ref_partnerships
WHERE comparator_group IS NOT NULL
UNION ALL
SELECT code, 'E92000001', 'England', 'england' FROM ref_partnerships
